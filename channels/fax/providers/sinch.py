"""Sinch Fax v3: REST to send (Basic auth), multipart callbacks carrying the PDF.

Callbacks (`INCOMING_FAX`, `FAX_COMPLETED`) arrive as multipart/form-data with `event`,
`eventTime`, `fax` (the fax as JSON) and the document as a `file` part, or as JSON with
the file in base64. Sinch cannot sign them: the callback URL carries our Basic-auth
credentials or a shared token, and a callback without them gets 403. Sinch retries a
callback not answered 200 within 60 s, up to 16 times.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar, Self
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator

from channels.basic_auth import basic_auth, read_basic_auth
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
from channels.fax.providers.http import call
from hub.config import Secret
from hub.errors import ChannelUnavailable

MAX_BODY = 60 * 1024 * 1024


class SinchSettings(BaseModel):
    """`[channels.sinch]`: project, access key, and how callbacks prove they are Sinch's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    project_id: str = Field(min_length=1)
    key_id: str = Field(min_length=1)
    key_secret: Secret
    api_url: str = "https://fax.api.sinch.com/v3"
    callback_username: str | None = None
    callback_password: Secret | None = None
    callback_token: Secret | None = None
    timeout_seconds: float = Field(60, gt=0)

    @model_validator(mode="after")
    def _callback_auth(self) -> Self:
        basic = self.callback_username is not None and self.callback_password is not None
        if not basic and self.callback_token is None:
            raise ValueError("callbacks need callback_username and callback_password, or callback_token")
        return self


def check_callback(settings: SinchSettings, request: web.Request) -> None:
    """Raise WebhookRefused unless the request carries the configured credentials or token."""
    if settings.callback_token is not None:
        given = request.query.get("token", "")
        if hmac.compare_digest(given.encode(), settings.callback_token.get_secret_value().encode()):
            return
    if settings.callback_username is not None and settings.callback_password is not None:
        login = read_basic_auth(request.headers.get("Authorization", ""))
        if login is None:
            raise WebhookRefused("missing or malformed credentials")
        wanted = f"{settings.callback_username}:{settings.callback_password.get_secret_value()}"
        if hmac.compare_digest(f"{login[0]}:{login[1]}".encode(), wanted.encode()):
            return
    raise WebhookRefused("wrong or missing callback credentials")


def _kind(event: str, fax: dict[str, Any]) -> FaxEventKind:
    if event == "INCOMING_FAX":
        return FaxEventKind.RECEIVED
    if event == "FAX_COMPLETED":
        return FaxEventKind.DELIVERED if fax.get("status") == "COMPLETED" else FaxEventKind.FAILED
    return FaxEventKind.OTHER


def event_from(fields: dict[str, Any], file: bytes | None, raw: bytes) -> FaxEvent:
    """The callback's fields (`event`, `eventTime`, `fax`) and document as a FaxEvent; else ValueError."""
    fax = fields["fax"]
    if isinstance(fax, str):
        fax = json.loads(fax)
    if not isinstance(fax, dict) or not fax.get("id"):
        raise ValueError("no fax id")
    event = str(fields.get("event", ""))
    kind = _kind(event, fax)
    inbound = fax.get("direction") == "INBOUND"
    when = fields.get("eventTime")
    pages = (
        fax.get("numberOfPages")
        if kind is not FaxEventKind.DELIVERED
        else fax.get("pagesSentSuccessfully", fax.get("numberOfPages"))
    )
    error = " ".join(str(fax[k]) for k in ("errorType", "errorCode", "errorMessage") if fax.get(k)) or None
    return FaxEvent(
        kind=kind,
        fax_id=str(fax["id"]),
        occurred_at=datetime.fromisoformat(str(when).replace("Z", "+00:00")) if when else None,
        remote=fax.get("from") if inbound else fax.get("to"),
        local=fax.get("to") if inbound else fax.get("from"),
        pages=int(pages) if pages is not None else None,
        error=error if kind is FaxEventKind.FAILED else None,
        station_id=fax.get("callingStationId") or fax.get("remoteStationId"),
        media=Media(data=file, content_type="application/pdf") if file is not None else None,
        raw=raw,
        details={"event": event, "status": fax.get("status")},
    )


