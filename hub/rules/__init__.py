"""Rule files: loading, validation, conditions and triggers."""
