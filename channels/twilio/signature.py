"""Checking Twilio's `X-Twilio-Signature` on webhooks, against the public URL Twilio called.

Form-encoded webhooks are validated over aiohttp's `await request.post()` multidict as it
is: repeated keys stay repeated, as Twilio signed them. JSON webhooks carry `bodySHA256`
in the query string and are validated over the raw body. The URL is rebuilt from
configuration (the hub's or the account's public URL); `X-Forwarded-Proto` and
`X-Forwarded-Host` count only when the account is configured to trust them. A missing or
wrong signature is a 403.
"""

from __future__ import annotations

import base64
import hmac
import json
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web
from multidict import MultiDict, MultiDictProxy
from twilio.request_validator import RequestValidator

SIGNATURE_HEADER = "X-Twilio-Signature"
FORM_TYPE = "application/x-www-form-urlencoded"
JSON_TYPE = "application/json"
MAX_BODY = 256 * 1024


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """A webhook whose signature checked out: its form fields, or its JSON body."""

    url: str
    form: MultiDictProxy[str]
    json: Any = None
    body: bytes = b""
    """The body as Twilio sent it (what was signed, for form webhooks with their URL)."""


def public_url(request: web.Request, base_url: str, *, trust_forwarded: bool = False) -> str:
    """The URL Twilio called: the configured public base with the request's path and query."""
    if trust_forwarded:
        proto = _first(request.headers.get("X-Forwarded-Proto"))
        host = _first(request.headers.get("X-Forwarded-Host"))
        if proto and host:
            return f"{proto}://{host}{request.raw_path}"
    return base_url.rstrip("/") + request.raw_path


def _first(value: str | None) -> str | None:
    return value.split(",")[0].strip() or None if value else None


class WebhookVerifier:
    """Verifies webhooks of one account."""

    def __init__(self, auth_token: str, base_url: str, *, trust_forwarded: bool = False) -> None:
        self._validator = RequestValidator(auth_token)
        self._mac = hmac.new(auth_token.encode(), digestmod="sha1")
        self.base_url = base_url
        self.trust_forwarded = trust_forwarded

    def url_of(self, request: web.Request) -> str:
        """The public URL of a request, as Twilio signed it."""
        return public_url(request, self.base_url, trust_forwarded=self.trust_forwarded)

    def valid(self, url: str, params: Any, signature: str) -> bool:
        """Whether a signature is right for this URL and these params (a multidict, or a JSON body)."""
        if isinstance(params, MultiDictProxy | MultiDict) and self._signed_as_is(url, params, signature):
            return True
        return bool(self._validator.validate(url, params, signature))

    def _signed_as_is(self, url: str, params: MultiDictProxy[Any] | MultiDict[Any], signature: str) -> bool:
        """Twilio's HMAC-SHA1 over this exact URL and the sorted fields (constant-time compare)."""
        text = url + "".join(name + str(value) for name, value in sorted(set(params.items())))
        mac = self._mac.copy()
        mac.update(text.encode())
        given = signature.encode("utf-8", "surrogateescape")
        return hmac.compare_digest(base64.b64encode(mac.digest()), given)

    async def verify(self, request: web.Request) -> SignedRequest:
        """The request's fields once its signature is checked; raise 403 (or 400, 413, 415) otherwise."""
        signature = request.headers.get(SIGNATURE_HEADER)
        if not signature:
            raise _forbidden("missing X-Twilio-Signature")
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=request.content_length)
        url = self.url_of(request)
        if request.content_type == JSON_TYPE:
            body = await request.text()
            if "bodySHA256" not in request.query or not self.valid(url, body, signature):
                raise _forbidden("wrong X-Twilio-Signature")
            try:
                data = json.loads(body)
            except ValueError:
                raise web.HTTPBadRequest(reason="the body is not valid JSON") from None
            return SignedRequest(url, MultiDictProxy(MultiDict()), data, await request.read())
        if request.content_type != FORM_TYPE and request.body_exists:
            raise web.HTTPUnsupportedMediaType(reason=f"send {FORM_TYPE} or {JSON_TYPE}")
        form = await request.post()
        if not all(isinstance(value, str) for value in form.values()):
            raise web.HTTPBadRequest(reason="file fields are not accepted")
        if not self.valid(url, form, signature):
            raise _forbidden("wrong X-Twilio-Signature")
        return SignedRequest(url, cast("MultiDictProxy[str]", form), body=await request.read())


def _forbidden(reason: str) -> web.HTTPForbidden:
    return web.HTTPForbidden(reason=reason)