async def read_callback(request: web.Request) -> FaxEvent:
    """A multipart or JSON callback as a FaxEvent; ValueError if it is not one."""
    if request.content_type.startswith("multipart/"):
        fields: dict[str, Any] = {}
        file: bytes | None = None
        total = 0
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, aiohttp.BodyPartReader):
                continue
            data = await part.read(decode=True)
            total += len(data)
            if total > MAX_BODY:
                raise ValueError("callback too large")
            if part.name == "file":
                file = bytes(data)
            elif part.name:
                fields[part.name] = bytes(data).decode("utf-8")
        raw = json.dumps(fields).encode()
        return event_from(fields, file, raw)
    body = await request.content.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise ValueError("callback too large")
    fields = json.loads(body)
    encoded = fields.get("file")
    try:
        file = base64.b64decode(encoded, validate=True) if encoded else None
    except (binascii.Error, ValueError) as err:
        raise ValueError(f"file is not base64: {err}") from None
    return event_from(fields, file, body)


class SinchProvider(WebhookOnly):
    """The Sinch Fax v3 API for one project."""

    provider: ClassVar[str] = "sinch"
    wants_tiff: ClassVar[bool] = False

    def __init__(self, settings: SinchSettings, http: aiohttp.ClientSession) -> None:
        self.settings = settings
        self.http = http

    def _auth(self) -> str:
        return basic_auth(self.settings.key_id, self.settings.key_secret.get_secret_value())

    def callback_url(self, url: str) -> str:
        """The callback URL with our credentials or token in it, as Sinch will call it."""
        s = self.settings
        parts = urlsplit(url)
        if s.callback_username is not None and s.callback_password is not None:
            secret = s.callback_password.get_secret_value()
            creds = f"{quote(s.callback_username, safe='')}:{quote(secret, safe='')}"
            parts = parts._replace(netloc=f"{creds}@{parts.netloc}")
        elif s.callback_token is not None:
            parts = parts._replace(query=f"token={quote(s.callback_token.get_secret_value(), safe='')}")
        return urlunsplit(parts)

    async def send(self, fax: OutgoingFax, callback_url: str) -> str:
        """POST /projects/{id}/faxes as multipart with the PDF as `file`; return the fax id."""
        form = aiohttp.FormData()
        form.add_field("to", fax.to)
        form.add_field("from", fax.sender)
        form.add_field("callbackUrl", self.callback_url(callback_url))
        form.add_field("callbackUrlContentType", "multipart/form-data")
        form.add_field("labels", json.dumps({"idempotencyKey": fax.idempotency_key}))
        form.add_field("file", fax.pdf, filename="fax.pdf", content_type="application/pdf")
        reply = await call(
            self.http,
            "POST",
            f"{self.settings.api_url}/projects/{self.settings.project_id}/faxes",
            what="sinch send",
            seconds=self.settings.timeout_seconds,
            data=form,
            headers={"Authorization": self._auth(), "Idempotency-Key": fax.idempotency_key},
        )
        if not isinstance(reply, dict) or not reply.get("id"):
            raise ChannelUnavailable(f"sinch send: no fax id in the answer: {reply!r}")
        return str(reply["id"])

    async def fetch(self, media: Media, limit: int) -> bytes:
        """Sinch callbacks carry the document itself."""
        if media.data is None:
            raise ChannelUnavailable("sinch: the callback carried no file")
        return media.data

    def callback_path(self) -> str:
        """Both events go to one URL."""
        return "callback"

    def routes(self, prefix: str, handle: EventHandler) -> Sequence[web.RouteDef]:
        """`POST {prefix}/callback`: check the credentials, parse, handle, then answer 200."""

        async def callback(request: web.Request) -> web.Response:
            try:
                check_callback(self.settings, request)
            except WebhookRefused as err:
                return web.json_response({"error": str(err)}, status=403)
            try:
                event = await read_callback(request)
            except (ValueError, KeyError, TypeError) as err:
                return web.json_response({"error": f"not a fax event: {err}"}, status=422)
            return await answer(handle, event)

        return [web.post(f"{prefix}/callback", callback)]
