"""Admin and supervisor routes, and the public ones: health, metrics, OpenAPI, headers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import create_async_engine

import channels as channel_registry
from channels.api import SIGNATURE_HEADER, sign
from hub.config import secrets
from hub.models import OutboundStatus, Role
from hub.services import Services
from hub.store import schema
from hub.web import create_app
from hub.web.routing import ROUTES
from tests.conftest import FakeClock
from tests.conftest_web import PASSWORD, Caller, add_agent, as_role, services_with_channels
from tests.factories import inbound

Client = TestClient[Any, Any]
SECRET = "s3cret-value"


@pytest.fixture
async def hub(make_config: Any, clock: FakeClock) -> AsyncIterator[Services]:
    channels = [{"name": "partner", "kind": "api", "secret": SECRET}, {"name": "lab", "kind": "memory"}]
    async with services_with_channels(make_config, clock, channels) as services:
        yield services


@pytest.fixture
async def client(aiohttp_client: Any, hub: Services) -> Client:
    return await aiohttp_client(create_app(hub))


@pytest.fixture
async def admin(client: Client, hub: Services) -> Caller:
    return await as_role(client, hub, Role.ADMIN)


@pytest.fixture
async def supervisor(client: Client, hub: Services) -> Caller:
    return await as_role(client, hub, Role.SUPERVISOR)


async def test_create_and_list_agents(admin: Caller, client: Client) -> None:
    created = await admin.post(
        "/api/agents",
        {
            "username": "li.wei",
            "password": PASSWORD,
            "role": "supervisor",
            "display_name": "李伟",
            "language": "zh",
        },
        expect=201,
    )
    assert created["role"] == "supervisor"
    assert created["display_name"] == "李伟"
    assert created["language"] == "zh"
    assert PASSWORD not in json.dumps(created)
    listed = await admin.get("/api/agents")
    assert created in listed["items"]
    assert "password" not in json.dumps(listed)
    async with client.post("/api/login", json={"username": "li.wei", "password": PASSWORD}) as r:
        assert r.status == 200


async def test_create_agent_validation(admin: Caller) -> None:
    base = {"username": "sam", "password": PASSWORD, "role": "agent"}
    await admin.post("/api/agents", base, expect=201)
    assert "sam" in (await admin.post("/api/agents", base, expect=409))["error"]
    short = await admin.post("/api/agents", {**base, "username": "kim", "password": "short"}, expect=422)
    assert short["field"] == "password"
    role = await admin.post("/api/agents", {**base, "username": "kim", "role": "root"}, expect=422)
    assert role["field"] == "role"
    name = await admin.post("/api/agents", {**base, "username": "kim lee"}, expect=422)
    assert name["field"] == "username"


async def test_update_agent(admin: Caller, hub: Services, client: Client) -> None:
    agent = await add_agent(hub, Role.AGENT, "tom", password=PASSWORD)
    body = await admin.patch(
        f"/api/agents/{agent.id}", {"role": "supervisor", "display_name": "Tom B.", "availability": "busy"}
    )
    assert body["role"] == "supervisor"
    assert body["display_name"] == "Tom B."
    assert body["availability"] == "busy"
    await admin.patch(f"/api/agents/{agent.id}", {"password": "a new long password"})
    async with client.post("/api/login", json={"username": "tom", "password": PASSWORD}) as r:
        assert r.status == 401
    assert (await admin.patch(f"/api/agents/{agent.id}", {"active": False}))["active"] is False
    async with client.post("/api/login", json={"username": "tom", "password": "a new long password"}) as r:
        assert r.status == 401
    await admin.patch("/api/agents/999", {"display_name": "x"}, expect=404)
    assert (await admin.patch(f"/api/agents/{agent.id}", {"role": "boss"}, expect=422))["field"] == "role"


async def test_admins_cannot_lock_themselves_out(admin: Caller) -> None:
    await admin.patch(f"/api/agents/{admin.agent_id}", {"role": "agent"}, expect=409)
    await admin.patch(f"/api/agents/{admin.agent_id}", {"active": False}, expect=409)
    await admin.patch(f"/api/agents/{admin.agent_id}", {"display_name": "Boss"})


async def test_issue_token(admin: Caller, hub: Services, client: Client) -> None:
    agent = await add_agent(hub, Role.AGENT)
    body = await admin.post(f"/api/agents/{agent.id}/tokens", {"name": "crm sync"}, expect=201)
    assert body["name"] == "crm sync"
    assert body["token"].startswith("ohk_")
    script = Caller(client, headers={"Authorization": f"Bearer {body['token']}"})
    assert (await script.get("/api/me"))["agent"]["id"] == agent.id
    assert body["token"] not in json.dumps(await admin.get("/api/agents"))
    await admin.post("/api/agents/999/tokens", {"name": "x"}, expect=404)
    assert (await admin.post(f"/api/agents/{agent.id}/tokens", {}, expect=422))["field"] == "name"

    [listed] = (await admin.get(f"/api/agents/{agent.id}/tokens"))["items"]
    assert listed["name"] == "crm sync" and listed["last_used_at"] is not None
    assert body["token"] not in json.dumps(listed)
    await admin.call("DELETE", f"/api/agents/{agent.id}/tokens/{listed['id']}", expect=204)
    await script.get("/api/me", expect=401)
    await admin.call("DELETE", f"/api/agents/{agent.id}/tokens/{listed['id']}", expect=404)
    assert (await admin.get(f"/api/agents/{agent.id}/tokens"))["items"] == []


async def test_teams_and_members(admin: Caller, hub: Services) -> None:
    agent = await add_agent(hub, Role.AGENT)
    team = await admin.post("/api/teams", {"name": "Billing", "department": "Finance"}, expect=201)
    assert team["department"] == "Finance"
    await admin.post("/api/teams", {"name": "Billing"}, expect=409)
    assert team in (await admin.get("/api/teams"))["items"]
    members = f"/api/teams/{team['id']}/members"
    await admin.put(f"{members}/{agent.id}", expect=204)
    await admin.put(f"{members}/{agent.id}", expect=204)
    listed = await admin.get(members)
    assert [a["id"] for a in listed["items"]] == [agent.id]
    assert listed["items"][0]["teams"] == [team["id"]]
    await admin.delete(f"{members}/{agent.id}", expect=204)
    assert (await admin.get(members))["items"] == []
    await admin.put(f"{members}/999", expect=404)
    await admin.put(f"/api/teams/999/members/{agent.id}", expect=404)
    await admin.delete(f"/api/teams/999/members/{agent.id}", expect=404)
    await admin.get("/api/teams/999/members", expect=404)


async def test_outbox_list_and_retry(supervisor: Caller, hub: Services) -> None:
    result = await hub.inbox.ingest(inbound("<o1@x>", subject="Hello"))
    first = await hub.outbox.reply(result.conversation_id, "First", agent_id=None)
    second = await hub.outbox.reply(result.conversation_id, "Second", agent_id=None)
    body = await supervisor.get("/api/outbox")
    assert [e["message_id"] for e in body["items"]] == [second.id, first.id]
    assert body["items"][0]["recipient"] == "ana@example.com"
    assert body["counts"]["queued"] == 2
    failed_id = body["items"][1]["id"]
    await supervisor.post(f"/api/outbox/{failed_id}/retry", expect=409)
    async with hub.db.write() as conn:
        await conn.execute(
            update(schema.outbox)
            .where(schema.outbox.c.id == failed_id)
            .values(status=OutboundStatus.FAILED.value, last_error="mailbox full", attempts=10)
        )
    failed = await supervisor.get("/api/outbox?status=failed")
    assert [e["id"] for e in failed["items"]] == [failed_id]
    assert failed["items"][0]["last_error"] == "mailbox full"
    retried = await supervisor.post(f"/api/outbox/{failed_id}/retry")
    assert retried["status"] == "queued"
    assert retried["attempts"] == 0
    assert (await supervisor.get("/api/outbox?status=failed"))["items"] == []
    await supervisor.post("/api/outbox/999/retry", expect=404)
    assert (await supervisor.get("/api/outbox?status=lost", expect=422))["field"] == "status"


async def test_merge_contacts(supervisor: Caller, hub: Services) -> None:
    a = await hub.inbox.ingest(inbound("<m1@x>", "ana@example.com"))
    b = await hub.inbox.ingest(inbound("<m2@x>", "ana.lopez@example.org"))
    merged = await supervisor.post(f"/api/contacts/{b.contact_id}/merge", {"into": a.contact_id})
    assert merged["id"] == a.contact_id
    assert {i["address"] for i in merged["identities"]} == {"ana@example.com", "ana.lopez@example.org"}
    await supervisor.post(f"/api/contacts/{a.contact_id}/merge", {"into": a.contact_id}, expect=409)
    await supervisor.post("/api/contacts/999/merge", {"into": a.contact_id}, expect=404)


async def test_contacts(supervisor: Caller, hub: Services) -> None:
    a = await hub.inbox.ingest(inbound("<c1@x>", "ana@example.com", sender_name="Ana López"))
    await hub.inbox.ingest(inbound("<c2@x>", "bob@example.com"))
    assert len((await supervisor.get("/api/contacts"))["items"]) == 2
    found = await supervisor.get("/api/contacts?q=ana@")
    assert [c["id"] for c in found["items"]] == [a.contact_id]
    assert (await supervisor.get(f"/api/contacts/{a.contact_id}"))["name"] == "Ana López"
    body = await supervisor.patch(
        f"/api/contacts/{a.contact_id}", {"timezone": "Europe/Madrid", "language": "es"}
    )
    assert body["timezone"] == "Europe/Madrid"
    assert body["language"] == "es"
    bad = await supervisor.patch(f"/api/contacts/{a.contact_id}", {"timezone": "Mars/Base"}, expect=422)
    assert bad["field"] == "timezone"
    unchanged = await supervisor.patch(f"/api/contacts/{a.contact_id}", {})
    assert unchanged["timezone"] == "Europe/Madrid"
    await supervisor.patch("/api/contacts/999", {"name": "x"}, expect=404)
    await supervisor.get("/api/contacts/999", expect=404)


async def test_channels_show_state_but_never_settings(supervisor: Caller, hub: Services) -> None:
    body = await supervisor.get("/api/channels")
    assert body["items"] == [
        {"name": "lab", "kind": "memory", "state": "connected"},
        {"name": "partner", "kind": "api", "state": "connected"},
    ]
    await hub.channels["partner"].stop()
    body = await supervisor.get("/api/channels")
    assert body["items"][1]["state"] == "stopped"


async def test_secrets_appear_in_no_answer(
    supervisor: Caller, admin: Caller, client: Client, hub: Services
) -> None:
    assert SECRET in secrets([c.settings for c in channel_registry.configured(hub.config)])
    await hub.inbox.ingest(inbound("<s1@x>"))
    answers = [
        await supervisor.call("GET", "/api/channels"),
        await supervisor.call("GET", "/api/stats"),
        await supervisor.call("GET", "/api/outbox"),
        await admin.call("GET", "/api/agents"),
        await Caller(client).call("GET", "/api/openapi.json"),
        await Caller(client).call("GET", "/readyz"),
        await supervisor.call("GET", "/metrics"),
    ]
    for answer in answers:
        text = answer.decode() if isinstance(answer, bytes) else json.dumps(answer)
        assert SECRET not in text


async def test_stats_counts(supervisor: Caller, hub: Services) -> None:
    first = await hub.inbox.ingest(inbound("<st1@x>", "ana@example.com"))
    await hub.inbox.ingest(inbound("<st2@x>", "bob@example.com"))
    await hub.inbox.add_note(first.conversation_id, supervisor.agent_id, "called her")
    await hub.outbox.reply(first.conversation_id, "On its way", agent_id=supervisor.agent_id)
    async with hub.db.write() as conn:
        await conn.execute(
            insert(schema.quarantine),
            [
                {
                    "channel_account": "support",
                    "reason": "too big",
                    "created_at": hub.clock(),
                    "resolved_at": None,
                },
                {
                    "channel_account": "support",
                    "reason": "old",
                    "created_at": hub.clock(),
                    "resolved_at": hub.clock(),
                },
            ],
        )
    stats = await supervisor.get("/api/stats")
    assert stats["contacts"] == 2
    assert stats["conversations"]["open"] == 1
    assert stats["conversations"]["pending"] == 1
    assert stats["conversations"]["resolved"] == 0
    assert stats["messages"]["by_channel"] == {"email": {"in": 2, "note": 1, "out": 1}}
    assert stats["quarantined"] == 1
    assert stats["outbox"]["queued"] == 1
    assert stats["outbox"]["failed"] == 0


async def test_healthz_and_readyz(client: Client, hub: Services) -> None:
    anonymous = Caller(client)
    assert (await anonymous.get("/healthz")) == {"status": "ok"}
    ready = await anonymous.get("/readyz")
    assert ready == {
        "status": "ready",
        "database": "ok",
        "channels": {"partner": "connected", "lab": "connected"},
    }
    await hub.channels["partner"].stop()
    not_ready = await anonymous.get("/readyz", expect=503)
    assert not_ready["status"] == "not ready"
    assert not_ready["database"] == "ok"
    assert not_ready["channels"]["partner"] == "stopped"


async def test_readyz_reports_a_dead_database(client: Client, hub: Services) -> None:
    working = hub.db.engine
    url = hub.db.url.set(database="/nonexistent/dir/hub.db") if hub.db.is_sqlite else hub.db.url.set(port=1)
    hub.db.engine = create_async_engine(url)
    try:
        body = await Caller(client).get("/readyz", expect=503)
    finally:
        await hub.db.engine.dispose()
        hub.db.engine = working
    assert body["database"] == "unavailable"
    assert "nonexistent" not in json.dumps(body)


async def test_metrics(client: Client, supervisor: Caller, hub: Services) -> None:
    await hub.inbox.ingest(inbound("<mt1@x>"))
    await supervisor.get("/api/conversations/999", expect=404)
    await supervisor.get("/api/conversations/998", expect=404)
    await supervisor.get("/api/stats")
    async with client.get("/metrics", headers=supervisor.headers) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    assert (
        'omnihub_http_requests_total{method="GET",route="/api/conversations/{id}",status="404"} 2.0'
    ) in text
    assert 'omnihub_http_requests_total{method="GET",route="/api/stats",status="200"} 1.0' in text
    assert "omnihub_http_request_duration_seconds_bucket" in text
    assert "/api/conversations/999" not in text
    assert 'omnihub_conversations{status="open"} 1.0' in text
    assert 'omnihub_outbox_messages{status="queued"} 0.0' in text
    assert "omnihub_quarantined_items 0.0" in text
    assert 'omnihub_call_cache_lookups{cache="callers",result="hit"} 0.0' in text
    assert 'omnihub_channel_state{channel="partner",kind="api",state="connected"} 1.0' in text
    assert 'omnihub_channel_state{channel="partner",kind="api",state="stopped"} 0.0' in text


async def test_openapi_lists_every_route(client: Client) -> None:
    doc = await Caller(client).get("/api/openapi.json")
    assert doc["openapi"].startswith("3.1")
    app = client.app
    assert app is not None
    table = app[ROUTES].specs
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert documented == {(r.method, r.path) for r in table}
    for route in app.router.routes():
        spec = app[ROUTES].spec(route)
        assert spec is not None
        assert (spec.method, spec.path) in documented
    assert ("POST", "/webhooks/api/partner/messages") in documented
    assert set(doc["components"]["securitySchemes"]) == {"session", "csrf", "bearer"}
    reply = doc["paths"]["/api/conversations/{id}/reply"]["post"]
    assert reply["x-access"] == "agent"
    assert reply["security"] == [{"session": [], "csrf": []}, {"bearer": []}]
    assert [p["name"] for p in reply["parameters"]] == ["id"]
    ref = reply["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert schema["required"] == ["text"]
    assert set(schema["properties"]) == {
        "text",
        "subject",
        "html",
        "override_reason",
        "whatsapp_template",
        "via",
        "attachments",
    }
    upload = doc["paths"]["/api/uploads"]["post"]
    assert upload["x-access"] == "agent" and [p["name"] for p in upload["parameters"]] == ["filename"]
    listing = doc["paths"]["/api/conversations"]["get"]
    assert {"status", "assignee", "sort", "limit"} <= {p["name"] for p in listing["parameters"]}
    assert doc["paths"]["/api/login"]["post"]["security"] == []
    assert doc["paths"]["/api/stats"]["get"]["x-access"] == "supervisor"
    assert doc["paths"]["/api/teams"]["post"]["x-access"] == "admin"
    schemas = doc["components"]["schemas"]
    refs = _refs(doc)
    assert refs
    assert all(ref.startswith("#/components/schemas/") for ref in refs)
    assert {ref.rsplit("/", 1)[1] for ref in refs} <= set(schemas)


async def test_security_headers_on_every_kind_of_answer(client: Client, supervisor: Caller) -> None:
    for method, path, headers in [
        ("GET", "/healthz", {}),
        ("GET", "/api/me", {}),
        ("GET", "/api/nothing", {}),
        ("GET", "/metrics", supervisor.headers),
        ("GET", "/api/stats", supervisor.headers),
        ("POST", "/webhooks/api/partner/messages", {}),
    ]:
        async with client.request(method, path, headers=headers) as response:
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["X-Frame-Options"] == "DENY"
            assert response.headers["Referrer-Policy"] == "no-referrer"
            assert response.headers["Content-Security-Policy"] == (
                "default-src 'none'; frame-ancestors 'none'"
            )


async def test_signed_webhook_reaches_the_inbox(client: Client, supervisor: Caller) -> None:
    payload = json.dumps(
        {
            "external_id": "crm-1",
            "sender": {"kind": "external", "address": "crm:42"},
            "text": "Customer asks for a callback",
            "received_at": datetime(2026, 11, 23, 8, 0, tzinfo=UTC).isoformat(),
        }
    ).encode()
    async with client.post(
        "/webhooks/api/partner/messages", data=payload, headers={SIGNATURE_HEADER: sign(SECRET, payload)}
    ) as response:
        assert response.status == 200
        stored = await response.json()
    listed = await supervisor.get("/api/conversations?channel=api")
    assert [c["id"] for c in listed["items"]] == [stored["conversation_id"]]


def _refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        own = [value["$ref"]] if "$ref" in value else []
        return own + [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []
