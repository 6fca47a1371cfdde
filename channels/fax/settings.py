"""The configuration of a fax line (`kind = "fax"`): our number, the provider, the cover page."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from channels.fax.documents.fonts import DEFAULT_FONT, FontSpec
from channels.fax.providers.gateway import GatewaySettings
from channels.fax.providers.sinch import SinchSettings
from channels.fax.providers.telnyx import TelnyxSettings
from hub.models import IdentityKind, normalise_address


class FaxSettings(BaseModel):
    """A fax line.

    `number` is ours (sent as the sender). Numbers without `+` are read in `default_region`
    (e.g. `GB`, `CN`). The cover page (F2) is written in the font at `font_path` (a TTF, or
    face `font_index` of a TTC) on `paper`; `confidential` adds the notice. `pre_notice`
    tells the contact on their e-mail or SMS conversation that a fax is coming (F1). One of
    `telnyx`, `sinch` or `email` (a fax-to-mail gateway) is the provider.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    number: str
    provider: Literal["telnyx", "sinch", "email"]
    default_region: str | None = Field(None, min_length=2, max_length=2)
    language: Literal["en", "zh"] = "en"
    timezone: str = "UTC"
    sender_name: str | None = None
    font_path: Path = DEFAULT_FONT
    font_index: int = Field(0, ge=0)
    paper: Literal["a4", "letter"] = "a4"
    confidential: bool = False
    pre_notice: bool = False
    max_media_bytes: int = Field(50 * 1024 * 1024, gt=0)
    telnyx: TelnyxSettings | None = None
    sinch: SinchSettings | None = None
    email: GatewaySettings | None = None

    @model_validator(mode="after")
    def _provider_section(self) -> Self:
        if getattr(self, self.provider) is None:
            raise ValueError(f"provider {self.provider!r} needs its [{self.provider}] table")
        try:
            normalise_address(IdentityKind.FAX, self.number, self.default_region)
        except ValueError as err:
            raise ValueError(f"number: {err}") from None
        return self

    def font(self) -> FontSpec:
        """The cover and body font."""
        return FontSpec(self.font_path, self.font_index)
