"""A wire-level fake of Sinch Fax v3 on 127.0.0.1.

REST: `POST /v3/projects/{projectId}/faxes` with Basic auth (key id and secret), multipart
with `to`, `from`, `callbackUrl` and the document as `file`, answers 200 with the fax
resource. Callbacks (`INCOMING_FAX`, `FAX_COMPLETED`) go to the callback URL as
multipart/form-data (`event`, `eventTime`, `fax` as JSON, the PDF as `file`), with the
credentials the URL carries, at least once (twice by default) and, when asked, out of order.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import aiohttp
from aiohttp import web

from tests.fakes.common import FakeServer

PROJECT = "f3b7c1d2-0000-4a4a-9c9c-123456789abc"
KEY_ID = "key-id-1"
KEY_SECRET = "key-secret-1"


@dataclass
class SentFax:
    """A fax the hub submitted."""

    id: str
    to: str
    sender: str
    callback_url: str
    document: bytes
    idempotency_key: str | None


class FakeSinchFax(FakeServer):
    """Sinch's fax API and callbacks, as far as the hub uses them."""

    def __init__(self, *, repeat: int = 2) -> None:
        super().__init__()
        self.repeat = repeat
        self.sent: dict[str, SentFax] = {}
        self.by_key: dict[str, str] = {}
        self.answers: list[int] = []
        self.app.router.add_post("/v3/projects/{project}/faxes", self._send)
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Listen, and open the session callbacks go out on."""
        await super().start()
        self._http = aiohttp.ClientSession()

    async def stop(self) -> None:
        """Close the session and stop listening."""
        if self._http is not None:
            await self._http.close()
        await super().stop()

    async def _send(self, request: web.Request) -> web.Response:
        expected = "Basic " + base64.b64encode(f"{KEY_ID}:{KEY_SECRET}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return web.json_response({"code": 401, "status": "UNAUTHENTICATED"}, status=401)
        if request.match_info["project"] != PROJECT:
            return web.json_response({"code": 404, "status": "NOT_FOUND"}, status=404)
        fields: dict[str, str] = {}
        document = b""
        async for part in await request.multipart():
            assert isinstance(part, aiohttp.BodyPartReader)
            if part.name == "file":
                document = bytes(await part.read())
            elif part.name:
                fields[part.name] = await part.text()
        if not fields.get("to") or not document:
            return web.json_response({"code": 400, "status": "INVALID_ARGUMENT"}, status=400)
        key = request.headers.get("Idempotency-Key")
        if key and key in self.by_key:
            return web.json_response(self.resource(self.sent[self.by_key[key]], "QUEUED"))
        fax = SentFax(str(uuid.uuid4()).replace("-", ""), fields["to"], fields.get("from", ""),
                      fields.get("callbackUrl", ""), document, key)  # fmt: skip
        self.sent[fax.id] = fax
        if key:
            self.by_key[key] = fax.id
        return web.json_response(self.resource(fax, "QUEUED"))

    def resource(self, fax: SentFax, status: str, **extra: Any) -> dict[str, Any]:
        """The fax as Sinch shows it."""
        return {"id": fax.id, "direction": "OUTBOUND", "from": fax.sender, "to": fax.to, "status": status,
                "projectId": PROJECT, "createTime": _now(), **extra}  # fmt: skip

    async def post(self, url: str, event: str, fax: dict[str, Any], file: bytes | None) -> int:
        """POST one multipart callback to `url` (credentials in the URL become Basic auth)."""
        assert self._http is not None
        parts = urlsplit(url)
        headers = {}
        if parts.username:
            creds = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            headers["Authorization"] = "Basic " + base64.b64encode(creds.encode()).decode()
        plain = urlunsplit(parts._replace(netloc=f"{parts.hostname}:{parts.port}"))
        form = aiohttp.FormData()
        form.add_field("event", event)
        form.add_field("eventTime", _now())
        form.add_field("fax", json.dumps(fax), content_type="application/json")
        if file is not None:
            form.add_field("file", file, filename="fax.pdf", content_type="application/pdf")
        async with self._http.post(plain, data=form, headers=headers) as response:
            await response.read()
            self.answers.append(response.status)
            return response.status

    async def complete(self, fax_id: str, *, pages: int, error: str | None = None) -> list[int]:
        """Send FAX_COMPLETED for a sent fax, `repeat` times."""
        fax = self.sent[fax_id]
        if error:
            body = self.resource(fax, "FAILURE", numberOfPages=pages, pagesSentSuccessfully=0,
                                 errorType="LINE_ERROR", errorCode=52, errorMessage=error)  # fmt: skip
        else:
            body = self.resource(fax, "COMPLETED", numberOfPages=pages, pagesSentSuccessfully=pages)
        return [await self.post(fax.callback_url, "FAX_COMPLETED", body, None) for _ in range(self.repeat)]

    async def incoming(
        self, url: str, *, sender: str, to: str, document: bytes, pages: int
    ) -> tuple[str, list[int]]:
        """Send INCOMING_FAX with the document, `repeat` times; the fax id and the answers."""
        fax = {"id": uuid.uuid4().hex, "direction": "INBOUND", "from": sender, "to": to,
               "status": "COMPLETED", "numberOfPages": pages, "projectId": PROJECT,
               "createTime": _now()}  # fmt: skip
        return fax["id"], [await self.post(url, "INCOMING_FAX", fax, document) for _ in range(self.repeat)]


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


__all__ = ["KEY_ID", "KEY_SECRET", "PROJECT", "FakeSinchFax", "SentFax"]
