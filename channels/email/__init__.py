"""The e-mail channel: IMAP and SMTP inbound, SMTP outbound, MIME parsing, threading, loop safety."""
