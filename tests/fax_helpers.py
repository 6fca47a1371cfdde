"""A hub with a fax line, its web app on a real port of 127.0.0.1 (providers call it back), and documents."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from fpdf import FPDF
from sqlalchemy import func, insert, select

from hub.services import Services
from hub.store import schema
from hub.web.app import create_app
from tests.conftest_web import services_with_channels

OUR_FAX = "+441134960388"
CUSTOMER_FAX = "+442079460958"


@dataclass
class FaxHub:
    """The services and the base URL of their web app."""

    services: Services
    url: str


def free_port() -> int:
    """A port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def fax_hub(
    make_config: Any, clock: Any, line: dict[str, Any], **sections: Any
) -> AsyncIterator[FaxHub]:
    """Services with the fax line `line` (and any other channels), served on 127.0.0.1."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"

    def config(**kw: Any) -> Any:
        return make_config(hub={"public_url": url}, **sections, **kw)

    extra = sections.pop("channels", [])
    async with services_with_channels(config, clock, [*extra, line]) as services:
        runner = web.AppRunner(create_app(services))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            yield FaxHub(services, url)
        finally:
            await runner.cleanup()


def pdf_pages(pages: int, label: str = "page") -> bytes:
    """A real PDF with text on each page."""
    pdf = FPDF()
    pdf.set_font("helvetica", size=16)
    for n in range(pages):
        pdf.add_page()
        pdf.cell(0, 10, f"{label} {n + 1}")
    return bytes(pdf.output())


async def count(services: Services, table: Any, *where: Any) -> int:
    """Rows in a table."""
    async with services.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table).where(*where))).scalar_one())


async def conversation_of(services: Services, fax_id: str) -> int:
    """The conversation a received fax was stored in."""
    m = schema.messages
    async with services.db.read() as conn:
        return int(
            (await conn.execute(select(m.c.conversation_id).where(m.c.external_id == fax_id))).scalar_one()
        )


async def attach(services: Services, message_id: int, filename: str, content_type: str, data: bytes) -> None:
    """Store a file on an outgoing message, as the composer stores a reply's attachments."""
    sha = await services.blobs.put(data)
    async with services.db.write() as conn:
        await conn.execute(
            insert(schema.attachments),
            {"message_id": message_id, "filename": filename, "content_type": content_type,
             "size": len(data), "sha256": sha},
        )  # fmt: skip


async def until(check: Callable[[], Awaitable[Any]], seconds: float = 10) -> Any:
    """Wait until `check()` is truthy; return its value."""
    async with asyncio.timeout(seconds):
        while not (value := await check()):
            await asyncio.sleep(0.02)
    return value
