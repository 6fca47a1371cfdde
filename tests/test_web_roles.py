"""Every route declares who may call it, and the check happens before anything is looked up."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from hub.errors import ConfigError
from hub.models import Role
from hub.services import Services
from hub.web import create_app
from hub.web.routing import ROUTES, Access
from tests.conftest import FakeClock
from tests.conftest_web import Caller, as_role, services_with_channels

Client = TestClient[Any, Any]

PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/api/openapi.json"),
    ("POST", "/api/login"),
    ("GET", "/login"),
    ("GET", "/static/{file}"),
}
WEBHOOKS = {
    ("POST", "/webhooks/api/partner/messages"),
    ("GET", "/webhooks/webchat/site/widget.js"),
    ("GET", "/webhooks/webchat/site/demo"),
    ("GET", "/webhooks/webchat/site/config"),
    ("GET", "/webhooks/webchat/site/socket"),
    ("POST", "/webhooks/webchat/site/offline"),
    ("OPTIONS", "/webhooks/webchat/site/offline"),
    ("POST", "/webhooks/fax/fx/callback"),
}
PAGES = {"/", "/inbox", "/conversations/{id}", "/dashboard"}
"""UI pages: a browser that is not logged in is sent to the login page instead of a 401."""
SOCKETS = {"/ws"}


@pytest.fixture
async def hub(make_config: Any, clock: FakeClock) -> AsyncIterator[Services]:
    channels = [
        {"name": "partner", "kind": "api", "secret": "s3cret-value"},
        {"name": "site", "kind": "webchat"},
        {
            "name": "fx",
            "kind": "fax",
            "number": "+441134960388",
            "provider": "sinch",
            "sinch": {"project_id": "p", "key_id": "k", "key_secret": "s", "callback_token": "t"},
        },
    ]
    async with services_with_channels(make_config, clock, channels) as services:
        yield services


@pytest.fixture
async def client(aiohttp_client: Any, hub: Services) -> Client:
    return await aiohttp_client(create_app(hub))


def concrete(template: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", template)


def routes(client: Client) -> list[tuple[str, str, Any]]:
    app = client.app
    assert app is not None
    found = []
    for route in app.router.routes():
        assert route.resource is not None
        found.append((route.method, route.resource.canonical, app[ROUTES].spec(route)))
    return found


async def test_every_route_declares_its_access(client: Client) -> None:
    table = routes(client)
    assert len(table) > 30
    undeclared = [(m, p) for m, p, spec in table if spec is None]
    assert not undeclared
    open_routes = {(m, p) for m, p, spec in table if spec.access is Access.PUBLIC}
    webhooks = {(m, p) for m, p, spec in table if spec.access is Access.WEBHOOK}
    assert open_routes == PUBLIC
    assert webhooks == WEBHOOKS
    assert all(
        p.startswith("/api/") or p == "/metrics" or p in PAGES | SOCKETS
        for m, p, spec in table
        if isinstance(spec.access, Role)
    )


async def test_protected_routes_refuse_anonymous_and_lower_roles_before_any_lookup(
    client: Client, hub: Services
) -> None:
    callers = {role: await as_role(client, hub, role) for role in Role}
    anonymous = Caller(client)
    checked = 0
    for method, template, spec in routes(client):
        if not isinstance(spec.access, Role):
            continue
        path = concrete(template)
        if template in PAGES:
            async with client.get(path, allow_redirects=False) as response:
                assert response.status == 302, path
                assert response.headers["Location"].startswith("/login?next="), path
        else:
            body = await anonymous.call(method, path, expect=401)
            assert body["error"], (method, path)
        for role in Role:
            if role < spec.access:
                body = await callers[role].call(method, path, expect=403)
                assert spec.access.name.lower() in body["error"], (method, path)
        checked += 1
    assert checked > 25


async def test_roles_are_enough_for_their_routes(client: Client, hub: Services) -> None:
    admin = await as_role(client, hub, Role.ADMIN)
    supervisor = await as_role(client, hub, Role.SUPERVISOR)
    await admin.get("/api/outbox")
    await supervisor.get("/api/outbox")
    await supervisor.get("/api/stats")
    await supervisor.post("/api/teams", {"name": "Billing"}, expect=403)
    await admin.post("/api/teams", {"name": "Billing"}, expect=201)


async def test_public_routes_answer_without_login(client: Client) -> None:
    anonymous = Caller(client)
    await anonymous.get("/healthz")
    await anonymous.get("/readyz")
    await anonymous.get("/metrics", expect=401)
    await anonymous.get("/api/openapi.json")


async def test_webhooks_check_their_own_signature(client: Client) -> None:
    body = await Caller(client).post("/webhooks/api/partner/messages", {"external_id": "1"}, expect=403)
    assert "signature" in body["error"]
    body = await Caller(client).post("/webhooks/fax/fx/callback?token=guess", {"event": "x"}, expect=403)
    assert "credentials" in body["error"]


async def test_unknown_paths_and_methods_answer_json(client: Client) -> None:
    anonymous = Caller(client)
    assert (await anonymous.get("/api/nothing-here", expect=404))["error"]
    assert (await anonymous.get("/api/conversations/abc", expect=404))["error"]
    assert (await anonymous.call("DELETE", "/api/login", expect=405))["error"]


async def test_a_route_without_declared_access_stops_the_app(services: Services) -> None:
    async def sneaky(request: web.Request) -> web.Response:
        return web.json_response({"secret": True})

    app = create_app(services)
    app.router.add_get("/api/sneaky", sneaky)
    runner = web.AppRunner(app)
    with pytest.raises(ConfigError, match="/api/sneaky"):
        await runner.setup()
    await runner.cleanup()


class WebhookChannel:
    """A channel with one webhook that fails in an unexpected way."""

    kind = "api"

    def __init__(self, name: str, path: str) -> None:
        self.name = name
        self.path = path

    def routes(self) -> list[web.RouteDef]:
        return [web.post(self.path, self.fail)]

    def state(self) -> Any:
        from channels.base import ChannelState

        return ChannelState.CONNECTED

    async def fail(self, request: web.Request) -> web.Response:
        raise RuntimeError("connection to db://admin:hunter2@10.0.0.5 failed")


async def test_unexpected_errors_are_500_without_details(
    aiohttp_client: Any, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    services.channels["broken"] = WebhookChannel("broken", "/webhooks/api/broken/in")  # type: ignore[assignment]
    client = await aiohttp_client(create_app(services))
    body = await Caller(client).post("/webhooks/api/broken/in", {}, expect=500)
    assert "hunter2" not in str(body)
    assert body["error"].startswith("internal error")
    assert "hunter2" in caplog.text


async def test_webhooks_must_stay_under_their_channel_prefix(services: Services) -> None:
    services.channels["sneaky"] = WebhookChannel("sneaky", "/api/login2")  # type: ignore[assignment]
    with pytest.raises(ConfigError, match="/webhooks/api/sneaky/"):
        create_app(services)
