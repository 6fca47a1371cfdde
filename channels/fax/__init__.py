"""The fax channel: outgoing replies as faxes with a cover page, received faxes as messages (F1-F4)."""
