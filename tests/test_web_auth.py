"""Logging in and out, sessions, CSRF, API tokens and the login throttle."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from hub.models import Role
from hub.services import Services
from hub.web import create_app
from hub.web.auth import CSRF_HEADER, SESSION_COOKIE
from tests.conftest import FakeClock
from tests.conftest_web import PASSWORD, Caller, add_agent

Client = TestClient[Any, Any]


@pytest.fixture
async def client(aiohttp_client: Any, services: Services) -> Client:
    return await aiohttp_client(create_app(services))


@pytest.fixture
async def ana(services: Services) -> Any:
    return await add_agent(services, Role.AGENT, "ana", password=PASSWORD)


async def login(client: Client, username: str = "ana", password: str = PASSWORD) -> Any:
    async with client.post("/api/login", json={"username": username, "password": password}) as r:
        return r.status, await r.json(), r.headers.getall("Set-Cookie", [])


async def test_login_sets_a_safe_cookie_and_returns_the_csrf_token(client: Client, ana: Any) -> None:
    status, body, cookies = await login(client)
    assert status == 200
    assert body["agent"]["username"] == "ana"
    assert body["agent"]["role"] == "agent"
    assert body["csrf_token"]
    assert "password" not in str(body)
    [cookie] = [c for c in cookies if c.startswith(f"{SESSION_COOKIE}=")]
    flags = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in flags
    assert "samesite=lax" in flags
    assert "path=/" in flags
    assert "secure" not in flags
    assert "max-age=43200" in flags
    me = await Caller(client).get("/api/me")
    assert me["agent"]["id"] == ana.id
    assert me["csrf_token"] == body["csrf_token"]


async def test_secure_cookies_when_configured(
    aiohttp_client: Any, make_config: Any, clock: FakeClock
) -> None:
    from hub.services import open_services

    services = await open_services(make_config(web={"secure_cookies": True, "session_hours": 1}), clock=clock)
    try:
        await add_agent(services, Role.AGENT, "ana", password=PASSWORD)
        client = await aiohttp_client(create_app(services))
        status, _, cookies = await login(client)
        assert status == 200
        flags = [part.strip().lower() for part in cookies[0].split(";")]
        assert "secure" in flags
        assert "max-age=3600" in flags
    finally:
        await services.close()


async def test_wrong_password_and_unknown_user_get_one_generic_401(client: Client, ana: Any) -> None:
    wrong = await login(client, password="not the password")
    unknown = await login(client, username="nobody")
    assert wrong[0] == unknown[0] == 401
    assert wrong[1] == unknown[1] == {"error": "wrong user name or password"}
    assert not wrong[2]
    assert not unknown[2]


async def test_inactive_user_is_refused(client: Client, services: Services, ana: Any) -> None:
    await services.directory.update_agent(ana.id, active=False)
    status, body, _ = await login(client)
    assert status == 401
    assert body["error"] == "wrong user name or password"


async def test_deactivation_ends_running_sessions(client: Client, services: Services, ana: Any) -> None:
    await login(client)
    await Caller(client).get("/api/me")
    await services.directory.update_agent(ana.id, active=False)
    await Caller(client).get("/api/me", expect=401)


async def test_logout_ends_the_session(client: Client, ana: Any) -> None:
    _, body, _ = await login(client)
    caller = Caller(client, headers={CSRF_HEADER: body["csrf_token"]})
    await caller.post("/api/logout", expect=204)
    await caller.get("/api/me", expect=401)


async def test_session_expires(client: Client, clock: FakeClock, ana: Any) -> None:
    await login(client)
    await Caller(client).get("/api/me")
    clock.advance(hours=12, seconds=1)
    body = await Caller(client).get("/api/me", expect=401)
    assert body["error"]


async def test_cookie_requests_that_change_state_need_the_csrf_token(client: Client, ana: Any) -> None:
    _, body, _ = await login(client)
    caller = Caller(client)
    change = {"availability": "busy"}
    refused = await caller.patch("/api/me", change, expect=403)
    assert CSRF_HEADER in refused["error"]
    await caller.patch("/api/me", change, headers={CSRF_HEADER: "guess"}, expect=403)
    await caller.patch("/api/me", change, headers={CSRF_HEADER: "密码"}, expect=403)
    await caller.post("/api/logout", expect=403)
    me = await caller.get("/api/me")
    assert me["agent"]["availability"] == "available"
    done = await caller.patch("/api/me", change, headers={CSRF_HEADER: body["csrf_token"]})
    assert done["availability"] == "busy"


async def test_bearer_token_works_without_csrf(client: Client, services: Services) -> None:
    agent = await add_agent(services, Role.AGENT)
    token = await services.directory.issue_token(agent.id, "script")
    caller = Caller(client, headers={"Authorization": f"Bearer {token}"})
    me = await caller.get("/api/me")
    assert me["agent"]["id"] == agent.id
    assert me["csrf_token"] is None
    updated = await caller.patch("/api/me", {"language": "zh", "display_name": "Ana L."})
    assert updated["language"] == "zh"
    assert updated["display_name"] == "Ana L."
    await caller.post("/api/logout", expect=204)
    await caller.get("/api/me")


@pytest.mark.parametrize(
    "header", ["Bearer ohk_not-a-token", "Basic YW5hOnB3", "Bearer", "Bearer " + "x" * 600]
)
async def test_bad_authorization_headers_are_401(client: Client, header: str) -> None:
    body = await Caller(client, headers={"Authorization": header}).get("/api/me", expect=401)
    assert body["error"]


async def test_bearer_token_of_inactive_agent_is_refused(client: Client, services: Services) -> None:
    agent = await add_agent(services, Role.AGENT)
    token = await services.directory.issue_token(agent.id, "script")
    await services.directory.update_agent(agent.id, active=False)
    await Caller(client, headers={"Authorization": f"Bearer {token}"}).get("/api/me", expect=401)


async def test_patch_me_cannot_change_role(client: Client, services: Services) -> None:
    agent = await add_agent(services, Role.AGENT)
    token = await services.directory.issue_token(agent.id, "script")
    caller = Caller(client, headers={"Authorization": f"Bearer {token}"})
    body = await caller.patch("/api/me", {"role": "admin"}, expect=422)
    assert body["field"] == "role"
    assert (await services.directory.agent(agent.id)).role is Role.AGENT


async def test_failed_logins_are_throttled(client: Client, clock: FakeClock, ana: Any) -> None:
    for _ in range(10):
        assert (await login(client, password="wrong password"))[0] == 401
    async with client.post("/api/login", json={"username": "ANA", "password": PASSWORD}) as r:
        assert r.status == 429
        assert int(r.headers["Retry-After"]) > 0
        assert (await r.json())["error"]
    assert (await login(client, username="someone-else"))[0] == 401
    clock.advance(minutes=5, seconds=1)
    assert (await login(client))[0] == 200


async def test_guesses_in_parallel_are_counted_before_checking(client: Client, ana: Any) -> None:
    answers = await asyncio.gather(*(login(client, password=f"guess number {i}") for i in range(25)))
    statuses = [a[0] for a in answers]
    assert statuses.count(401) == 10 and statuses.count(429) == 15


async def test_one_address_guessing_many_users_is_throttled(client: Client, ana: Any) -> None:
    for i in range(30):
        assert (await login(client, username=f"user{i}", password="wrong password"))[0] == 401
    assert (await login(client, username="ana"))[0] == 429


async def test_login_validation(client: Client) -> None:
    async with client.post("/api/login", json={"username": "ana"}) as r:
        assert r.status == 422
        assert (await r.json())["field"] == "password"
    async with client.post(
        "/api/login", data=b"{not json", headers={"Content-Type": "application/json"}
    ) as r:
        assert r.status == 400


async def test_login_only_takes_json_so_cross_site_forms_cannot_log_in(client: Client, ana: Any) -> None:
    form = b'{"username": "ana", "password": "' + PASSWORD.encode() + b'"}'
    async with client.post("/api/login", data=form, headers={"Content-Type": "text/plain"}) as r:
        assert r.status == 415
        assert not r.headers.getall("Set-Cookie", [])
