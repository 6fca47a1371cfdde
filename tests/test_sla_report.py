"""The SLA report: numbers from real cycles, calls and tasks; CLI formats; supervisor API."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import insert, select

from hub.cli import main
from hub.config import load
from hub.models import CallOutcome, ChannelKind, Role
from hub.services import Services, open_services
from hub.sla import report
from hub.sla.service import SlaService
from hub.store import schema
from hub.web import create_app
from tests.conftest import FakeClock
from tests.conftest_web import as_role
from tests.factories import inbound
from tests.sla_helpers import STANDARD, book

MON_9 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
PERIOD = (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))


async def scenario(services: Services, clock: FakeClock) -> list[int]:
    """Four conversations answered after 10, 20, 30 and 90 business minutes; calls; a promise; tasks."""
    clock.now = MON_9
    sla = SlaService(services.db, services.bus, services.clock, book(STANDARD))
    ids = []
    for n in range(4):
        msg = inbound(f"m{n}", f"c{n}@example.com", at=MON_9, channel=ChannelKind.CHAT)
        ids.append((await services.inbox.ingest(msg)).conversation_id)
    meta = {"promise_due_at": (MON_9 + timedelta(hours=2)).isoformat()}
    await services.outbox.reply(
        ids[0], "We will answer within 2 hours.", agent_id=None, automatic=True, meta=meta
    )
    for n, minutes in enumerate((10, 20, 30, 90)):
        clock.now = MON_9 + timedelta(minutes=minutes)
        await services.outbox.reply(ids[n], "Here is the answer.", agent_id=None)
    clock.now = MON_9 + timedelta(hours=3)
    await sla.recompute(ids)
    async with services.db.write() as conn:
        contact = (
            await conn.execute(
                select(schema.conversations.c.contact_id).where(schema.conversations.c.id == ids[0])
            )
        ).scalar()
        calls = [
            (CallOutcome.ANSWERED_IN_TIME, 8),
            (CallOutcome.ANSWERED_IN_TIME, 12),
            (CallOutcome.ANSWERED_LATE, 40),
            (CallOutcome.ABANDONED, None),
        ]
        await conn.execute(
            insert(schema.calls),
            [
                {
                    "conversation_id": ids[0], "contact_id": contact, "channel_account": "line",
                    "external_id": f"CA{n}", "direction": "in", "started_at": MON_9,
                    "answered_at": MON_9 + timedelta(seconds=wait) if wait else None,
                    "outcome": outcome.value,
                }
                for n, (outcome, wait) in enumerate(calls)
            ],
        )  # fmt: skip
        await conn.execute(
            insert(schema.tasks),
            [
                {"conversation_id": ids[1], "kind": "receipt_check", "key": f"rc{n}", "status": status,
                 "due_at": MON_9 + timedelta(days=1), "payload": {}, "created_at": MON_9}
                for n, status in enumerate(("done", "open"))
            ],
        )  # fmt: skip
    return ids


async def test_report_numbers(services: Services, clock: FakeClock) -> None:
    ids = await scenario(services, clock)
    async with services.db.read() as conn:
        built = await report.build(conn, *PERIOD)
    assert built.first_responses == 4
    assert built.first_response_median_seconds == 20 * 60
    assert built.first_response_p90_seconds == 90 * 60
    by_metric = {c.metric: c for c in built.compliance["metric"]}
    assert (by_metric["first_response"].met, by_metric["first_response"].breached) == (3, 1)
    assert by_metric["first_response"].rate == 0.75
    assert by_metric["resolution"].open == 4
    assert [c.group for c in built.compliance["policy"] if c.metric == "first_response"] == ["standard"]
    assert [b["conversation_id"] for b in built.breaches] == [ids[3]]
    assert (built.calls_offered, built.calls_answered, built.calls_within_rings, built.calls_abandoned) == (
        4,
        3,
        2,
        1,
    )
    assert built.within_rings_rate == 0.5
    assert built.average_speed_of_answer_seconds == 20.0
    assert (built.promises_made, built.promises_kept) == (1, 1)
    assert (built.receipt_checks_due, built.receipt_checks_done) == (2, 1)

    async with services.db.read() as conn:
        later = await report.build(conn, PERIOD[1], PERIOD[1] + timedelta(days=30))
        other_team = await report.build(conn, *PERIOD, team="nobody")
    assert later.first_responses == 0 and later.calls_offered == 0
    assert other_team.first_responses == 0 and other_team.breaches == []


async def test_a_team_report_counts_only_that_teams_conversations(
    services: Services, clock: FakeClock
) -> None:
    ids = await scenario(services, clock)
    billing = await services.directory.add_team("billing")
    async with services.db.write() as conn:
        await conn.execute(
            schema.conversations.update()
            .where(schema.conversations.c.id == ids[3])
            .values(team_id=billing.id)
        )
    await SlaService(services.db, services.bus, services.clock, book(STANDARD)).recompute(ids)
    async with services.db.read() as conn:
        built = await report.build(conn, *PERIOD, team="billing")
    assert built.first_responses == 1 and built.first_response_median_seconds == 90 * 60
    assert [b["conversation_id"] for b in built.breaches] == [ids[3]]
    assert built.calls_offered == 0 and built.receipt_checks_due == 0


@pytest.fixture
def hub_config(tmp_path: Path, store_settings: dict[str, Any]) -> Path:
    store = "".join(f"{key} = {json.dumps(value)}\n" for key, value in store_settings.items())
    path = tmp_path / "omnihub.toml"
    path.write_text(
        f"[store]\n{store}[hub]\ndata_dir = {json.dumps(str(tmp_path / 'data'))}\n", encoding="utf-8"
    )
    return path


def test_cli_prints_table_csv_and_json(hub_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async def fill() -> None:
        services = await open_services(load(hub_config), clock=FakeClock())
        try:
            await scenario(services, services.clock)  # type: ignore[arg-type]
        finally:
            await services.close()

    asyncio.run(fill())
    args = ["--config", str(hub_config), "report", "sla", "--from", "2026-11-01", "--to", "2026-12-01"]
    assert main([*args, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["first_response_median_seconds"] == 1200
    assert data["within_rings_rate"] == 0.5
    assert main([*args, "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["section", "group", "metric", "met", "breached", "open", "value"]
    assert ["summary", "", "first_response_p90", "", "", "", "1h30m"] in rows
    assert ["metric", "all", "first_response", "3", "1", "0", "75.0%"] in rows
    assert main(args) == 0
    table = capsys.readouterr().out
    assert re.search(r"^first_response_median +20m$", table, re.MULTILINE)
    assert "Compliance by team" in table
    assert main([*args[:4], "--from", "2026-12-01", "--to", "2026-11-01"]) == 2


async def test_supervisors_get_the_report_agents_do_not(
    services: Services, clock: FakeClock, aiohttp_client: Any
) -> None:
    await scenario(services, clock)
    client = await aiohttp_client(create_app(services))
    supervisor = await as_role(client, services, Role.SUPERVISOR)
    agent = await as_role(client, services, Role.AGENT)
    path = "/api/reports/sla?" + urlencode({"from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"})
    data = await supervisor.get(path)
    assert data["calls_abandoned"] == 1
    assert data["compliance"]["metric"][0]["metric"] == "first_response"
    await agent.get(path, expect=403)
    body = await supervisor.get(path + "&format=csv")
    assert body.decode().startswith("section,group,metric")
    backwards = urlencode({"from": "2026-12-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"})
    await supervisor.get(f"/api/reports/sla?{backwards}", expect=422)
