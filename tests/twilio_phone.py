"""A hub with a Twilio phone line, teams of agents, the fake Twilio and its call simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from hub.models import Agent, Availability, Call, Role
from hub.records import call as call_record
from hub.services import Services
from hub.store import schema
from hub.web import create_app
from tests.conftest import FakeClock
from tests.conftest_web import add_agent
from tests.fakes.twilio import FakeTwilio, WebhookSender
from tests.fakes.twilio_calls import CallSimulator
from tests.sla_helpers import STANDARD, book
from tests.twilio_helpers import ACCOUNT, LINE, PUBLIC, TOKEN, twilio_channel

CALLER = "+442079460958"
BASE = f"{PUBLIC}/webhooks/twilio_voice/main"
DEVICES = {
    "alice": "client:alice",
    "bob": "+441134960001",
    "carol": "sip:carol@pbx.example.com",
    "dave": "client:dave",
}
US_PHONE = {**STANDARD, "phone": {"country": "US"}}
"""Ring cycles of 6 s: three rings are an 18 s window."""


@dataclass
class Phone:
    """Everything a call test drives."""

    services: Services
    client: TestClient[Any, Any]
    fake: FakeTwilio
    sender: WebhookSender
    sim: CallSimulator
    clock: FakeClock
    agents: dict[str, Agent]

    async def call_row(self, sid: str) -> Call:
        """The hub's record of a call."""
        async with self.services.db.read() as conn:
            row = (
                (await conn.execute(select(schema.calls).where(schema.calls.c.external_id == sid)))
                .mappings()
                .one()
            )
        return call_record(row)

    async def availability(self, username: str) -> Availability:
        """An agent's availability now."""
        return (await self.services.directory.agent(self.agents[username].id)).availability

    async def events(self, kind: str) -> list[dict[str, Any]]:
        """The data of recorded events of a kind, in order."""
        e = schema.events
        async with self.services.db.read() as conn:
            rows = await conn.execute(select(e.c.data).where(e.c.kind == kind).order_by(e.c.id))
            return [r.data for r in rows]


@asynccontextmanager
async def phone_hub(
    make_config: Any,
    clock: FakeClock,
    aiohttp_client: Any,
    *,
    fallback: list[str] | None = None,
    language: str = "en",
    start: datetime | None = None,
    sla: dict[str, Any] | None = None,
    prepare: Callable[[FakeTwilio], Any] | None = None,
    **settings: Any,
) -> AsyncIterator[Phone]:
    """A hub whose line rings the Support team, then falls back as given; `prepare` adds fake routes."""
    settings.setdefault("answer_deadline_seconds", 10)  # a busy test machine must not divert callers
    fake = FakeTwilio(ACCOUNT, TOKEN)
    if prepare is not None:
        prepare(fake)
    await fake.start()
    clock.now = start or clock.now
    line = {"number": LINE, "team": "Support", "fallback": fallback or ["voicemail"], "language": language}
    try:
        async with twilio_channel(
            make_config, clock, api_base_url=fake.base_url, devices=DEVICES, lines=[line], **settings
        ) as services:
            services.sla.set_book(book(sla or US_PHONE))
            agents = await _staff(services)
            client = await aiohttp_client(create_app(services))
            async with aiohttp.ClientSession() as session:
                local = str(client.make_url("")).rstrip("/")
                sender = WebhookSender(TOKEN, session, public_base=PUBLIC, local_base=local)
                sim = CallSimulator(
                    fake,
                    sender,
                    lambda at: setattr(clock, "now", at),
                    incoming_url=f"{BASE}/incoming",
                    status_url=f"{BASE}/status",
                    start=clock.now,
                )
                yield Phone(services, client, fake, sender, sim, clock, agents)
                await sim.settle()
    finally:
        await fake.stop()


async def _staff(services: Services) -> dict[str, Agent]:
    directory = services.directory
    support = await directory.add_team("Support", "Customer Care")
    escalations = await directory.add_team("Escalations", "Escalations Desk")
    agents = {}
    for name, team, availability in (
        ("alice", support, Availability.AVAILABLE),
        ("bob", support, Availability.AVAILABLE),
        ("carol", support, Availability.AWAY),
        ("dave", escalations, Availability.AVAILABLE),
    ):
        agent = await add_agent(services, Role.AGENT, name, availability=availability)
        await directory.add_member(team.id, agent.id)
        agents[name] = agent
    return agents
