"""A real hub in this process, a customer's site on another origin, and one headless Chromium."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from hub import config as hub_config
from hub.models import Availability, Role
from hub.runtime import Hub
from hub.services import Services
from tests.conftest import unavailable
from tests.conftest_web import PASSWORD

CHROMIUM = os.environ.get("OMNIHUB_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@dataclass
class Site:
    """The customer's own web site, on another origin, with the widget tag and a tracking pixel."""

    url: str
    pixel_hits: list[str]


ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass
class LiveHub:
    """The running hub and its users."""

    hub: Hub
    url: str
    site: Site

    @property
    def services(self) -> Services:
        assert self.hub.services is not None
        return self.hub.services


def shot(page: Page, name: str) -> Any:
    """Save a screenshot as a test artefact."""
    ARTIFACTS.mkdir(exist_ok=True)
    return page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


async def _site(hub_url: str) -> tuple[web.AppRunner, Site]:
    hits: list[str] = []

    async def shop(request: web.Request) -> web.Response:
        html = (
            '<!doctype html><html><head><meta charset="utf-8"><title>Shop</title></head>'
            "<body><h1>Lanhai Home</h1><p>Sofas, tables and lamps.</p>"
            f'<script src="{hub_url}/webhooks/webchat/website/widget.js" data-hub="{hub_url}" '
            f'data-channel="website" data-lang="{request.query.get("lang", "en")}"></script></body></html>'
        )
        return web.Response(text=html, content_type="text/html")

    async def pixel(request: web.Request) -> web.Response:
        hits.append(request.path_qs)
        return web.Response(body=b"GIF89a", content_type="image/gif")

    app = web.Application()
    app.router.add_get("/", shop)
    app.router.add_get("/pixel.gif", pixel)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, Site(f"http://localhost:{port}", hits)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveHub]:
    folder = tmp_path_factory.mktemp("hub")
    config = hub_config.parse(
        {
            "hub": {"data_dir": str(folder / "data"), "public_url": "http://127.0.0.1:8080"},
            "store": {"url": f"sqlite+aiosqlite:///{folder / 'hub.db'}"},
            "web": {"port": 0},
            "outbox": {"base_delay_seconds": 0.2, "max_delay_seconds": 1, "poll_seconds": 0.2},
            "rules_dir": str(ROOT / "rules"),
            "company": {
                "name": "Example Furniture Ltd",
                "address": "1 Example Street, London EC1A 1AA",
                "phone": "+44 20 7946 0000",
            },
            "channels": [
                {"name": "website", "kind": "webchat"},
                {"name": "mail", "kind": "memory", "carries": ["email"]},
            ],
        },
        folder,
    )
    hub = Hub(config)
    await hub.start()
    assert hub.address is not None and hub.services is not None
    url = f"http://127.0.0.1:{hub.address[1]}"
    directory = hub.services.directory
    await directory.add_agent(
        "li.wei", PASSWORD, Role.AGENT, display_name="Li Wei", availability=Availability.AVAILABLE
    )
    await directory.add_agent("james", PASSWORD, Role.AGENT, display_name="James Okafor")
    await directory.add_agent("wang.fang", PASSWORD, Role.AGENT, display_name="王芳", language="zh")
    await directory.add_agent("emma", PASSWORD, Role.SUPERVISOR, display_name="Emma Clarke")
    runner, site = await _site(url)
    try:
        yield LiveHub(hub, url, site)
    finally:
        await runner.cleanup()
        await hub.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not await asyncio.to_thread(Path(CHROMIUM).is_file):
        unavailable(f"Chromium at {CHROMIUM}")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        await chromium.close()


@dataclass
class Watched:
    """A browser context whose dialogs, script errors and completed requests are recorded."""

    context: BrowserContext
    dialogs: list[str]
    errors: list[str]
    requests: list[str]

    async def page(self) -> Page:
        """A new page in this context."""
        page = await self.context.new_page()
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("requestfinished", lambda r: self.requests.append(r.url))
        return page


async def watched(browser: Browser, **options: Any) -> Watched:
    """A fresh context (own cookies and storage) with everything it does recorded."""
    context = await browser.new_context(viewport={"width": 1400, "height": 860}, **options)
    return Watched(context, [], [], [])


async def login(page: Page, base: str, username: str) -> None:
    """Log in through the form and wait for the inbox."""
    await page.goto(f"{base}/inbox")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/inbox")
    await page.wait_for_selector("#live.on")


async def signed_in(browser: Browser, base: str, username: str, **options: Any) -> tuple[Watched, Page]:
    """A fresh watched context with one page, logged in as the user and on the inbox."""
    user = await watched(browser, **options)
    page = await user.page()
    await login(page, base, username)
    return user, page
