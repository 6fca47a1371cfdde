"""The SLA clock: business-hours calendars, targets, timers and the three-ring answer SLA."""
