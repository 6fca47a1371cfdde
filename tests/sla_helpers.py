"""Building SLA policies and reading SLA events in tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from hub.services import Services
from hub.sla.calendar import BusinessCalendar
from hub.sla.policy import PolicyBook, SlaFile
from hub.store import schema

WEEKDAYS = {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}


def london() -> BusinessCalendar:
    """Monday to Friday, 9 to 5, in London, English holidays."""
    return BusinessCalendar.build("default", "Europe/London", WEEKDAYS, country="GB", subdivision="ENG")


def book(data: dict[str, Any], calendars: dict[str, BusinessCalendar] | None = None) -> PolicyBook:
    """A policy book from sla.yaml-shaped data."""
    return PolicyBook.build(SlaFile.model_validate(data), calendars or {"default": london()})


STANDARD = {
    "defaults": {"warn_before": "15m"},
    "policies": [
        {
            "name": "complaints",
            "when": {"all": [{"field": "tags", "operator": "contains", "value": "complaint"}]},
            "first_response": "30m",
            "resolution": "4h",
        },
        {"name": "standard", "first_response": "1h", "next_response": "2h", "resolution": "8h"},
    ],
}


async def sla_events(services: Services, prefix: str = "sla.") -> list[tuple[str, str, datetime]]:
    """(kind, metric, at) of every SLA event recorded, in order."""
    e = schema.events
    async with services.db.read() as conn:
        rows = await conn.execute(
            select(e.c.kind, e.c.data, e.c.at).where(e.c.kind.startswith(prefix)).order_by(e.c.id)
        )
        return [(r.kind, r.data["metric"], r.at) for r in rows]


async def cycles(services: Services, conversation_id: int) -> dict[tuple[str, int], Any]:
    """The stored cycles of a conversation by (metric, seq)."""
    s = schema.sla_cycles
    async with services.db.read() as conn:
        rows = await conn.execute(select(s).where(s.c.conversation_id == conversation_id))
        return {(r.metric, r.seq): r for r in rows}


async def due(services: Services, conversation_id: int) -> tuple[datetime | None, datetime | None]:
    """The conversation's stored due time and promise due time."""
    c = schema.conversations
    async with services.db.read() as conn:
        row = (
            await conn.execute(select(c.c.due_at, c.c.promise_due_at).where(c.c.id == conversation_id))
        ).one()
        return row.due_at, row.promise_due_at
