"""IMAP inbound: one connection wrapper, the per-mailbox cursor and the sync loop."""
