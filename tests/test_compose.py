"""Replies leave through the pre-send check: signature and reference added, errors blocked, overrides audited;
acknowledgements carry a reply-time promise the SLA clock tracks (E1, E3, E6, E8, L1, L8)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from hub import inbox
from hub.compose import reply_subject
from hub.models import Role
from hub.scheduler import Scheduler
from hub.services import Services, open_services
from hub.sla.handlers import timer_handlers
from hub.store import schema
from hub.web import create_app
from tests.conftest import FakeClock
from tests.conftest_web import as_role
from tests.factories import inbound

ROOT = Path(__file__).resolve().parent.parent
MON_9 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
COMPANY = {
    "name": "Example Trading Ltd",
    "department": "Customer Support",
    "address": "1 Example Street, London EC1A 1AA",
    "phone": "+44 20 7946 0000",
    "email": "support@example.com",
}
ACKNOWLEDGE = """
triggers:
  - name: acknowledge-mail
    when: message.received
    if: {all: [{field: channel, operator: is, value: email}]}
    then:
      - reply_with_template: acknowledge
"""


@pytest.fixture
async def hub(make_config: Any, clock: FakeClock, tmp_path: Path) -> AsyncIterator[Services]:
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    (rules / "triggers.yaml").write_text(ACKNOWLEDGE, encoding="utf-8")
    clock.now = MON_9
    services = await open_services(make_config(rules_dir=str(rules), company=COMPANY), clock=clock)
    await services.rules.load()
    yield services
    await services.close()


async def drain(services: Services, clock: FakeClock) -> None:
    handlers = {inbox.WAKE: inbox.wake, **timer_handlers(services.sla), **services.rule_engine.handlers()}
    runner = Scheduler(services.db, handlers, clock)
    for _ in range(10):
        if not await runner.run_due():
            return


async def test_agents_see_findings_and_cannot_send_errors(hub: Services, aiohttp_client: Any) -> None:
    cid = (await hub.inbox.ingest(inbound("<1@x>", subject="Late parcel", at=MON_9))).conversation_id
    client = await aiohttp_client(create_app(hub))
    agent = await as_role(client, hub, Role.AGENT)
    draft = await agent.post(f"/api/conversations/{cid}/check", {"text": "I don't know where it is."})
    assert draft["subject"] == f"Re: Late parcel [#{cid}]"
    assert [f["rule_id"] for f in draft["findings"] if f["severity"] == "error"] == ["L1"]

    blocked = await agent.post(
        f"/api/conversations/{cid}/reply", {"text": "I don't know where it is."}, expect=422
    )
    assert "L1" in blocked["error"] and blocked["findings"][0]["rule_id"] == "L1"
    await agent.post(
        f"/api/conversations/{cid}/reply", {"text": "I don't know.", "override_reason": "testing"}, expect=403
    )
    sent = await agent.post(
        f"/api/conversations/{cid}/reply",
        {"text": "Your parcel left our warehouse today and will arrive tomorrow before noon."},
        expect=202,
    )
    assert sent["subject"] == f"Re: Late parcel [#{cid}]"
    assert "\n-- \n" in sent["text"] and "+44 20 7946 0000" in sent["text"]


async def test_a_supervisor_override_is_audited_with_the_message(hub: Services, aiohttp_client: Any) -> None:
    cid = (await hub.inbox.ingest(inbound("<1@x>", subject="Late parcel", at=MON_9))).conversation_id
    client = await aiohttp_client(create_app(hub))
    supervisor = await as_role(client, hub, Role.SUPERVISOR)
    body = {
        "text": "I don't know yet; the carrier has not answered.",
        "override_reason": "quoting the carrier",
    }
    sent = await supervisor.post(f"/api/conversations/{cid}/reply", body, expect=202)
    async with hub.db.read() as conn:
        row = (
            await conn.execute(select(schema.events).where(schema.events.c.kind == "etiquette.override"))
        ).one()
    assert row.data["reason"] == "quoting the carrier" and row.data["rules"] == ["L1"]
    assert row.data["message_id"] == sent["id"] and row.agent_id == supervisor.agent_id
    assert any(f["rule_id"] == "L1" for f in sent["meta"]["etiquette"])


async def test_acknowledgement_promises_a_reply_time_once(hub: Services, clock: FakeClock) -> None:
    cid = (await hub.inbox.ingest(inbound("<1@x>", subject="Late parcel", at=MON_9))).conversation_id
    await drain(hub, clock)
    timeline = await hub.inbox.timeline(cid)
    (ack,) = [m for m in timeline.messages if m.direction.value == "out"]
    # Standard policy: first response 4h; promise 4h x 1.5 = 6 business hours from 09:00 with the
    # 12:30-13:30 lunch break of the default calendar: 16:00.
    assert ack.automatic and ack.meta["promise_due_at"] == "2026-11-23T16:00:00+00:00"
    assert "by Monday 23 November, 16:00" in ack.text
    assert ack.subject == f"Re: Late parcel [#{cid}]"
    await hub.sla.recompute([cid])
    c = schema.conversations
    async with hub.db.read() as conn:
        promise = (await conn.execute(select(c.c.promise_due_at).where(c.c.id == cid))).scalar()
    assert promise == datetime(2026, 11, 23, 16, 0, tzinfo=UTC)

    clock.advance(minutes=30)
    await hub.inbox.ingest(
        inbound("<2@x>", subject=f"Re: Late parcel [#{cid}]", at=clock.now, reply_refs=("<1@x>",))
    )
    await drain(hub, clock)
    outbound = [m for m in (await hub.inbox.timeline(cid)).messages if m.direction.value == "out"]
    assert len(outbound) == 1
    async with hub.db.read() as conn:
        reasons = [r.data["reason"] for r in await conn.execute(
            select(schema.events).where(schema.events.c.kind == "rules.reply_suppressed")
        )]  # fmt: skip
    assert reasons == ["this conversation was acknowledged less than a day ago"]


async def test_mail_that_must_not_be_answered_gets_no_acknowledgement(
    hub: Services, clock: FakeClock
) -> None:
    message = inbound(
        "<bulk@x>", "news@example.com", subject="Weekly offers", at=MON_9,
        meta={"auto_reply": False, "auto_reply_reason": "Precedence: bulk"},
    )  # fmt: skip
    cid = (await hub.inbox.ingest(message)).conversation_id
    await drain(hub, clock)
    assert [m for m in (await hub.inbox.timeline(cid)).messages if m.direction.value == "out"] == []
    async with hub.db.read() as conn:
        row = (
            await conn.execute(select(schema.events).where(schema.events.c.kind == "rules.reply_suppressed"))
        ).one()
    assert "Precedence: bulk" in row.data["reason"]


def test_reply_subject_keeps_one_prefix_and_the_reference() -> None:
    assert reply_subject("RE: Re: 回复: Late parcel [#12]", None, 12) == "Re: Late parcel [#12]"
    assert reply_subject(None, "Refund", 7) == "Re: Refund [#7]"
    assert reply_subject(None, None, 5) == "Re: [#5]"
