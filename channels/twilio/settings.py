"""What a Twilio account is configured with: credentials, phone lines, agents' devices, public URLs."""

from __future__ import annotations

import re
from functools import cached_property
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from channels.twilio.messaging_settings import MessagingSettings
from channels.twilio.voicemail_settings import VoicemailSettings
from hub.config import Secret
from hub.models import IdentityKind, normalise_address

FALLBACK_STEP = re.compile(r"^(team:.+|queue|voicemail)$")
DEVICE = re.compile(r"^(client:[A-Za-z0-9_.@-]{1,121}|sip:\S+@\S+|\+[1-9][0-9 ]{6,20})$")


class Line(BaseModel):
    """One phone number customers call, the team it rings and what happens when nobody answers.

    `fallback` lists the steps tried in turn after the team's ring window (P1): `team:<name>`
    rings another team, `queue` holds the caller with position announcements and a callback
    offer (P3), `voicemail` records a message. `name` is the line's name in SLA rules
    (defaults to the number); `language` is the language of what the caller hears.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    number: str
    team: str = Field(min_length=1, max_length=100)
    name: str | None = Field(None, max_length=100)
    fallback: list[str] = Field(default_factory=lambda: ["voicemail"])
    language: Literal["en", "zh"] = "en"

    @field_validator("number")
    @classmethod
    def _e164(cls, value: str) -> str:
        return normalise_address(IdentityKind.PHONE, value)

    @field_validator("fallback")
    @classmethod
    def _steps(cls, value: list[str]) -> list[str]:
        bad = [step for step in value if not FALLBACK_STEP.match(step)]
        if bad:
            raise ValueError(f"unknown fallback steps {bad}: use team:<name>, queue or voicemail")
        return value

    @property
    def line_name(self) -> str:
        """The name SLA policies match this line by."""
        return self.name or self.number


class QueueSettings(BaseModel):
    """How callers wait in the queue step (P3): announcements, the callback offer, the longest wait.

    After `prompt_after_seconds` in the queue (default: 2 minutes, or half the longest wait if
    that is shorter) the line's team is prompted (`call.waiting_long`) and a callback task is
    created for the caller; after `max_wait_seconds` the caller moves on to the line's next
    fallback step.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    announce_every_seconds: int = Field(30, ge=5, le=600)
    prompt_after_seconds: int | None = Field(None, ge=5, le=3600)
    max_wait_seconds: int = Field(300, ge=10, le=3600)
    callback_key: str = Field("1", pattern=r"^[0-9*#]$")

    @model_validator(mode="after")
    def _prompt_before_leaving(self) -> QueueSettings:
        if self.prompt_after_seconds is not None and self.prompt_after_seconds >= self.max_wait_seconds:
            raise ValueError("prompt_after_seconds must be shorter than max_wait_seconds")
        return self

    @property
    def prompt_after(self) -> int:
        """Seconds in the queue after which the team is prompted and a callback is owed."""
        if self.prompt_after_seconds is not None:
            return self.prompt_after_seconds
        return min(120, self.max_wait_seconds // 2)


class TwilioSettings(BaseModel):
    """Settings of a Twilio account.

    `auth_token` is a secret (`env:VARIABLE`). `devices` maps agents' user names to where
    their phone rings: `client:<identity>` (a Twilio Client app), `sip:<uri>` or an E.164
    number. `public_url` overrides the hub's public address for the URLs Twilio signs;
    `trust_forwarded_headers` rebuilds it from `X-Forwarded-Proto`/`X-Forwarded-Host` instead
    (only behind a proxy that sets them). `api_base_url` replaces `https://*.twilio.com` (tests).
    `answer_deadline_seconds` bounds the incoming-call webhook: past it the caller goes to
    voicemail and the call is recorded when the store allows.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    auth_token: Secret
    lines: list[Line] = Field(default_factory=list)
    devices: dict[str, str] = Field(default_factory=dict)
    public_url: str | None = None
    trust_forwarded_headers: bool = False
    api_base_url: str | None = None
    queue: QueueSettings = QueueSettings()
    answer_deadline_seconds: float = Field(1.5, gt=0, le=10)
    request_timeout_seconds: float = Field(10, gt=0, le=120)
    messaging: MessagingSettings = MessagingSettings()
    voicemail: VoicemailSettings = VoicemailSettings()

    @field_validator("public_url", "api_base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value

    @field_validator("devices")
    @classmethod
    def _devices(cls, value: dict[str, str]) -> dict[str, str]:
        bad = sorted(user for user, device in value.items() if not DEVICE.match(device))
        if bad:
            raise ValueError(f"devices of {bad}: use client:<identity>, sip:<user@host> or +E164")
        return value

    @model_validator(mode="after")
    def _unique_numbers(self) -> TwilioSettings:
        numbers = [line.number for line in self.lines]
        repeated = sorted({n for n in numbers if numbers.count(n) > 1})
        if repeated:
            raise ValueError(f"lines: numbers must be unique; repeated: {', '.join(repeated)}")
        return self

    @cached_property
    def lines_by_number(self) -> dict[str, Line]:
        """The lines by their number (the settings are frozen)."""
        return {line.number: line for line in self.lines}

    def line_for(self, number: str) -> Line | None:
        """The line a called number belongs to, or None (Twilio sends E.164, compared first as is)."""
        found = self.lines_by_number.get(number)
        if found is not None:
            return found
        try:
            wanted = normalise_address(IdentityKind.PHONE, number)
        except ValueError:
            return None
        return self.lines_by_number.get(wanted)
