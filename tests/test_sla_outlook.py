"""A conversation's outlook: what its cycles hold after `now`, in one pass."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hub.sla.cycles import PROMISE, Cycle, outlook

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)


def cycle(metric: str, **given: object) -> Cycle:
    values: dict[str, object] = {
        "conversation_id": 1, "metric": metric, "seq": 0, "policy": "p", "team_id": None,
        "assignee_id": None, "started_at": NOW - 5 * H, "due_at": None, "warn_at": None,
        "fulfilled_at": None, "breached_at": None, "paused": False, "business_seconds": None,
    }  # fmt: skip
    values.update(given)
    return Cycle(**values)  # type: ignore[arg-type]


def test_running_cycles_give_the_due_times_and_the_next_check() -> None:
    o = outlook(
        [
            cycle("resolution", due_at=NOW + 3 * H, warn_at=NOW + 2 * H),
            cycle("first_response", due_at=NOW - H, breached_at=NOW - H),
            cycle(PROMISE, due_at=NOW + 4 * H),
        ],
        NOW,
    )
    assert o.due_at == NOW - H
    assert o.promise_due_at == NOW + 4 * H
    assert o.check_at == NOW + 2 * H
    assert o.recheck_at == NOW + 2 * H


def test_paused_and_fulfilled_cycles_set_no_due_time_nor_check_but_bound_the_result() -> None:
    o = outlook(
        [
            cycle("resolution", due_at=NOW + 3 * H, paused=True),
            cycle("first_response", due_at=NOW + 5 * H, fulfilled_at=NOW + H),
        ],
        NOW,
    )
    assert (o.due_at, o.promise_due_at, o.check_at) == (None, None, None)
    assert o.recheck_at == NOW + H


def test_moments_at_now_are_behind() -> None:
    assert outlook([cycle("resolution", due_at=NOW, breached_at=NOW)], NOW) == (None, None, NOW, None)
