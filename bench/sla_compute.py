"""CPU time of the SLA clock's pure computation per conversation, without a database.

Builds histories shaped like `bench/sla.py`'s fill (one customer message each, a reply on a
third, a follow-up on half of those, a pending spell on a tenth, `vip` on a fifth, over two
working weeks) and times, with this process's CPU clock, the best of several passes of each
step `Tracker.recompute` takes per conversation: policy selection, the input digest, the
cycles under both rule sets of the benchmark, their outlook and their earned moments.
`--check` prints a fingerprint of every result, to compare two versions of the code.

Usage: python -m bench.sla_compute [--conversations 100000] [--repeat 5] [--check]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import random
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sla import NOW, START, policies  # noqa: E402
from hub.models import ConversationStatus  # noqa: E402
from hub.rules.conditions import Facts  # noqa: E402
from hub.sla import freshness  # noqa: E402
from hub.sla.cycles import compute_under, outlook  # noqa: E402
from hub.sla.deadlines import Step, StepKind  # noqa: E402
from hub.sla.history import History  # noqa: E402
from hub.sla.policy import PolicyBook  # noqa: E402


def histories(count: int) -> list[History]:
    """Histories as `history.load` builds them from `bench/sla.py`'s fill."""
    rng = random.Random(11)
    span = (NOW - START).total_seconds()
    out = []
    for cid in range(1, count + 1):
        at = START + timedelta(seconds=rng.random() * span * 0.9)
        status = "pending" if rng.random() < 0.1 else "open"
        steps = [Step(at, StepKind.INBOUND)]
        if rng.random() < 0.33:
            reply = at + timedelta(minutes=rng.randint(5, 600))
            steps.append(Step(reply, StepKind.REPLY))
            if rng.random() < 0.5:
                steps.append(Step(reply + timedelta(minutes=rng.randint(5, 900)), StepKind.INBOUND))
        if status == "pending":
            steps.append(Step(at + timedelta(minutes=30), StepKind.STATUS, ConversationStatus.PENDING))
        tags = frozenset({"vip"}) if rng.random() < 0.2 else frozenset()
        facts = Facts(
            channel="email",
            mailbox="support",
            subject=f"Order {cid}",
            body="Where is my parcel? It was due on Monday.",
            sender=f"c{cid}@example.com",
            language="en",
            tags=tags,
            priority="normal",
            status=status,
            team=None,
            assignee=None,
            in_business_hours=None,
            contact_name=f"Customer {cid}",
            conversation_id=cid,
        )
        steps.sort(key=lambda s: s.at)
        out.append(History(cid, facts, None, None, ConversationStatus(status), steps))
    return out


def best(repeat: int, run: Callable[[], Any]) -> float:
    """The least CPU seconds of `repeat` runs."""
    times = []
    for _ in range(repeat):
        gc.collect()
        started = time.process_time()
        run()
        times.append(time.process_time() - started)
    return min(times)


def measure(hs: list[History], book: PolicyBook, repeat: int, label: str) -> str:
    """Time each step on every history under one book; print µs per conversation; return a fingerprint."""
    keys = freshness.PolicyKeys(book)
    chosen = [book.select(h.facts) for h in hs]
    computed = [compute_under(h, p, book, NOW) for h, p in zip(hs, chosen, strict=True)]
    for h, p in zip(hs, chosen, strict=True):  # warm the calendar's timeline before timing
        compute_under(h, p, book, NOW)
    n = len(hs)
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("select", lambda: [book.select(h.facts) for h in hs]),
        ("digest", lambda: [freshness.digest(h, keys.key(p)) for h, p in zip(hs, chosen, strict=True)]),
        ("compute_under", lambda: [compute_under(h, p, book, NOW) for h, p in zip(hs, chosen, strict=True)]),
        ("outlook", lambda: [outlook(c, NOW) for c in computed]),
        ("moments", lambda: [[c.moments(NOW) for c in cs] for cs in computed]),
    ]
    total = 0.0
    print(label)
    for name, run in steps:
        us = best(repeat, run) / n * 1e6
        total += us
        print(f"  {name:<15} {us:7.2f} µs/conversation")
    print(f"  {'total':<15} {total:7.2f} µs/conversation")
    fingerprint = hashlib.blake2b(digest_size=16)
    for h, p, cs in zip(hs, chosen, computed, strict=True):
        parts = (p.name if p else None, freshness.digest(h, keys.key(p)), cs, outlook(cs, NOW))
        fingerprint.update(repr((parts, [c.moments(NOW) for c in cs])).encode())
    return fingerprint.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--check", action="store_true", help="print a fingerprint of every result")
    args = parser.parse_args()
    hs = histories(args.conversations)
    gc.freeze()
    for scale in (1.0, 1.5):
        fingerprint = measure(hs, policies(scale), args.repeat, f"policies({scale})")
        if args.check:
            print(f"  fingerprint     {fingerprint}")


if __name__ == "__main__":
    main()
