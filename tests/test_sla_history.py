"""What SLA clocks read of a conversation: its first customer message among many, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from hub.models import ChannelKind
from hub.services import Services
from hub.sla import history
from hub.store import schema
from tests.factories import inbound

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


async def test_each_conversation_matches_on_its_own_first_customer_message_not_an_earlier_reply(
    services: Services,
) -> None:
    ids: dict[str, int] = {}
    for n in range(3):
        for caller in ("+442079460101", "+442079460102"):
            message = inbound(
                f"{caller}-{n}", caller, channel=ChannelKind.VOICE, account="main",
                text=f"call {n} from {caller}", at=START + timedelta(minutes=n),
            )  # fmt: skip
            result = await services.inbox.ingest(message)
            ids.setdefault(caller, result.conversation_id)
            if n == 0 and caller.endswith("2"):
                async with services.db.write() as conn:
                    await conn.execute(
                        update(schema.messages)
                        .where(schema.messages.c.id == result.message_id)
                        .values(direction="out")
                    )
    assert len(set(ids.values())) == 2
    async with services.db.read() as conn:
        loaded = await history.load(conn, [*ids.values(), 999_999])
    assert set(loaded) == set(ids.values())
    first = ids["+442079460101"]
    assert (loaded[first].facts.sender, loaded[first].facts.body) == (
        "+442079460101",
        "call 0 from +442079460101",
    )
    replied = ids["+442079460102"]
    assert (loaded[replied].facts.sender, loaded[replied].facts.body) == (
        "+442079460102",
        "call 1 from +442079460102",
    )
