"""Messaging and recordings on the fake Twilio: Messages create/fetch, media and recording files.

- `POST /Messages.json` answers with the JSON the SDK reads (`sid`, `status`, `num_segments`,
  ...); `fail_next` makes the next creates answer a Twilio error (e.g. 429 or 21211).
- `GET /Messages/{MessageSid}/Media/{MediaSid}` and `GET /Recordings/{RecordingSid}.wav|.mp3`
  serve stored bytes, only with the account's Basic auth (like "HTTP Basic Authentication for
  media" switched on). Public URLs use `https://api.twilio.com`, as Twilio's do.
- `inbound_params` and `status_params` build the signed webhooks Twilio sends for a message.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.fakes.twilio import API_VERSION, FakeTwilio, RestRequest, _error_body, not_found, rfc2822, sid

PUBLIC_API = "https://api.twilio.com"


@dataclass(slots=True)
class FakeMessage:
    """A message resource as the REST API shows it."""

    sid: str
    account_sid: str
    to: str
    from_: str
    body: str
    status: str = "queued"
    status_callback: str | None = None
    content_sid: str | None = None
    messaging_service_sid: str | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def json(self) -> dict[str, Any]:
        """The JSON Twilio answers with."""
        stamp = rfc2822(self.created_at)
        return {
            "sid": self.sid,
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": stamp,
            "date_updated": stamp,
            "date_sent": None,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "status": self.status,
            "subresource_uris": {"media": f"{self._uri()}/Media.json"},
            "to": self.to,
            "uri": f"{self._uri()}.json",
        }

    def _uri(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}"


class FakeMessaging:
    """Adds Messages, media and recordings to a FakeTwilio (call before `fake.start()`)."""

    def __init__(self, fake: FakeTwilio, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.fake = fake
        self.clock = clock
        """Twilio's time, stamped on the messages it creates (tests pass the hub's clock)."""
        self.messages: dict[str, FakeMessage] = {}
        self.files: dict[str, tuple[bytes, str]] = {}
        self.fail_next: list[tuple[int, int, str]] = []
        self.lose_answer_next = 0
        """How many of the next messages are created but answered 502, as by a proxy that lost the answer."""
        self.downloads: list[str] = []
        self.before_answer: Callable[[FakeMessage], Awaitable[None]] | None = None
        """Runs after a message is created and before the API answers, as a quick callback would."""
        self._media = itertools.count(1)
        fake.route("POST", "/Messages.json", self._create)
        fake.route("GET", "/Messages/{MessageSid}.json", self._fetch)
        fake.route("GET", "/Messages.json", self._list)
        fake.file_route("GET", "/Messages/{MessageSid}/Media/{MediaSid}", self._file)
        fake.file_route("GET", "/Recordings/{RecordingSid}", self._file)

    # Files

    def add_media(self, message_sid: str, data: bytes, content_type: str) -> str:
        """Store a media item of an inbound message; return its public URL."""
        path = f"/{API_VERSION}/Accounts/{self.fake.account_sid}/Messages/{message_sid}/Media/{sid('ME')}"
        self.files[path] = (data, content_type)
        return PUBLIC_API + path

    def add_recording(self, data: bytes, content_type: str = "audio/x-wav") -> tuple[str, str]:
        """Store a recording; return its sid and its RecordingUrl (without extension, as Twilio sends it)."""
        recording = sid("RE")
        base = f"/{API_VERSION}/Accounts/{self.fake.account_sid}/Recordings/{recording}"
        extension = ".mp3" if content_type == "audio/mpeg" else ".wav"
        self.files[base + extension] = (data, content_type)
        return recording, PUBLIC_API + base

    async def _file(self, request: web.Request) -> web.StreamResponse:
        self.downloads.append(request.path)
        found = self.files.get(request.path)
        if found is None:
            status, missing = not_found()
            return web.json_response(missing, status=status)
        data, content_type = found
        return web.Response(body=data, content_type=content_type)

    # Messages

    async def _create(self, request: RestRequest) -> tuple[int, dict[str, Any]]:
        if self.fail_next:
            status, code, text = self.fail_next.pop(0)
            return status, _error_body(status, code, text)
        form = request.form
        to, from_ = form.get("To"), form.get("From")
        if not to or not (from_ or form.get("MessagingServiceSid")):
            return 400, _error_body(400, 21604, "A 'To' and a 'From' or 'MessagingServiceSid' are required")
        if not form.get("Body") and not form.get("ContentSid") and not form.get("MediaUrl"):
            return 400, _error_body(400, 21602, "Message body is required.")
        if to.startswith("whatsapp:") != (from_ or "whatsapp:").startswith("whatsapp:"):
            text = "Twilio could not find a Channel with the specified From address"
            return 400, _error_body(400, 63007, text)
        message = FakeMessage(
            sid=sid("SM"),
            account_sid=self.fake.account_sid,
            to=to,
            from_=from_ or "",
            body=form.get("Body", ""),
            status_callback=form.get("StatusCallback"),
            content_sid=form.get("ContentSid"),
            messaging_service_sid=form.get("MessagingServiceSid"),
            created_at=self.clock(),
        )
        self.messages[message.sid] = message
        if self.before_answer is not None:
            await self.before_answer(message)
        if self.lose_answer_next:
            self.lose_answer_next -= 1
            return 502, _error_body(502, 20500, "Bad Gateway")
        return 201, message.json()

    async def _list(self, request: RestRequest) -> tuple[int, dict[str, Any]]:
        q = request.form
        found = [
            m
            for m in reversed(self.messages.values())
            if m.to == q.get("To", m.to) and m.from_ == q.get("From", m.from_)
        ]
        size = int(q.get("PageSize", "50"))
        uri = f"/{API_VERSION}/Accounts/{self.fake.account_sid}/Messages.json"
        return 200, {
            "messages": [m.json() for m in found[:size]],
            "end": min(size, len(found)) - 1, "first_page_uri": f"{uri}?PageSize={size}&Page=0",
            "next_page_uri": None, "page": 0, "page_size": size, "previous_page_uri": None, "start": 0,
            "uri": f"{uri}?PageSize={size}&Page=0",
        }  # fmt: skip

    async def _fetch(self, request: RestRequest) -> tuple[int, dict[str, Any]]:
        message = self.messages.get(request.match["MessageSid"])
        if message is None:
            return not_found()
        return 200, message.json()

    # Webhooks

    def inbound_params(
        self,
        from_: str,
        to: str,
        body: str,
        *,
        media: Sequence[tuple[bytes, str]] = (),
        profile_name: str | None = None,
        message_sid: str | None = None,
    ) -> tuple[str, tuple[tuple[str, str], ...]]:
        """The fields of an inbound SMS/WhatsApp webhook (media stored for download); returns the sid too."""
        message_sid = message_sid or sid("SM")
        fields: list[tuple[str, str]] = [
            ("ToCountry", "GB"),
            ("SmsMessageSid", message_sid),
            ("NumMedia", str(len(media))),
            ("SmsSid", message_sid),
            ("SmsStatus", "received"),
            ("Body", body),
            ("To", to),
            ("NumSegments", "1"),
            ("MessageSid", message_sid),
            ("AccountSid", self.fake.account_sid),
            ("From", from_),
            ("ApiVersion", API_VERSION),
        ]
        for n, (data, content_type) in enumerate(media):
            fields.append((f"MediaContentType{n}", content_type))
            fields.append((f"MediaUrl{n}", self.add_media(message_sid, data, content_type)))
        if from_.startswith("whatsapp:"):
            fields.append(("WaId", from_.removeprefix("whatsapp:+")))
            if profile_name:
                fields.append(("ProfileName", profile_name))
        return message_sid, tuple(fields)

    def status_params(
        self, message_sid: str, status: str, *, error_code: str | None = None
    ) -> tuple[tuple[str, str], ...]:
        """The fields of a message status callback."""
        message = self.messages.get(message_sid)
        fields = [
            ("SmsSid", message_sid),
            ("SmsStatus", status),
            ("MessageStatus", status),
            ("To", message.to if message else "+15005550006"),
            ("MessageSid", message_sid),
            ("AccountSid", self.fake.account_sid),
            ("From", message.from_ if message else "+15005550001"),
            ("ApiVersion", API_VERSION),
        ]
        if error_code:
            fields.append(("ErrorCode", error_code))
        if message is not None:
            message.status = status
        return tuple(fields)
