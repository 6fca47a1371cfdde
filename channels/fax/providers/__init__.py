"""Fax providers behind one interface: Telnyx, Sinch Fax v3 and a fax-to-mail gateway."""
