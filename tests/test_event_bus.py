"""The event bus: listeners see everything; a slow queue loses its oldest events and says so once."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from hub.events import QUEUE_LIMIT, EventBus, event_row

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_listeners_see_every_event_and_a_full_queue_drops_its_oldest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus()
    seen: list[dict[str, Any]] = []
    bus.listen(seen.append)
    queue = bus.subscribe()
    events = [event_row("message.received", AT, n) for n in range(QUEUE_LIMIT + 50)]
    with caplog.at_level(logging.WARNING, logger="hub.events"):
        bus.publish(events)
    assert seen == events
    assert queue.qsize() == QUEUE_LIMIT and queue.get_nowait()["conversation_id"] == 50
    assert len([r for r in caplog.records if "fell behind" in r.message]) == 1
    assert bus.overflowed(queue) and not bus.overflowed(queue)
    bus.unlisten(seen.append)
    bus.publish(events[:1])
    assert len(seen) == len(events)


def test_a_failing_listener_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    seen: list[dict[str, Any]] = []

    def broken(event: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    bus.listen(broken)
    bus.listen(seen.append)
    with caplog.at_level(logging.ERROR, logger="hub.events"):
        bus.publish([event_row("message.received", AT, 1)])
    assert len(seen) == 1 and "listener failed" in caplog.text
