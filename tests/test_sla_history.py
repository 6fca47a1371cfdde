"""What SLA clocks read of a conversation: its first customer message among many, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, update

from hub.models import ChannelKind
from hub.services import Services
from hub.sla import history
from hub.sla.deadlines import StepKind
from hub.store import schema
from tests.factories import inbound

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("each", [True, False], ids=["each", "as_a_set"])
async def test_each_conversation_matches_on_its_own_first_customer_message_not_an_earlier_reply(
    services: Services, each: bool
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
        loaded = await history.load(conn, [*ids.values(), 999_999], each=each)
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


@pytest.mark.parametrize("each", [True, False], ids=["each", "as_a_set"])
async def test_a_reply_counts_once_delivered_or_pending_not_once_failed_and_notes_never(
    services: Services, each: bool
) -> None:
    result = await services.inbox.ingest(
        inbound("q-1", "ana@example.com", text="Where is my parcel?", at=START)
    )
    cid = result.conversation_id
    replies = [("sent", 10, False), ("failed", 20, False), ("queued", 30, True)]
    async with services.db.write() as conn:
        for n, (status, minutes, automatic) in enumerate(replies):
            at = START + timedelta(minutes=minutes)
            message = (
                await conn.execute(
                    insert(schema.messages).values(
                        conversation_id=cid, direction="out", channel="email", channel_account="support",
                        text=f"reply {n}", automatic=automatic, meta={}, created_at=at,
                    )
                )
            ).inserted_primary_key[0]  # fmt: skip
            await conn.execute(
                insert(schema.outbox).values(
                    message_id=message, conversation_id=cid, channel="email", channel_account="support",
                    recipient_kind="email", recipient="ana@example.com", idempotency_key=f"k{n}",
                    status=status, next_attempt_at=at, created_at=at,
                )
            )  # fmt: skip
        await conn.execute(
            insert(schema.messages).values(
                conversation_id=cid, direction="note", channel="email", channel_account="support",
                text="internal", meta={}, created_at=START + timedelta(minutes=40),
            )
        )  # fmt: skip
    async with services.db.read() as conn:
        steps = (await history.load(conn, [cid], each=each))[cid].steps
    assert [(s.kind, s.at) for s in steps] == [
        (StepKind.INBOUND, START),
        (StepKind.REPLY, START + timedelta(minutes=10)),
        (StepKind.AUTO_REPLY, START + timedelta(minutes=30)),
    ]
