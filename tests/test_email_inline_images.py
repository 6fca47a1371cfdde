"""Inline (`cid:`) images of a parsed mail are served by the hub at the URL its HTML points to."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from channels.email.parse import parse_message
from hub.models import Role
from hub.services import Services
from hub.web.app import create_app
from tests.conftest_web import as_role

PAYLOADS = Path(__file__).parent / "payloads" / "email"


async def test_inline_image_url_in_the_sanitised_html_serves_the_image(
    aiohttp_client: Any, services: Services
) -> None:
    parsed = parse_message((PAYLOADS / "html_inline_image.eml").read_bytes(), account="acme")
    stored = await services.inbox.ingest(parsed.message)
    [message] = (await services.inbox.timeline(stored.conversation_id)).messages
    assert message.html is not None
    [url] = re.findall(r'<img src="([^"]+)"', message.html)
    agent = await as_role(await aiohttp_client(create_app(services)), services, Role.AGENT)
    async with agent.client.get(url, headers=agent.headers) as response:
        assert response.status == 200
        assert await response.read() == parsed.message.attachments[0].data
        assert response.headers["Content-Type"] == "image/png"
    await agent.get("/api/attachments/by-hash/" + "0" * 64, expect=404)
    await agent.get("/api/attachments/by-hash/not-a-hash", expect=404)
    async with agent.client.get(url) as anonymous:
        assert anonymous.status == 401
