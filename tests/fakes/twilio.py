"""A fake Twilio on 127.0.0.1 that speaks Twilio's wire format.

- REST: `/2010-04-01/Accounts/{sid}/Calls.json` (create) and `.../Calls/{CallSid}.json`
  (fetch, update) with Basic auth and the JSON fields the SDK reads; other resources
  (Messages, Recordings, ...) are added with `FakeTwilio.route`. Every request is kept in
  `requests`.
- Webhooks: `WebhookSender` posts form-encoded requests signed with `X-Twilio-Signature`
  the way Twilio computes it (HMAC-SHA1 of the URL followed by the sorted keys and
  values, base64), written here independently of the SDK's validator. Status callbacks can
  be delivered late, twice and out of order, each with `Timestamp` (RFC 2822, whole
  seconds) and `SequenceNumber`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import random
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import aiohttp
from aiohttp import web
from multidict import MultiDict

API_VERSION = "2010-04-01"
Params = Sequence[tuple[str, str]] | Mapping[str, str]
RestHandler = Callable[["RestRequest"], Awaitable[tuple[int, dict[str, Any]]]]
FileHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def sid(prefix: str) -> str:
    """A Twilio-style id: two letters and 32 hex digits."""
    return prefix + secrets.token_hex(16)


def rfc2822(at: datetime) -> str:
    """Twilio's timestamp format, whole seconds."""
    return format_datetime(at.astimezone(UTC).replace(microsecond=0), usegmt=True)


def pairs(params: Params) -> list[tuple[str, str]]:
    """Params as a list of (key, value), keeping repeated keys."""
    return list(params.items()) if isinstance(params, Mapping) else list(params)


def signature(auth_token: str, url: str, params: Params) -> str:
    """`X-Twilio-Signature` for a form-encoded request to `url`."""
    grouped: dict[str, set[str]] = {}
    for key, value in pairs(params):
        grouped.setdefault(key, set()).add(value)
    data = url + "".join(key + value for key in sorted(grouped) for value in sorted(grouped[key]))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def body_sha256(body: str) -> str:
    """The `bodySHA256` query value of a JSON webhook."""
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(slots=True)
class RestRequest:
    """One REST request the fake received."""

    method: str
    path: str
    account_sid: str
    form: MultiDict[str]
    match: dict[str, str]


@dataclass(slots=True)
class FakeCall:
    """A call resource as the REST API shows it."""

    sid: str
    account_sid: str
    to: str
    from_: str
    status: str = "queued"
    parent_call_sid: str | None = None
    direction: str = "outbound-api"
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    updates: list[dict[str, str]] = field(default_factory=list)
    created_with: dict[str, str] = field(default_factory=dict)
    status_events: tuple[str, ...] = ()

    def json(self) -> dict[str, Any]:
        """The JSON Twilio answers with."""
        stamp = rfc2822(self.created_at)
        return {
            "sid": self.sid,
            "account_sid": self.account_sid,
            "parent_call_sid": self.parent_call_sid,
            "to": self.to,
            "to_formatted": self.to,
            "from": self.from_,
            "from_formatted": self.from_,
            "status": self.status,
            "direction": self.direction,
            "api_version": API_VERSION,
            "date_created": stamp,
            "date_updated": stamp,
            "start_time": stamp if self.status != "queued" else None,
            "end_time": None,
            "duration": None,
            "price": None,
            "price_unit": "USD",
            "answered_by": None,
            "forwarded_from": None,
            "group_sid": None,
            "caller_name": None,
            "queue_time": "0",
            "trunk_sid": None,
            "phone_number_sid": None,
            "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{self.sid}.json",
            "subresource_uris": {},
        }


