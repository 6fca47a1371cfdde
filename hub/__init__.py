"""omnihub: every customer message, on every channel, in one inbox that keeps the service rules."""
