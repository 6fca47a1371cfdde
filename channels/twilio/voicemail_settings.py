"""Voicemail of a Twilio account: greetings per team and agent, recording and transcription."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from channels.twilio.transcribe import TranscriptionSettings


class AlternativeContact(BaseModel):
    """Another way to reach the team (V3): a colleague or an emergency number, and an address."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    phone: str | None = Field(None, max_length=50)
    email: str | None = Field(None, max_length=320)


class Greeting(BaseModel):
    """A voicemail greeting of a team or an agent, in one language.

    With `audio_url` the caller hears that recording, and `reply_time` and
    `alternative_contact` state what it says (V2, V3); without it the hub renders the
    `voice/voicemail_greeting` template with the reply time from business hours and the
    alternative contact. `updated` is the day it was last recorded or reworded (V1).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    team: str | None = Field(None, min_length=1, max_length=100)
    agent: str | None = Field(None, min_length=1, max_length=100)
    language: Literal["en", "zh"] = "en"
    audio_url: str | None = Field(None, pattern=r"^https?://")
    reply_time: str | None = Field(None, max_length=200)
    alternative_contact: AlternativeContact | None = None
    business_hours: str | None = Field(None, max_length=200)
    updated: date

    @model_validator(mode="after")
    def _owner(self) -> Greeting:
        if (self.team is None) == (self.agent is None):
            raise ValueError("a greeting belongs to either a team or an agent")
        return self

    @property
    def owner(self) -> str:
        """Whose greeting it is, for messages."""
        return f"team {self.team}" if self.team else f"agent {self.agent}"


class VoicemailSettings(BaseModel):
    """Voicemail: `greetings` per team/agent and language, how recordings are taken and transcribed.

    The longest recording comes from the V5 rule (`max_length_seconds` in etiquette.yaml).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    greetings: list[Greeting] = Field(default_factory=list)
    transcription: TranscriptionSettings = TranscriptionSettings()
    silence_timeout_seconds: int = Field(5, ge=1, le=60)
    finish_on_key: str = Field("#", pattern=r"^[0-9*#]?$")

    def greeting_for(self, language: str, *, agent: str | None, team: str | None) -> Greeting | None:
        """The agent's greeting if there is one, else the team's, in the language."""
        for want_agent, want_team in ((agent, None), (None, team)):
            if want_agent is None and want_team is None:
                continue
            for greeting in self.greetings:
                if greeting.language == language and (greeting.agent, greeting.team) == (
                    want_agent,
                    want_team,
                ):
                    return greeting
        return None
