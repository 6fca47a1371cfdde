"""The agents' web inbox and the supervisors' dashboard: HTML shells, static modules, their reads."""
