"""Receipt checks (E2) and follow-ups after resolution (C3), scheduled from the conversation's history.

After a human reply that the customer has not answered for `confirm_receipt_after`
business time, a receipt-check task is created; after a resolution that has held for
`follow_up_after`, a follow-up task. The wake-ups move as the conversation changes; when
one fires, the handler checks the history again, so a customer's answer or a reopen in
between cancels the task.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from hub import scheduler
from hub.models import ConversationStatus
from hub.sla import history, tasks, wakeups
from hub.sla.deadlines import StepKind
from hub.sla.history import History
from hub.sla.policy import Policy, PolicyBook
from hub.sla.tasks import TaskKind

RECEIPT = "receipt.check"
FOLLOW_UP = "follow_up.check"


def unanswered_reply(h: History) -> datetime | None:
    """The last human reply, if the customer has not written since and the conversation is not resolved."""
    if h.status is ConversationStatus.RESOLVED:
        return None
    for s in reversed(h.steps):
        if s.kind is StepKind.REPLY:
            return s.at
        if s.kind is StepKind.INBOUND:
            return None
    return None


def resolution(h: History) -> datetime | None:
    """When the conversation was resolved, if it still is."""
    if h.status is not ConversationStatus.RESOLVED:
        return None
    last = next((s for s in reversed(h.steps) if s.kind is StepKind.STATUS), None)
    return last.at if last is not None and last.status is ConversationStatus.RESOLVED else None


def wanted(
    histories: dict[int, History], policies: dict[int, Policy | None], book: PolicyBook
) -> dict[str, dict[int, wakeups.Wanted]]:
    """Where each conversation's receipt-check and follow-up wake-ups belong, by timer kind."""
    receipt: dict[int, wakeups.Wanted] = {}
    follow: dict[int, wakeups.Wanted] = {}
    after_reply, after_resolution = book.timers.confirm_receipt_after, book.timers.follow_up_after
    for cid, h in histories.items():
        policy = policies[cid]
        if policy is None:
            continue
        if after_reply is not None and (replied := unanswered_reply(h)) is not None:
            receipt[cid] = (policy.calendar.add(replied, after_reply), {"reply_at": replied.isoformat()})
        if after_resolution is not None and (resolved := resolution(h)) is not None:
            follow[cid] = (
                policy.calendar.add(resolved, after_resolution),
                {"resolved_at": resolved.isoformat()},
            )
    return {RECEIPT: receipt, FOLLOW_UP: follow}


class FollowUps:
    """Scheduler handlers that turn due wake-ups into tasks."""

    def __init__(self, book: Callable[[], PolicyBook | None]) -> None:
        self.book = book

    async def receipt(self, conn: AsyncConnection, timer: scheduler.Timer) -> list[dict[str, Any]]:
        """`receipt.check`: a receipt-check task if the reply is still unanswered."""
        return await self._task(conn, timer, "reply_at", unanswered_reply, TaskKind.RECEIPT_CHECK)

    async def follow_up(self, conn: AsyncConnection, timer: scheduler.Timer) -> list[dict[str, Any]]:
        """`follow_up.check`: a follow-up task if the conversation is still resolved."""
        return await self._task(conn, timer, "resolved_at", resolution, TaskKind.FOLLOW_UP)

    async def _task(
        self,
        conn: AsyncConnection,
        timer: scheduler.Timer,
        field: str,
        moment: Callable[[History], datetime | None],
        kind: TaskKind,
    ) -> list[dict[str, Any]]:
        book = self.book()
        cid = timer.conversation_id
        if book is None or cid is None:
            return []
        h = (await history.load(conn, [cid])).get(cid)
        policy = book.select(h.facts) if h is not None else None
        if h is None or policy is None or moment(h) != datetime.fromisoformat(timer.payload[field]):
            return []
        within = (
            book.timers.receipt_check_within
            if kind is TaskKind.RECEIPT_CHECK
            else book.timers.follow_up_within
        )
        return await tasks.create(
            conn,
            conversation_id=cid,
            kind=kind,
            key=f"{kind.value}:{cid}:{timer.payload[field]}",
            due_at=policy.calendar.add(timer.due_at, within),
            now=timer.due_at,
            assignee_id=h.assignee_id,
            payload={field: timer.payload[field]},
        )
