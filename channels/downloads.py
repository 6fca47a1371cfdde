"""Reading a download no further than a limit, so an oversized file never sits whole in memory."""

from __future__ import annotations

import aiohttp

CHUNK = 64 * 1024


async def read_at_most(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, or its first `limit + 1` bytes or so when it is longer (longer than `limit` means over)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(CHUNK):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    return b"".join(chunks)
