"""Fax line settings: each provider's table, clear errors naming the key, secrets masked."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey

import channels as registry
from hub import config as hub_config
from hub.errors import ConfigError

PUBLIC_KEY = base64.b64encode(bytes(SigningKey.generate().verify_key)).decode()
TELNYX = {"api_key": "telnyx-api-key-9", "connection_id": "123", "public_key": PUBLIC_KEY}


def line(**extra: Any) -> dict[str, Any]:
    return {"name": "fax", "kind": "fax", "number": "+441134960388", **extra}


def parse(tmp_path: Path, channels: list[dict[str, Any]]) -> hub_config.Config:
    return hub_config.parse({"channels": channels}, tmp_path)


def test_each_provider_validates_and_its_secrets_are_masked(tmp_path: Path) -> None:
    sinch = {"project_id": "p", "key_id": "k", "key_secret": "sinch-secret-7", "callback_token": "tok-3"}
    config = parse(
        tmp_path,
        [
            line(provider="telnyx", telnyx=TELNYX),
            line(name="fax2", provider="sinch", sinch=sinch),
            line(
                name="fax3",
                provider="email",
                email={"account": "mail", "address": "{digits}@fax.example.net"},
            ),
        ],
    )
    assert [c.entry.name for c in registry.configured(config)] == ["fax", "fax2", "fax3"]
    assert {"telnyx-api-key-9", "sinch-secret-7", "tok-3"} <= registry.secrets(config)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (line(provider="telnyx"), "provider 'telnyx' needs its [telnyx] table"),
        (
            line(provider="telnyx", telnyx={**TELNYX, "public_key": "not-base64!"}),
            "channels[0].telnyx.public_key",
        ),
        (
            line(provider="sinch", sinch={"project_id": "p", "key_id": "k", "key_secret": "s"}),
            "callback_username",
        ),
        (
            line(provider="email", email={"account": "mail", "address": "fax@example.net"}),
            "channels[0].email.address",
        ),
        (line(provider="fax-o-matic"), "channels[0].provider"),
        (line(provider="telnyx", telnyx=TELNYX, number="0113 496 0388"), "number: not a phone number"),
    ],
)
def test_bad_settings_name_the_key(tmp_path: Path, entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        registry.configured(parse(tmp_path, [entry]))
