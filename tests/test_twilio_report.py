"""The SLA report's call figures read what the Twilio channel records (P1)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hub.sla import report
from tests.conftest import FakeClock
from tests.fakes.twilio_calls import Agent
from tests.twilio_helpers import LINE
from tests.twilio_phone import CALLER, phone_hub


async def test_three_ring_rate_speed_of_answer_and_abandoned_calls_come_from_simulated_calls(
    make_config: Any, clock: FakeClock, aiohttp_client: Any
) -> None:
    async with phone_hub(
        make_config, clock, aiohttp_client, fallback=["team:Escalations", "voicemail"]
    ) as phone:
        start = clock.now
        sim = phone.sim
        sim.agents["client:alice"] = Agent(answer_after=5, talk_seconds=30)
        await sim.call(CALLER, LINE)
        sim.agents["client:alice"] = Agent()
        sim.agents["client:dave"] = Agent(answer_after=4, talk_seconds=30)
        await sim.call("+442079460959", LINE)
        await sim.call("+442079460960", LINE, hang_up_after=10)
        sim.agents["client:dave"] = Agent()
        await sim.call("+442079460961", LINE)
        async with phone.services.db.read() as conn:
            built = await report.build(conn, start, clock.now + timedelta(seconds=1))
            support = await report.build(conn, start, clock.now + timedelta(seconds=1), team="Support")
            other = await report.build(conn, start, clock.now + timedelta(seconds=1), team="Escalations")
        assert built.calls_offered == 4 and built.calls_answered == 2
        assert built.calls_within_rings == 1 and built.within_rings_rate == 0.25
        assert built.calls_abandoned == 1
        assert built.average_speed_of_answer_seconds == ((2 + 5) + (2 + 18 + 2 + 4)) / 2
        assert support.calls_offered == 4 and other.calls_offered == 0
