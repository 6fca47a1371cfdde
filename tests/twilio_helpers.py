"""Shared set-up for the Twilio tests: an account, a hub with the channel, the fake's pieces."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from hub.services import Services
from tests.conftest_web import services_with_channels

ACCOUNT = "AC" + "a1" * 16
TOKEN = "twilio-test-auth-token"
PUBLIC = "https://hub.example.com"
LINE = "+442079460000"


def channel_entry(**settings: Any) -> dict[str, Any]:
    """The `[[channels]]` entry of the Twilio account `main`."""
    entry: dict[str, Any] = {
        "name": "main",
        "kind": "twilio_voice",
        "account_sid": ACCOUNT,
        "auth_token": TOKEN,
        "public_url": PUBLIC,
        "lines": [{"number": LINE, "team": "Support"}],
    }
    entry.update(settings)
    return entry


@asynccontextmanager
async def twilio_channel(make_config: Any, clock: Any, **settings: Any) -> AsyncIterator[Services]:
    """Services with the Twilio channel `main`, started."""
    async with services_with_channels(make_config, clock, [channel_entry(**settings)]) as services:
        yield services
