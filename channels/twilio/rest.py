"""The Twilio REST client: one `AsyncTwilioHttpClient` per process, on the process's HTTP session.

The HTTP client is built inside the running loop (the SDK's async client needs one) and
reuses the hub's one `aiohttp.ClientSession`. With `api_base_url` configured, every
`https://<product>.twilio.com` URL the SDK builds is sent to that base instead (tests point
it at the fake on 127.0.0.1). SDK and network errors are wrapped as the hub's channel errors.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable
from typing import TypeVar

import aiohttp
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from channels.basic_auth import basic_auth
from hub.errors import ChannelAuthError, ChannelUnavailable, DeliveryRejected

TWILIO_HOST = re.compile(r"^https://[a-z0-9.-]+\.twilio\.com")
T = TypeVar("T")


class RebasedHttpClient:
    """The SDK's `AsyncTwilioHttpClient` on a shared session, optionally sending to another base URL.

    Credentials go in an `Authorization` header of our own making: aiohttp deprecates the
    `auth=`/`BasicAuth` route the SDK would take.
    """

    is_async = True

    def __init__(self, session: aiohttp.ClientSession, base_url: str | None, timeout: float) -> None:
        self.inner = AsyncTwilioHttpClient(pool_connections=False, timeout=timeout)
        self.inner.session = session
        self.session = session
        self.base_url = base_url
        self.timeout = timeout

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the SDK's interface
        allow_redirects: bool = False,
    ) -> Response:
        """Send one request, to the configured base URL if there is one."""
        if self.base_url:
            url = TWILIO_HOST.sub(self.base_url, url)
        if auth is not None:
            headers = {**(headers or {}), "Authorization": basic_auth(*auth)}
        response: Response = await self.inner.request(
            method, url, params, data, headers, None, timeout or self.timeout, allow_redirects
        )
        return response


_shared: dict[tuple[int, str | None], RebasedHttpClient] = {}


def http_client(session: aiohttp.ClientSession, base_url: str | None, timeout: float) -> RebasedHttpClient:
    """The process's HTTP client for a session and base URL; call it inside the running loop."""
    asyncio.get_running_loop()
    key = (id(session), base_url)
    found = _shared.get(key)
    if found is None or found.session is not session or session.closed:
        found = _shared[key] = RebasedHttpClient(session, base_url, timeout)
    return found


def client(
    session: aiohttp.ClientSession, account_sid: str, auth_token: str, base_url: str | None, timeout: float
) -> Client:
    """A REST client for one account on the shared HTTP client."""
    return Client(account_sid, auth_token, http_client=http_client(session, base_url, timeout))


async def call(action: Awaitable[T], what: str) -> T:
    """Await an SDK call; raise the hub's error for what went wrong (auth, refusal, transient)."""
    try:
        return await action
    except TwilioRestException as err:
        detail = f"{what}: Twilio answered {err.status} ({err.code}): {err.msg}"
        if err.status in (401, 403):
            raise ChannelAuthError(detail) from err
        if err.status == 429 or err.status >= 500:
            raise ChannelUnavailable(detail) from err
        raise DeliveryRejected(detail) from err
    except (aiohttp.ClientError, TimeoutError) as err:
        raise ChannelUnavailable(f"{what}: {type(err).__name__}: {err}") from err
