"""The twilio_voice channel's configuration: lines, devices, secrets, errors naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest

import channels
from channels.base import Channel
from channels.twilio import TwilioSettings
from channels.twilio.voice import TwilioVoiceChannel
from hub import config as hub_config
from hub.errors import ConfigError
from hub.models import ChannelKind
from hub.reply_routes import carried
from tests.twilio_helpers import TOKEN, channel_entry


def load(tmp_path: Path, **settings: object) -> list[channels.ConfiguredChannel]:
    return channels.configured(hub_config.parse({"channels": [channel_entry(**settings)]}, tmp_path))


def test_a_valid_account_normalises_its_numbers_and_masks_its_token(tmp_path: Path) -> None:
    (found,) = load(tmp_path, lines=[{"number": "+44 20 7946 0000", "team": "Support"}])
    settings = found.settings
    assert isinstance(settings, TwilioSettings)
    assert settings.lines[0].number == "+442079460000"
    assert settings.line_for("+442079460000") is settings.lines[0]
    assert settings.line_for("020 7946 0001") is None
    assert TOKEN not in repr(settings)
    assert TOKEN in channels.secrets(hub_config.parse({"channels": [channel_entry()]}, tmp_path))


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"account_sid": "AB123"}, "channels[0].account_sid"),
        ({"lines": [{"number": "12", "team": "Support"}]}, "channels[0].lines[0].number"),
        ({"lines": [{"number": "+442079460000", "team": "S", "fallback": ["pray"]}]}, "fallback"),
        ({"devices": {"alice": "telnet:alice"}}, "channels[0].devices"),
        (
            {
                "lines": [
                    {"number": "+442079460000", "team": "A"},
                    {"number": "+44 20 7946 0000", "team": "B"},
                ]
            },
            "numbers must be unique",
        ),
        ({"public_url": "hub.example.com"}, "channels[0].public_url"),
        ({"auth_token": "env:OMNIHUB_NO_SUCH_VARIABLE"}, "OMNIHUB_NO_SUCH_VARIABLE is not set"),
    ],
)
def test_bad_settings_are_refused_naming_the_key(
    tmp_path: Path, settings: dict[str, object], problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        load(tmp_path, **settings)


def test_phone_conversations_can_be_answered_by_text_from_the_account() -> None:
    assert carried(cast(Channel, TwilioVoiceChannel)) == (ChannelKind.SMS,)
