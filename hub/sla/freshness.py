"""Whether a conversation's stored SLA state is still what recomputing it would write.

A conversation's cycles, due times and wake-ups are a pure function of its history, the
policy its facts select (with that policy's calendar), a few book-wide settings, and `now`.
Each recomputation stores a digest of everything but `now` in `sla_inputs`, with the span of
`now` over which the result holds: from the time it was computed until the first warning,
deadline or fulfilment after it (the only instants at which a breach, an earned event or the
next wake-up can change). A conversation whose digest matches and whose span covers `now` is
skipped. Bump `ALGORITHM` whenever what is computed from the same inputs changes.

A customer message that directly follows another one moves no clock (see `moving_steps`), so
it is left out of the digest: a caller's second call or e-mail while the first still waits for
an answer costs a look at the history, not a recomputation and its writes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.sla.calendar import BusinessCalendar, micros
from hub.sla.deadlines import Step, StepKind
from hub.sla.history import History
from hub.sla.policy import Policy, PolicyBook
from hub.store import bulk, schema

ALGORITHM = "1"
HOLIDAYS_VERSION = metadata.version("holidays")
KINDS = {StepKind.INBOUND: "i", StepKind.REPLY: "r", StepKind.AUTO_REPLY: "a", StepKind.STATUS: "s"}


@dataclass(frozen=True, slots=True)
class Stored:
    """What `sla_inputs` holds for one conversation."""

    digest: str
    computed_at: datetime
    recheck_at: datetime | None


class PolicyKeys:
    """Fingerprints of one book's policies: what of a policy and the book a computation uses."""

    def __init__(self, book: PolicyBook) -> None:
        self.book = book
        timers = book.timers
        self._shared = repr((ALGORITHM, timers.confirm_receipt_after, timers.follow_up_after))
        self._keys: dict[str | None, str] = {}

    def key(self, policy: Policy | None) -> str:
        """The fingerprint of computing under `policy` (None: no policy matched)."""
        name = None if policy is None else policy.name
        found = self._keys.get(name)
        if found is None:
            if policy is None:
                found = repr((self._shared, calendar_key(self.book.default_calendar)))
            else:
                t = policy.targets
                found = repr(
                    (
                        self._shared,
                        policy.name,
                        calendar_key(policy.calendar),
                        t.first_response,
                        t.next_response,
                        t.periodic_update,
                        t.resolution,
                        sorted(t.pause_statuses),
                        t.warn_before,
                        t.human_only,
                    )
                )
            self._keys[name] = found
        return found


def calendar_key(calendar: BusinessCalendar) -> str:
    """Everything that decides a calendar's business time, as text."""
    holidays: Any = calendar.holidays_from
    if holidays is None and calendar.public_holiday is not None:
        holidays = repr(calendar.public_holiday)  # an opaque function: valid for this process only
    return repr(
        (
            calendar.timezone.key,
            calendar.weekly,
            sorted(calendar.closed),
            sorted(calendar.extra_working.items()),
            holidays,
            HOLIDAYS_VERSION,
        )
    )


def digest(h: History, policy_key: str) -> str:
    """A fingerprint of everything a recomputation of this conversation reads, except `now`."""
    hasher = _hashed_keys.get(policy_key)
    if hasher is None:
        if len(_hashed_keys) >= MOST_HASHED_KEYS:
            _hashed_keys.clear()
        hasher = _hashed_keys[policy_key] = hashlib.blake2b(f"{policy_key}|".encode(), digest_size=16)
    hasher = hasher.copy()
    parts = [str(h.team_id), str(h.assignee_id), h.status.value]
    for s in moving_steps(h.steps):
        parts.append(f"{micros(s.at)}{KINDS[s.kind]}{s.status or ''}")
    if h.promises:
        parts.extend(f"p{p.at.isoformat()}>{p.due_at.isoformat()}" for p in h.promises)
    hasher.update("|".join(parts).encode())
    return hasher.hexdigest()


MOST_HASHED_KEYS = 64
_hashed_keys: dict[str, hashlib.blake2b] = {}
"""The digest's hash state after the policy key, which leads every digest under that policy."""