class FakeTwilio:
    """The REST side: an aiohttp server on 127.0.0.1 with Basic auth per account."""

    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.calls: dict[str, FakeCall] = {}
        self.requests: list[RestRequest] = []
        self.on_call_update: list[Callable[[FakeCall, dict[str, str]], Awaitable[None]]] = []
        self._routes: list[tuple[str, str, RestHandler]] = []
        self._file_routes: list[tuple[str, str, FileHandler]] = []
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self.route("POST", "/Calls.json", self._create_call)
        self.route("GET", "/Calls/{CallSid}.json", self._fetch_call)
        self.route("POST", "/Calls/{CallSid}.json", self._update_call)

    def route(self, method: str, path: str, handler: RestHandler) -> None:
        """Answer `method /2010-04-01/Accounts/{sid}<path>` with a handler returning (status, JSON)."""
        self._routes.append((method, path, handler))

    def file_route(self, method: str, path: str, handler: FileHandler) -> None:
        """Answer `method /2010-04-01/Accounts/{sid}<path>` with any response (media), after Basic auth."""
        self._file_routes.append((method, path, handler))

    async def start(self) -> str:
        """Listen on a free port; return the base URL (`http://127.0.0.1:PORT`)."""
        app = web.Application()
        for method, path, handler in self._routes:
            app.router.add_route(
                method, f"/{API_VERSION}/Accounts/{{AccountSid}}{path}", self._endpoint(method, handler)
            )
        for method, path, file_handler in self._file_routes:
            app.router.add_route(
                method, f"/{API_VERSION}/Accounts/{{AccountSid}}{path}", self._file_endpoint(file_handler)
            )
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _endpoint(
        self, method: str, handler: RestHandler
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def endpoint(request: web.Request) -> web.Response:
            account = request.match_info["AccountSid"]
            expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
            if account != self.account_sid or request.headers.get("Authorization") != expected:
                return _error(401, 20003, "Authenticate")
            form: MultiDict[str] = MultiDict()
            if method != "GET":
                for key, value in (await request.post()).items():
                    form.add(key, str(value))
            else:
                form.extend(request.query)
            match = {k: v for k, v in request.match_info.items() if k != "AccountSid"}
            rest = RestRequest(method, request.path, account, form, match)
            self.requests.append(rest)
            status, body = await handler(rest)
            return web.json_response(body, status=status)

        return endpoint

    def _file_endpoint(self, handler: FileHandler) -> FileHandler:
        async def endpoint(request: web.Request) -> web.StreamResponse:
            expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
            if (
                request.match_info["AccountSid"] != self.account_sid
                or request.headers.get("Authorization") != expected
            ):
                return _error(401, 20003, "Authenticate")
            return await handler(request)

        return endpoint

    def new_call(self, to: str, from_: str, **kwargs: Any) -> FakeCall:
        """Register a call (as when one arrives or is created)."""
        call = FakeCall(sid("CA"), self.account_sid, to, from_, **kwargs)
        self.calls[call.sid] = call
        return call

    async def _create_call(self, request: RestRequest) -> tuple[int, dict[str, Any]]:
        to, from_ = request.form.get("To"), request.form.get("From")
        if not to or not from_ or not (request.form.get("Url") or request.form.get("Twiml")):
            return 400, _error_body(400, 21205, "To, From and Url or Twiml are required")
        events = tuple(request.form.getall("StatusCallbackEvent", []))
        if set(events) - {"initiated", "ringing", "answered", "completed"}:
            return 400, _error_body(400, 21626, "Invalid StatusCallbackEvent")
        call = self.new_call(to, from_, created_with=dict(request.form.items()), status_events=events)
        return 201, call.json()

    async def _fetch_call(self, request: RestRequest) -> tuple[int, dict[str, Any]]:
        call = self.calls.get(request.match["CallSid"])
        if call is None:
            return not_found()
        return 200, call.json()

    async def _update_call(self, request: RestRequest) -> tuple[int, dict[str, Any]]:
        call = self.calls.get(request.match["CallSid"])
        if call is None:
            return not_found()
        if call.status in ("completed", "canceled", "failed", "busy", "no-answer"):
            return 400, _error_body(400, 21220, "Call is not in-progress. Cannot redirect.")
        update = dict(request.form.items())
        call.updates.append(update)
        if update.get("Status") in ("completed", "canceled"):
            call.status = update["Status"]
        for listener in self.on_call_update:
            await listener(call, update)
        return 200, call.json()


def not_found() -> tuple[int, dict[str, Any]]:
    """Twilio's answer for a resource it does not have."""
    return 404, _error_body(404, 20404, "The requested resource was not found")


def _error_body(status: int, code: int, message: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _error(status: int, code: int, message: str) -> web.Response:
    return web.json_response(_error_body(status, code, message), status=status)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One webhook request: where it goes and its form fields."""

    url: str
    params: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Answer:
    """What the hub answered to a webhook."""

    status: int
    text: str
    content_type: str


class WebhookSender:
    """Posts signed webhooks to the hub as Twilio does.

    URLs are the public ones Twilio knows (as the hub writes them into TwiML); requests go
    to `local_base` instead of `public_base` and are signed over the public URL, as when
    the hub sits behind a proxy.
    """

    def __init__(
        self, auth_token: str, session: aiohttp.ClientSession, *, public_base: str = "", local_base: str = ""
    ) -> None:
        self.auth_token = auth_token
        self.session = session
        self.public_base = public_base.rstrip("/")
        self.local_base = local_base.rstrip("/")
        self._sequence: dict[str, itertools.count[int]] = {}
        self.sent: list[tuple[Delivery, Answer]] = []

    def sign(self, url: str, params: Params) -> str:
        """The signature Twilio would send."""
        return signature(self.auth_token, url, params)

    def local(self, url: str) -> str:
        """Where a public URL is reached from here."""
        if self.public_base and url.startswith(self.public_base):
            return self.local_base + url[len(self.public_base) :]
        return url

    async def post(
        self,
        url: str,
        params: Params,
        *,
        sign: bool = True,
        signature_value: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """POST a form to a public URL, signed over it (or with `signature_value`, or unsigned)."""
        form = pairs(params)
        sent_headers = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        if sign:
            sent_headers["X-Twilio-Signature"] = signature_value or self.sign(url, form)
        async with self.session.post(self.local(url), data=form, headers=sent_headers) as response:
            answer = Answer(response.status, await response.text(), response.content_type)
        self.sent.append((Delivery(url, tuple(form)), answer))
        return answer

    async def post_json(self, url: str, body: Any) -> Answer:
        """POST a JSON webhook with `bodySHA256` in its URL."""
        text = json.dumps(body)
        full = f"{url}{'&' if '?' in url else '?'}bodySHA256={body_sha256(text)}"
        headers = {"Content-Type": "application/json", "X-Twilio-Signature": self.sign(full, [])}
        async with self.session.post(self.local(full), data=text, headers=headers) as response:
            return Answer(response.status, await response.text(), response.content_type)

    def status_params(
        self,
        call_sid: str,
        status: str,
        at: datetime,
        *,
        account_sid: str,
        parent_sid: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> tuple[tuple[str, str], ...]:
        """The fields of one status callback, with the call's next SequenceNumber."""
        counter = self._sequence.setdefault(call_sid, itertools.count())
        fields = {
            "AccountSid": account_sid,
            "CallSid": call_sid,
            "CallStatus": status,
            "Timestamp": rfc2822(at),
            "SequenceNumber": str(next(counter)),
            "CallbackSource": "call-progress-events",
            "ApiVersion": API_VERSION,
            **({"ParentCallSid": parent_sid} if parent_sid else {}),
            **(extra or {}),
        }
        return tuple(fields.items())

    async def deliver(
        self,
        deliveries: Iterable[Delivery],
        *,
        twice: bool = False,
        shuffle: random.Random | None = None,
        reverse: bool = False,
        delay: float = 0.0,
    ) -> list[Answer]:
        """Send callbacks, optionally after a delay, each twice, shuffled or in reverse order."""
        batch = list(deliveries)
        if twice:
            batch = [d for d in batch for _ in range(2)]
        if reverse:
            batch.reverse()
        if shuffle is not None:
            shuffle.shuffle(batch)
        if delay:
            await asyncio.sleep(delay)
        return [await self.post(d.url, d.params) for d in batch]
