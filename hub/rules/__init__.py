"""Rule files: loading and validating them, conditions, triggers and their exactly-once firing."""
