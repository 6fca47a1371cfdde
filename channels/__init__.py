"""Channel kinds the hub knows, registered explicitly, and building them from configuration."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from channels import api, memory, twilio, webchat
from channels.base import Channel, ChannelContext
from channels.email import channel as email_channel
from channels.email.settings import EmailSettings
from channels.fax import channel as fax_channel
from channels.fax.settings import FaxSettings
from channels.twilio import greetings
from hub import config as hub_config
from hub.config import ChannelEntry, Config, format_validation_error
from hub.errors import ConfigError
from hub.etiquette.config import EtiquetteConfig


class RuleProblem(Protocol):
    """A problem `omnihub rules check` reports about a channel's own settings."""

    @property
    def severity(self) -> str:
        """`error` or `warning`."""


RuleCheck = Callable[[str, Any, EtiquetteConfig, date], Sequence[RuleProblem]]
"""`(account name, settings, etiquette rules, today)`: what the rules require of a channel's settings."""


@dataclass(frozen=True, slots=True)
class ChannelType:
    """A channel kind: its settings model, how to build one, and what the rules require of it."""

    kind: str
    settings: type[BaseModel]
    create: Callable[[str, Any, ChannelContext], Channel]
    check_rules: RuleCheck | None = None


REGISTRY: dict[str, ChannelType] = {
    t.kind: t
    for t in (
        ChannelType("memory", memory.MemorySettings, memory.create),
        ChannelType("api", api.ApiSettings, api.create),
        ChannelType("email", EmailSettings, email_channel.create),
        ChannelType("webchat", webchat.WebchatSettings, webchat.create),
        ChannelType("twilio_voice", twilio.TwilioSettings, twilio.create, greetings.check_channel),
        ChannelType("fax", FaxSettings, fax_channel.create),
    )
}


@dataclass(frozen=True, slots=True)
class ConfiguredChannel:
    """A [[channels]] entry with its validated settings."""

    entry: ChannelEntry
    type: ChannelType
    settings: BaseModel


def configured(config: Config, source: str = "omnihub.toml") -> list[ConfiguredChannel]:
    """Validate every enabled channel entry; raise ConfigError naming each bad key."""
    problems: list[str] = []
    found: list[ConfiguredChannel] = []
    for index, entry in enumerate(config.channels):
        if not entry.enabled:
            continue
        kind = REGISTRY.get(entry.kind)
        if kind is None:
            known = ", ".join(sorted(REGISTRY))
            problems.append(f"{source}: channels[{index}].kind: unknown kind {entry.kind!r} (known: {known})")
            continue
        try:
            settings = kind.settings.model_validate(entry.settings())
        except ValidationError as err:
            problems.append(format_validation_error(source, err, f"channels[{index}]"))
            continue
        found.append(ConfiguredChannel(entry, kind, settings))
    if problems:
        raise ConfigError("\n".join(problems))
    return found


def build(channel: ConfiguredChannel, context: ChannelContext) -> Channel:
    """Create the channel object for a configured entry."""
    return channel.type.create(channel.entry.name, channel.settings, context)


def secrets(config: Config) -> set[str]:
    """Every secret in the configuration, the channels' included, for masking."""
    found = hub_config.secrets(config)
    try:
        channels = configured(config)
    except ConfigError:
        return found
    for channel in channels:
        found |= hub_config.secrets(channel.settings)
    return found


def rule_problems(config: Config, etiquette: EtiquetteConfig, today: date) -> list[RuleProblem]:
    """What the rules find wrong in the enabled channels' settings (e.g. voicemail greetings, V1-V3)."""
    found: list[RuleProblem] = []
    for channel in configured(config):
        if channel.type.check_rules is not None:
            found += channel.type.check_rules(channel.entry.name, channel.settings, etiquette, today)
    return found
