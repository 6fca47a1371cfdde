"""What `omnihub rules check` says about the voicemail greetings configured per team and agent (V1-V3)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from channels.twilio.settings import TwilioSettings
from channels.twilio.voicemail_settings import VoicemailSettings
from hub.etiquette.config import EtiquetteConfig


@dataclass(frozen=True, slots=True)
class GreetingProblem:
    """One problem with a configured greeting."""

    where: str
    message: str
    rule: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        return f"{self.where}: {self.severity}: {self.message} [{self.rule}]"


def check_greetings(
    settings: VoicemailSettings, where: str, today: date, max_age: timedelta
) -> list[GreetingProblem]:
    """Reply time (V2) and alternative contact (V3) present; a warning past `max_age` (V1)."""
    problems = []
    for index, greeting in enumerate(settings.greetings):
        at = f"{where}.voicemail.greetings[{index}] ({greeting.owner}, {greeting.language})"
        if greeting.audio_url and not (greeting.reply_time or "").strip():
            problems.append(
                GreetingProblem(
                    at, "a recorded greeting must say when messages are returned: set reply_time", "V2"
                )
            )
        contact = greeting.alternative_contact
        if contact is None or not (contact.phone or contact.email):
            problems.append(
                GreetingProblem(
                    at,
                    "it must give another way to reach us: an alternative_contact with a phone or e-mail",
                    "V3",
                )
            )
        age = today - greeting.updated
        if age > max_age:
            problems.append(
                GreetingProblem(
                    at,
                    f"the greeting is {age.days} days old; refresh it at least every {max_age.days} days "
                    "and set updated to the day you did",
                    "V1",
                    "warning",
                )
            )
    return problems


def check_channel(
    name: str, settings: TwilioSettings, etiquette: EtiquetteConfig, today: date
) -> list[GreetingProblem]:
    """The greetings of one Twilio account, against V1's `greeting_max_age` when V1 is on."""
    max_age = etiquette.V1.greeting_max_age if etiquette.V1.enabled else timedelta.max
    return check_greetings(settings.voicemail, f"channels.{name}", today, max_age)
