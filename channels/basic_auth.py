"""HTTP Basic credentials as providers take them (REST calls, media downloads) and send them (callbacks)."""

from __future__ import annotations

import base64
import binascii


def basic_auth(login: str, password: str) -> str:
    """An `Authorization: Basic` header value."""
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


def read_basic_auth(header: str) -> tuple[str, str] | None:
    """`(login, password)` from an `Authorization: Basic` header, or None."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        login, sep, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, ValueError):
        return None
    return (login, password) if sep else None
