"""Downloading media and recordings from Twilio with the account's credentials, on the shared session."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from channels.basic_auth import basic_auth
from channels.downloads import read_at_most
from channels.twilio.rest import TWILIO_HOST
from hub.errors import ChannelAuthError, ChannelUnavailable, DeliveryRejected

EXTENSIONS = {
    "audio/x-wav": "wav",
    "audio/wav": "wav",
    "audio/mpeg": "mp3",
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "application/pdf": "pdf",
    "video/mp4": "mp4",
    "text/vcard": "vcf",
}


@dataclass(frozen=True, slots=True)
class Downloaded:
    """A file fetched from Twilio."""

    data: bytes
    content_type: str


class MediaFetcher:
    """Fetches URLs Twilio gave us, authenticating as the account; `base_url` redirects twilio.com (tests)."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        account_sid: str,
        auth_token: str,
        *,
        base_url: str | None = None,
        max_bytes: int = 25 * 1024 * 1024,
        timeout: float = 30,
    ) -> None:
        self.http = http
        self._headers = {"Authorization": basic_auth(account_sid, auth_token)}
        self.base_url = base_url
        self.max_bytes = max_bytes
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def fetch(self, url: str) -> Downloaded:
        """The file; ChannelUnavailable if Twilio cannot be reached now, DeliveryRejected if it is gone."""
        if self.base_url:
            url = TWILIO_HOST.sub(self.base_url, url)
        try:
            async with self.http.get(url, headers=self._headers, timeout=self.timeout) as response:
                if response.status in (401, 403):
                    raise ChannelAuthError(f"Twilio refused our credentials for {_safe(url)}")
                if response.status == 404:
                    raise DeliveryRejected(f"Twilio has no file at {_safe(url)}")
                if response.status >= 400:
                    raise ChannelUnavailable(f"Twilio answered {response.status} for {_safe(url)}")
                data = await read_at_most(response, self.max_bytes)
                content_type = response.content_type
        except (aiohttp.ClientError, TimeoutError) as err:
            raise ChannelUnavailable(f"downloading {_safe(url)}: {type(err).__name__}: {err}") from err
        if len(data) > self.max_bytes:
            raise DeliveryRejected(f"{_safe(url)} is over {self.max_bytes} bytes")
        return Downloaded(data, content_type)


def filename(stem: str, content_type: str) -> str:
    """A file name for downloaded media from its id and type."""
    return f"{stem}.{EXTENSIONS.get(content_type, 'bin')}"


def _safe(url: str) -> str:
    return url.split("?", 1)[0]
