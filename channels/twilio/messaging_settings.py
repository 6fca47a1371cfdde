"""What an account's SMS and WhatsApp messaging is configured with."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hub.models import IdentityKind, normalise_address


class WhatsAppTemplate(BaseModel):
    """An approved WhatsApp template: its Content SID and what it says, per language, for the timeline."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    content_sid: str = Field(pattern=r"^HX[0-9a-fA-F]{32}$")
    text: dict[str, str] = Field(default_factory=dict)
    variables: dict[str, str] = Field(default_factory=dict)


class MessagingSettings(BaseModel):
    """SMS and WhatsApp of a Twilio account.

    Replies go out from `sms_from` (SMS) and `whatsapp_from` (WhatsApp), or through
    `messaging_service_sid`. `max_segments` caps how many SMS segments one reply may take
    (153 GSM-7 or 67 UCS-2 characters each once a text is split). `whatsapp_templates`
    are the approved templates an agent may send outside WhatsApp's 24-hour window.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    sms_from: str | None = None
    whatsapp_from: str | None = None
    messaging_service_sid: str | None = Field(None, pattern=r"^MG[0-9a-fA-F]{32}$")
    max_segments: int = Field(4, ge=1, le=10)
    max_media_bytes: int = Field(5 * 1024 * 1024, gt=0)
    whatsapp_templates: dict[str, WhatsAppTemplate] = Field(default_factory=dict)

    @field_validator("sms_from", "whatsapp_from")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return normalise_address(IdentityKind.PHONE, value.removeprefix("whatsapp:"))
