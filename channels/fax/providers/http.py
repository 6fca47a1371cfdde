"""Calling a provider's REST API: one request, its answer mapped onto the hub's channel errors."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from channels.downloads import read_at_most
from hub.errors import ChannelAuthError, ChannelUnavailable, DeliveryRejected

RETRYABLE = frozenset({408, 409, 425, 429})


async def call(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    what: str,
    seconds: float,
    **kwargs: Any,
) -> Any:
    """The JSON answer of a 2xx response; else ChannelUnavailable, ChannelAuthError or DeliveryRejected."""
    try:
        async with session.request(
            method, url, timeout=aiohttp.ClientTimeout(total=seconds), **kwargs
        ) as response:
            status, text = response.status, await response.text()
    except (aiohttp.ClientError, TimeoutError) as err:
        raise ChannelUnavailable(f"{what}: {type(err).__name__}: {err}") from err
    if 200 <= status < 300:
        try:
            return json.loads(text) if text.strip() else {}
        except ValueError as err:
            raise ChannelUnavailable(f"{what}: the answer is not JSON: {text[:200]!r}") from err
    if status in (401, 403):
        raise ChannelAuthError(f"{what}: credentials refused ({status})")
    if status >= 500 or status in RETRYABLE:
        raise ChannelUnavailable(f"{what}: answered {status}")
    raise DeliveryRejected(f"{what}: refused with {status}: {text[:300]}")


async def download(
    session: aiohttp.ClientSession, url: str, *, what: str, seconds: float, limit: int, **kwargs: Any
) -> bytes:
    """The body of a 2xx GET, read no further than just past `limit` bytes; ChannelUnavailable otherwise."""
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=seconds), **kwargs) as response:
            if response.status != 200:
                raise ChannelUnavailable(f"{what}: media answered {response.status}")
            return await read_at_most(response, limit)
    except (aiohttp.ClientError, TimeoutError) as err:
        raise ChannelUnavailable(f"{what}: {type(err).__name__}: {err}") from err
