"""Supervisors re-process or dismiss quarantined mail through the API: exactly once, audited."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from hub import quarantine
from hub.clock import utcnow
from hub.models import Role
from hub.services import Services
from hub.store import schema
from hub.web.app import create_app
from tests.conftest_web import as_role, services_with_channels
from tests.dovecot import Dovecot, dovecot  # noqa: F401
from tests.test_email_imap import mail, until

ACCOUNT = "support"


@pytest.fixture
async def hub(
    make_config: Any,
    clock: Any,
    dovecot: Dovecot,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Services]:
    monkeypatch.setenv("OMNIHUB_TEST_MAIL_SECRET", "s3cret-for-ids")
    account = {
        "name": ACCOUNT,
        "kind": "email",
        "address": "support@shop.example",
        "id_secret": "env:OMNIHUB_TEST_MAIL_SECRET",
        "imap": {
            "host": "127.0.0.1",
            "port": dovecot.port,
            "tls": False,
            "username": "support",
            "password": "secret",
            "poll_seconds": 3600,
            "max_message_bytes": 20_000,
        },
    }
    big = mail(7, body="A long complaint about a broken parcel. " * 1000 + "\n")
    dovecot.deliver("support", [big, b"Subject: who?\r\n\r\nno sender here\r\n"])
    async with services_with_channels(make_config, clock, [account]) as services:

        async def both_held() -> bool:
            return len(await quarantine.entries(services.db)) == 2

        await until(both_held)
        yield services


async def _count(services: Services, table: Any, *where: Any) -> int:
    async with services.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table).where(*where))).scalar_one())


async def test_a_supervisor_reprocesses_oversized_mail_once_and_dismisses_the_unreadable(
    hub: Services, aiohttp_client: Any
) -> None:
    client = await aiohttp_client(create_app(hub))
    agent = await as_role(client, hub, Role.AGENT)
    boss = await as_role(client, hub, Role.SUPERVISOR)
    held = {e["reason"].split(":")[0]: e for e in (await boss.get("/api/quarantine"))["items"]}
    big, nameless = held["oversized"]["id"], held["unparseable"]["id"]

    await agent.post(f"/api/quarantine/{big}/reprocess", expect=403)
    await agent.post(f"/api/quarantine/{nameless}/dismiss", json={"reason": "spam"}, expect=403)

    first, second = await asyncio.gather(
        boss.post(f"/api/quarantine/{big}/reprocess", expect=None),
        boss.post(f"/api/quarantine/{big}/reprocess", expect=None),
    )
    done = first if "message_id" in first else second
    refused = second if done is first else first
    assert "already resolved" in refused["error"]
    assert done["message_id"] and not done["duplicate"]
    assert done["entry"]["resolution"] == f"re-processed: stored as message {done['message_id']}"
    assert done["entry"]["resolved_by"] == boss.agent_id
    assert await _count(hub, schema.messages) == 1
    [message] = (await hub.inbox.timeline(done["conversation_id"])).messages
    assert "broken parcel" in message.text

    failed = await boss.post(f"/api/quarantine/{nameless}/reprocess", expect=422)
    assert "still cannot be stored" in failed["error"] and "no usable sender" in failed["error"]
    assert [e["id"] for e in (await boss.get("/api/quarantine"))["items"]] == [nameless]

    await boss.post(f"/api/quarantine/{nameless}/dismiss", json={"reason": ""}, expect=422)
    dismissed = await boss.post(f"/api/quarantine/{nameless}/dismiss", json={"reason": "no sender; spam"})
    assert dismissed["resolution"] == "dismissed: no sender; spam"
    await boss.post(f"/api/quarantine/{nameless}/dismiss", json={"reason": "again"}, expect=409)
    await boss.post(f"/api/quarantine/{nameless}/reprocess", expect=409)

    assert (await boss.get("/api/quarantine"))["items"] == []
    everything = (await boss.get("/api/quarantine?resolved=true"))["items"]
    assert {e["id"]: e["resolved_by"] for e in everything} == {big: boss.agent_id, nameless: boss.agent_id}
    e = schema.events
    async with hub.db.read() as conn:
        audit = (await conn.execute(select(e).where(e.c.kind.like("quarantine.%")).order_by(e.c.id))).all()
    assert [(a.kind, a.agent_id, a.data["quarantine_id"]) for a in audit] == [
        ("quarantine.reprocessed", boss.agent_id, big),
        ("quarantine.dismissed", boss.agent_id, nameless),
    ]
    assert audit[0].conversation_id == done["conversation_id"]


async def test_items_of_channels_that_cannot_reprocess_can_only_be_dismissed(
    hub: Services, aiohttp_client: Any
) -> None:
    client = await aiohttp_client(create_app(hub))
    boss = await as_role(client, hub, Role.SUPERVISOR)
    gone = await quarantine.record(
        hub.db,
        hub.blobs,
        channel_account="old-account",
        external_id="x-1",
        reason="unparseable: broken",
        payload=b"{}",
        now=utcnow(),
    )
    refused = await boss.post(f"/api/quarantine/{gone}/reprocess", expect=409)
    assert "dismiss" in refused["error"]
    await boss.post("/api/quarantine/999999/reprocess", expect=404)
    await boss.post(f"/api/quarantine/{gone}/dismiss", json={"reason": "account removed"})
    assert await _count(hub, schema.quarantine, schema.quarantine.c.resolved_at.is_(None)) == 2