def moving_steps(steps: Sequence[Step]) -> Iterator[Step]:
    """The steps, in time order as `history.load` gives them, less customer messages that move no clock.

    An inbound step right after another inbound one finds the conversation open with an inbound
    already seen; it would start a next-response cycle only if a reply came before the first
    inbound step and that step is the one before it (the first inbound step starts no such
    cycle), and it changes no other cycle, promise, receipt check or follow-up. Every such
    step is passed over; the history without them computes to the same state at any `now`.
    """
    previous: StepKind | None = None
    inbound_seen = replied_early = first_is_previous = False
    for step in steps:
        kind = step.kind
        if kind is StepKind.INBOUND:
            if previous is StepKind.INBOUND and not (replied_early and first_is_previous):
                continue
            first_is_previous = not inbound_seen
            inbound_seen = True
        elif kind is not StepKind.STATUS and not inbound_seen:
            replied_early = True
        previous = kind
        yield step


def _stored(pg: bool, lock: bool) -> Select[Any]:
    s = schema.sla_inputs
    query = (
        select(s.c.conversation_id, s.c.digest, s.c.computed_at, s.c.recheck_at)
        .where(bulk.in_list(pg, s.c.conversation_id))
        .order_by(s.c.conversation_id)
    )
    return query.with_for_update() if pg and lock else query


_stored_query = bulk.statement(lambda pg: _stored(pg, lock=False))
_locked_query = bulk.statement(lambda pg: _stored(pg, lock=True))
"""The same rows, locked on PostgreSQL until the caller's write transaction ends (in id order),
so another process's recomputation of them waits for it."""


async def unchanged(
    conn: AsyncConnection, digests: Mapping[int, str], now: datetime, *, lock: bool = False
) -> tuple[set[int], dict[int, Seen]]:
    """The conversations whose stored state was computed from inputs with these digests and holds at
    `now`; and what is stored for each conversation that has stored state (see `seen`). With
    `lock`, their rows stay locked as `seen` locks them."""
    if not digests:
        return set(), {}
    at = bulk.stamp_writer(conn)(now)
    query = _locked_query if lock else _stored_query
    rows = await bulk.fetch(conn, query, ids=bulk.listed(conn, list(digests)))
    fresh = {
        cid
        for cid, digest, computed_at, recheck_at in rows
        if digest == digests[cid] and computed_at <= at and (recheck_at is None or at < recheck_at)
    }
    return fresh, {cid: (digest, computed_at) for cid, digest, computed_at, _ in rows}


Seen = tuple[str, Any]
"""A conversation's stored digest and the time it was computed (as the database holds it)."""


async def seen(conn: AsyncConnection, ids: Collection[int]) -> dict[int, Seen]:
    """What is stored for these conversations, locked in the caller's write transaction (see
    `_locked_query`)."""
    rows = await bulk.fetch(conn, _locked_query, ids=bulk.listed(conn, list(ids)))
    return {cid: (digest, computed_at) for cid, digest, computed_at, _ in rows}


async def save(conn: AsyncConnection, stored: Mapping[int, Stored], known: Collection[int]) -> None:
    """Record what these conversations' state was computed from, in the caller's transaction.

    Rows of conversations in `known` (stored before) are updated, the others inserted: mostly
    new, they go by COPY on PostgreSQL unless another transaction stored one of them meanwhile.
    """
    again: list[tuple[Any, ...]] = []
    new: list[tuple[Any, ...]] = []
    for cid, s in stored.items():
        (again if cid in known else new).append((cid, s.digest, s.computed_at, s.recheck_at))
    table = schema.sla_inputs
    await bulk.update(conn, table, ["conversation_id"], again, columns=INPUT_COLUMNS)
    await bulk.insert(
        conn, table, new, columns=INPUT_COLUMNS, on_conflict=["conversation_id"], update=INPUT_COLUMNS[1:],
        mostly_new=True,
    )  # fmt: skip


INPUT_COLUMNS = ("conversation_id", "digest", "computed_at", "recheck_at")
