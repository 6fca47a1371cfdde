"""What the features of a Twilio account (messaging, voicemail) share: one instance per channel,
the store, media downloads with the account's credentials, and quarantine for bad callbacks."""

from __future__ import annotations

import logging
import weakref
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

from multidict import MultiDictProxy

from channels.twilio.media import MediaFetcher
from hub import quarantine
from hub.errors import ChannelError
from hub.store import Database

if TYPE_CHECKING:
    from channels.twilio.voice import TwilioVoiceChannel

log = logging.getLogger(__name__)

P = TypeVar("P", bound="AccountPart")
_parts: weakref.WeakKeyDictionary[TwilioVoiceChannel, dict[type[Any], Any]] = weakref.WeakKeyDictionary()


class AccountPart:
    """A feature of one Twilio account, made once per channel on first use (`Part.of(channel)`)."""

    def __init__(self, channel: TwilioVoiceChannel) -> None:
        self.channel = channel

    @classmethod
    def of(cls: type[P], channel: TwilioVoiceChannel) -> P:
        """This feature of a channel."""
        parts = _parts.setdefault(channel, {})
        found = parts.get(cls)
        if not isinstance(found, cls):
            found = parts[cls] = cls(channel)
        return found

    @property
    def db(self) -> Database:
        """The hub's store, through the channel's inbox."""
        inbox = self.channel.context.inbox
        if inbox is None:
            raise ChannelError(f"{self.channel.name}: needs the inbox")
        return inbox.db

    def fetcher(self, max_bytes: int = 25 * 1024 * 1024) -> MediaFetcher:
        """Downloads from Twilio with the account's credentials, on the process's HTTP session."""
        s = self.channel.settings
        return MediaFetcher(
            self.channel.context.http,
            s.account_sid,
            s.auth_token.get_secret_value(),
            base_url=s.api_base_url,
            max_bytes=max_bytes,
        )

    async def quarantine(
        self, form: MultiDictProxy[str], reason: str, external_id: str | None = None
    ) -> None:
        """Keep a callback the hub cannot use, with the reason, for a supervisor to look at."""
        log.warning("%s: %s", self.channel.name, reason)
        await quarantine.record(
            self.db,
            self.channel.context.blobs,
            channel_account=self.channel.name,
            external_id=external_id,
            reason=reason,
            payload=urlencode(list(form.items())).encode(),
            now=self.channel.now(),
        )
