"""A wire-level fake of Telnyx Programmable Fax on 127.0.0.1.

REST: `POST /v2/faxes` (Bearer key; multipart with `contents`, or JSON with `media_url`)
answers 202 with the fax resource, once per `Idempotency-Key`. Webhooks are JSON
`{"data": {"event_type", "id", "occurred_at", "payload": {...}}}` signed with a test
Ed25519 key (`telnyx-signature-ed25519` over `timestamp|body`, `telnyx-timestamp`),
delivered at least once (each event twice by default) and, when asked, out of order.
Received faxes' `media_url` works once and expires.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web
from nacl.signing import SigningKey

from tests.fakes.common import FakeServer, MediaLinks

API_KEY = "KEY0123456789TEST"


@dataclass
class SentFax:
    """A fax the hub submitted."""

    id: str
    to: str
    sender: str
    connection_id: str
    webhook_url: str
    document: bytes
    client_state: str | None
    idempotency_key: str | None


@dataclass
class Delivery:
    """One webhook POST and how the hub answered it."""

    event_type: str
    fax_id: str
    status: int


class FakeTelnyx(FakeServer):
    """Telnyx's fax API and webhooks, as far as the hub uses them."""

    def __init__(self, *, repeat: int = 2) -> None:
        super().__init__()
        self.key = SigningKey.generate()
        self.public_key = base64.b64encode(bytes(self.key.verify_key)).decode()
        self.repeat = repeat
        self.sent: dict[str, SentFax] = {}
        self.by_key: dict[str, str] = {}
        self.deliveries: list[Delivery] = []
        self.media = MediaLinks()
        self.fail_next: list[int] = []
        self.app.router.add_post("/v2/faxes", self._send)
        self.app.router.add_get("/media/{token}", self.media.serve)
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Listen, and open the session webhooks go out on."""
        await super().start()
        self._http = aiohttp.ClientSession()

    async def stop(self) -> None:
        """Close the session and stop listening."""
        if self._http is not None:
            await self._http.close()
        await super().stop()

    async def _send(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {API_KEY}":
            return _errors(401, "10009", "Authentication failed")
        if self.fail_next:
            return _errors(self.fail_next.pop(0), "90001", "Service unavailable")
        fields: dict[str, Any] = {}
        document = b""
        if request.content_type.startswith("multipart/"):
            async for part in await request.multipart():
                assert isinstance(part, aiohttp.BodyPartReader)
                if part.name == "contents":
                    document = bytes(await part.read())
                elif part.name:
                    fields[part.name] = await part.text()
        else:
            fields = await request.json()
        missing = [k for k in ("connection_id", "to", "from") if not fields.get(k)]
        if missing or not (document or fields.get("media_url")):
            return _errors(422, "10015", f"missing {missing or ['contents or media_url']}")
        key = request.headers.get("Idempotency-Key")
        if key and key in self.by_key:
            return web.json_response({"data": self._resource(self.sent[self.by_key[key]])}, status=202)
        fax = SentFax(
            id=str(uuid.uuid4()),
            to=fields["to"],
            sender=fields["from"],
            connection_id=fields["connection_id"],
            webhook_url=fields.get("webhook_url", ""),
            document=document,
            client_state=fields.get("client_state"),
            idempotency_key=key,
        )
        self.sent[fax.id] = fax
        if key:
            self.by_key[key] = fax.id
        return web.json_response({"data": self._resource(fax)}, status=202)

    def _resource(self, fax: SentFax) -> dict[str, Any]:
        return {
            "record_type": "fax",
            "id": fax.id,
            "connection_id": fax.connection_id,
            "direction": "outbound",
            "to": fax.to,
            "from": fax.sender,
            "status": "queued",
            "quality": "high",
            "webhook_url": fax.webhook_url,
            "client_state": fax.client_state,
        }

    def event(self, event_type: str, payload: dict[str, Any]) -> bytes:
        """A webhook body as Telnyx writes it."""
        data = {
            "data": {
                "event_type": event_type,
                "id": str(uuid.uuid4()),
                "occurred_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "payload": payload,
                "record_type": "event",
            },
            "meta": {"attempt": 1, "delivered_to": ""},
        }
        return json.dumps(data).encode()

    def signed(
        self, body: bytes, *, timestamp: int | None = None, key: SigningKey | None = None
    ) -> dict[str, str]:
        """The signature headers for a body."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = (key or self.key).sign(stamp.encode() + b"|" + body).signature
        return {
            "telnyx-signature-ed25519": base64.b64encode(signature).decode(),
            "telnyx-timestamp": stamp,
            "Content-Type": "application/json",
        }

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """POST one webhook; the hub's answer status."""
        assert self._http is not None
        async with self._http.post(url, data=body, headers=headers) as response:
            await response.read()
            return response.status

    async def deliver(self, url: str, events: list[tuple[str, dict[str, Any]]]) -> list[int]:
        """Post the events in the order given, each `repeat` times (at least once)."""
        statuses = []
        for event_type, payload in events:
            body = self.event(event_type, payload)
            for _ in range(self.repeat):
                status = await self.post(url, body, self.signed(body))
                self.deliveries.append(Delivery(event_type, str(payload.get("fax_id")), status))
                statuses.append(status)
        return statuses

    def outbound_events(
        self, fax_id: str, *, pages: int, failure: str | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        """The events of a sent fax, in Telnyx's order."""
        fax = self.sent[fax_id]
        base = {"fax_id": fax.id, "connection_id": fax.connection_id, "direction": "outbound",
                "from": fax.sender, "to": fax.to, "client_state": fax.client_state}  # fmt: skip
        last = (
            ("fax.failed", {**base, "status": "failed", "failure_reason": failure})
            if failure
            else ("fax.delivered", {**base, "status": "delivered", "page_count": pages})
        )
        return [
            ("fax.queued", {**base, "status": "queued"}),
            ("fax.media.processed", {**base, "status": "media.processed", "page_count": pages}),
            ("fax.sending.started", {**base, "status": "sending"}),
            last,
        ]

    def received_event(
        self, *, sender: str, to: str, document: bytes, content_type: str = "application/pdf", pages: int = 1
    ) -> tuple[str, dict[str, Any]]:
        """A `fax.received` event whose media URL works once."""
        token = self.media.add(document, content_type)
        return (
            "fax.received",
            {
                "fax_id": str(uuid.uuid4()),
                "direction": "inbound",
                "from": sender,
                "to": to,
                "status": "received",
                "page_count": pages,
                "calling_station_id": "ACME FAX 01",
                "media_url": f"{self.url}/media/{token}",
            },
        )


def _errors(status: int, code: str, title: str) -> web.Response:
    return web.json_response({"errors": [{"code": code, "title": title, "detail": title}]}, status=status)


__all__ = ["API_KEY", "Delivery", "FakeTelnyx", "SentFax"]
