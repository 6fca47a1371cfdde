"""Channel kinds the hub knows, registered explicitly, and building them from configuration."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from channels import api, memory, webchat
from channels.base import Channel, ChannelContext
from channels.email import channel as email_channel
from channels.email.settings import EmailSettings
from hub import config as hub_config
from hub.config import ChannelEntry, Config, format_validation_error
from hub.errors import ConfigError


@dataclass(frozen=True, slots=True)
class ChannelType:
    """A channel kind: its settings model and how to build one."""

    kind: str
    settings: type[BaseModel]
    create: Callable[[str, Any, ChannelContext], Channel]


REGISTRY: dict[str, ChannelType] = {
    t.kind: t
    for t in (
        ChannelType("memory", memory.MemorySettings, memory.create),
        ChannelType("api", api.ApiSettings, api.create),
        ChannelType("email", EmailSettings, email_channel.create),
        ChannelType("webchat", webchat.WebchatSettings, webchat.create),
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
