"""The API channel: any system can post customer messages in and receive replies by webhook.

Inbound: `POST /webhooks/api/<name>/messages` with a JSON message, signed with
`X-Omnihub-Signature: sha256=<hex HMAC-SHA256 of the body with the shared secret>`. The
hub answers 200 with the stored ids once the message is committed; posting the same
`external_id` again stores nothing new and answers with the same ids.

Outbound: every reply is POSTed as JSON to `outbound_url`, signed the same way, with an
`Idempotency-Key` header that stays the same across retries. 2xx is success; 408, 429, 5xx
and connection errors are retried; other 4xx are permanent failures.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import aiohttp
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from channels.base import Capabilities, ChannelContext, ChannelState, InboundSink
from hub.config import Secret
from hub.errors import ChannelUnavailable, DeliveryRejected
from hub.ingest import Quarantined
from hub.models import (
    ChannelKind,
    DeliveryResult,
    Identity,
    IdentityKind,
    InboundMessage,
    OutboundMessage,
    OutboundStatus,
)

SIGNATURE_HEADER = "X-Omnihub-Signature"
MAX_BODY = 1024 * 1024
RETRYABLE = frozenset({408, 425, 429})


class ApiSettings(BaseModel):
    """Settings of an API channel."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    secret: Secret
    outbound_url: str | None = None
    timeout_seconds: float = Field(15, gt=0)


class _Sender(BaseModel):
    kind: IdentityKind
    address: str
    name: str | None = None


class _Inbound(BaseModel):
    model_config = ConfigDict(extra="forbid")

    external_id: str = Field(min_length=1, max_length=255)
    sender: _Sender
    text: str = Field(max_length=200_000)
    subject: str | None = Field(None, max_length=998)
    received_at: datetime | None = None
    reply_to: list[str] = []
    language: str | None = None


def sign(secret: str, body: bytes) -> str:
    """The signature header value for a body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class ApiChannel:
    """A channel that speaks signed JSON over HTTP both ways."""

    kind: ClassVar[str] = "api"
    capabilities: ClassVar[Capabilities] = Capabilities(subject=True)

    def __init__(self, name: str, settings: ApiSettings, context: ChannelContext) -> None:
        self.name = name
        self.settings = settings
        self.context = context
        self._sink: InboundSink | None = None
        self._state = ChannelState.STOPPED

    async def start(self, sink: InboundSink) -> None:
        """Accept webhooks from now on."""
        self._sink = sink
        self._state = ChannelState.CONNECTED

    def routes(self) -> Sequence[web.RouteDef]:
        """The inbound message webhook."""
        return [web.post(f"/webhooks/api/{self.name}/messages", self._inbound)]

    async def _inbound(self, request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_BODY:
            return _error(413, f"body over {MAX_BODY} bytes")
        body = await request.content.read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            return _error(413, f"body over {MAX_BODY} bytes")
        expected = sign(self.settings.secret.get_secret_value(), body)
        given = request.headers.get(SIGNATURE_HEADER, "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(expected.encode(), given):
            return _error(403, "missing or wrong signature")
        if self._sink is None:
            return _error(503, "channel is not running")
        try:
            payload = _Inbound.model_validate_json(body)
            message = self._parse(payload, body)
        except ValidationError as err:
            first = err.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            return web.json_response({"error": first["msg"], "field": field}, status=422)
        except ValueError as err:
            return _error(422, str(err))
        try:
            result = await self._sink(message)
        except Quarantined as err:
            return web.json_response({"quarantined": err.quarantine_id, "reason": err.reason}, status=202)
        return web.json_response(
            {
                "message_id": result.message_id,
                "conversation_id": result.conversation_id,
                "duplicate": result.duplicate,
            }
        )

    def _parse(self, payload: _Inbound, body: bytes) -> InboundMessage:
        now = datetime.now(UTC)
        received = payload.received_at or now
        if received.tzinfo is None:
            raise ValueError("received_at needs a time zone")
        received = min(received, now)
        return InboundMessage(
            channel=ChannelKind.API,
            channel_account=self.name,
            external_id=payload.external_id,
            sender=Identity.of(payload.sender.kind, payload.sender.address),
            sender_name=payload.sender.name,
            text=payload.text,
            subject=payload.subject,
            received_at=received,
            reply_refs=tuple(payload.reply_to),
            own_refs=(f"api:{self.name}:{payload.external_id}",),
            raw=body,
            language=payload.language,
        )

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """POST the reply to the configured URL."""
        if not self.settings.outbound_url:
            raise DeliveryRejected(f"channel {self.name} has no outbound_url")
        body = json.dumps(_outbound_payload(message)).encode()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": message.idempotency_key,
            SIGNATURE_HEADER: sign(self.settings.secret.get_secret_value(), body),
        }
        try:
            async with self.context.http.post(
                self.settings.outbound_url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout_seconds),
            ) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as err:
            self._state = ChannelState.DEGRADED
            raise ChannelUnavailable(f"{self.name}: {type(err).__name__}: {err}") from err
        self._state = ChannelState.CONNECTED
        if 200 <= status < 300:
            return DeliveryResult(OutboundStatus.SENT, provider_id=_provider_id(text))
        if status >= 500 or status in RETRYABLE:
            raise ChannelUnavailable(f"{self.name}: endpoint answered {status}")
        raise DeliveryRejected(f"{self.name}: endpoint refused with {status}: {text[:200]}")

    async def stop(self) -> None:
        """Refuse webhooks from now on."""
        self._sink = None
        self._state = ChannelState.STOPPED

    def state(self) -> ChannelState:
        """Connected unless the last send could not reach the endpoint."""
        return self._state


def _outbound_payload(message: OutboundMessage) -> dict[str, Any]:
    return {
        "id": message.message_id,
        "conversation_id": message.conversation_id,
        "recipient": {"kind": message.recipient.kind.value, "address": message.recipient.address},
        "subject": message.subject,
        "text": message.text,
        "in_reply_to": list(message.reply_refs),
        "automatic": message.automatic,
    }


def _provider_id(text: str) -> str | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    value = data.get("id") if isinstance(data, dict) else None
    return str(value) if value is not None else None


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def create(name: str, settings: ApiSettings, context: ChannelContext) -> ApiChannel:
    """Build an API channel from its configuration."""
    return ApiChannel(name, settings, context)


__all__ = ["ApiChannel", "ApiSettings", "create", "sign"]
