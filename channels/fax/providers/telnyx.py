"""Telnyx Programmable Fax: REST to send, Ed25519-signed JSON webhooks for everything else.

Webhooks carry `telnyx-signature-ed25519` (base64 signature of `timestamp|body`) and
`telnyx-timestamp`; both are checked against the account's public key, and a timestamp
older than `tolerance_seconds` is refused. Delivery is at least once and in any order.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar, Literal

import aiohttp
from aiohttp import web
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from pydantic import BaseModel, ConfigDict, Field, field_validator

from channels.fax.providers.base import (
    EventHandler,
    FaxEvent,
    FaxEventKind,
    Media,
    OutgoingFax,
    WebhookOnly,
    WebhookRefused,
    answer,
)
from channels.fax.providers.http import call, download
from hub.config import Secret
from hub.errors import ChannelUnavailable

SIGNATURE = "telnyx-signature-ed25519"
TIMESTAMP = "telnyx-timestamp"
MAX_BODY = 1024 * 1024
EVENT_KINDS = {
    "fax.received": FaxEventKind.RECEIVED,
    "fax.queued": FaxEventKind.QUEUED,
    "fax.media.processed": FaxEventKind.QUEUED,
    "fax.sending.started": FaxEventKind.SENDING,
    "fax.delivered": FaxEventKind.DELIVERED,
    "fax.failed": FaxEventKind.FAILED,
}


class TelnyxSettings(BaseModel):
    """`[channels.telnyx]`: API key, the fax application's connection id and the webhook public key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_key: Secret
    connection_id: str = Field(min_length=1)
    public_key: str = Field(description="base64 Ed25519 public key from the Telnyx portal")
    api_url: str = "https://api.telnyx.com/v2"
    quality: Literal["normal", "high", "very_high", "ultra_light", "ultra_dark"] = "high"
    tolerance_seconds: int = Field(300, gt=0)
    timeout_seconds: float = Field(60, gt=0)

    @field_validator("public_key")
    @classmethod
    def _key(cls, value: str) -> str:
        try:
            VerifyKey(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError, TypeError) as err:
            raise ValueError(f"not a base64 Ed25519 public key ({err})") from None
        return value


def verify(
    public_key: str, signature: str, timestamp: str, body: bytes, *, now: float, tolerance: int
) -> None:
    """Raise WebhookRefused unless `signature` signs `timestamp|body` and the timestamp is fresh."""
    if not signature or not timestamp:
        raise WebhookRefused("missing signature or timestamp")
    try:
        sent = int(timestamp)
        raw = base64.b64decode(signature, validate=True)
        VerifyKey(base64.b64decode(public_key)).verify(timestamp.encode() + b"|" + body, raw)
    except (ValueError, binascii.Error, BadSignatureError) as err:
        raise WebhookRefused(f"bad signature ({type(err).__name__})") from None
    if abs(now - sent) > tolerance:
        raise WebhookRefused(f"stale timestamp ({now - sent:.0f} s)")


def parse_event(body: bytes) -> FaxEvent:
    """A Telnyx webhook body as a FaxEvent; ValueError if it is not one."""
    data = json.loads(body)["data"]
    payload: dict[str, Any] = data.get("payload") or {}
    event_type = str(data["event_type"])
    fax_id = str(payload["fax_id"])
    inbound = payload.get("direction") == "inbound"
    media_url = payload.get("media_url")
    occurred = data.get("occurred_at")
    return FaxEvent(
        kind=EVENT_KINDS.get(event_type, FaxEventKind.OTHER),
        fax_id=fax_id,
        event_id=str(data.get("id") or ""),
        occurred_at=datetime.fromisoformat(occurred.replace("Z", "+00:00")) if occurred else None,
        remote=payload.get("from") if inbound else payload.get("to"),
        local=payload.get("to") if inbound else payload.get("from"),
        pages=int(payload["page_count"]) if payload.get("page_count") is not None else None,
        error=payload.get("failure_reason"),
        station_id=payload.get("calling_station_id") or payload.get("remote_station_id"),
        media=Media(url=str(media_url), content_type="application/pdf") if media_url else None,
        raw=body,
        details={"event_type": event_type, "status": payload.get("status")},
    )


class TelnyxProvider(WebhookOnly):
    """The Telnyx Programmable Fax API for one account."""

    provider: ClassVar[str] = "telnyx"
    wants_tiff: ClassVar[bool] = False

    def __init__(self, settings: TelnyxSettings, http: aiohttp.ClientSession, clock: Any = time.time) -> None:
        self.settings = settings
        self.http = http
        self.clock = clock

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.api_key.get_secret_value()}"}

    async def send(self, fax: OutgoingFax, callback_url: str) -> str:
        """POST /faxes with the PDF as the `contents` part; return the fax id."""
        form = aiohttp.FormData()
        for key, value in (
            ("connection_id", self.settings.connection_id),
            ("to", fax.to),
            ("from", fax.sender),
            ("quality", self.settings.quality),
            ("webhook_url", callback_url),
            ("client_state", base64.b64encode(fax.idempotency_key.encode()).decode()),
        ):
            form.add_field(key, value)
        form.add_field("contents", fax.pdf, filename="fax.pdf", content_type="application/pdf")
        reply = await call(
            self.http,
            "POST",
            f"{self.settings.api_url}/faxes",
            what="telnyx send",
            seconds=self.settings.timeout_seconds,
            data=form,
            headers={**self._auth(), "Idempotency-Key": fax.idempotency_key},
        )
        try:
            return str(reply["data"]["id"])
        except (KeyError, TypeError) as err:
            raise ChannelUnavailable(f"telnyx send: no fax id in the answer: {reply!r}") from err

    async def fetch(self, media: Media, limit: int) -> bytes:
        """Download the media URL (a link that expires; no credentials needed)."""
        assert media.url is not None
        return await download(
            self.http, media.url, what="telnyx media", seconds=self.settings.timeout_seconds, limit=limit
        )

    def callback_path(self) -> str:
        """Telnyx posts every event to one URL."""
        return "events"

    def routes(self, prefix: str, handle: EventHandler) -> Sequence[web.RouteDef]:
        """`POST {prefix}/events`: verify, parse, handle, then answer 200."""

        async def events(request: web.Request) -> web.Response:
            body = await request.content.read(MAX_BODY + 1)
            if len(body) > MAX_BODY:
                return web.json_response({"error": "too large"}, status=413)
            try:
                verify(
                    self.settings.public_key,
                    request.headers.get(SIGNATURE, ""),
                    request.headers.get(TIMESTAMP, ""),
                    body,
                    now=self.clock(),
                    tolerance=self.settings.tolerance_seconds,
                )
            except WebhookRefused as err:
                return web.json_response({"error": str(err)}, status=403)
            try:
                event = parse_event(body)
            except (ValueError, KeyError, TypeError) as err:
                return web.json_response({"error": f"not a fax event: {err}"}, status=422)
            return await answer(handle, event)

        return [web.post(f"{prefix}/events", events)]
