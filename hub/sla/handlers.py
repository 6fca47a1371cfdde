"""The scheduler handlers the SLA clock contributes."""

from __future__ import annotations

from hub.scheduler import Handler
from hub.sla import followups, tasks, tracker
from hub.sla.followups import FollowUps
from hub.sla.service import SlaService


def timer_handlers(sla: SlaService) -> dict[str, Handler]:
    """Handlers by timer kind: SLA checks, overdue tasks, receipt checks and follow-ups."""
    follow = FollowUps(lambda: sla.book)
    return {
        tracker.CHECK: sla.tracker.fire,
        tasks.DUE: tasks.overdue,
        followups.RECEIPT: follow.receipt,
        followups.FOLLOW_UP: follow.follow_up,
    }
