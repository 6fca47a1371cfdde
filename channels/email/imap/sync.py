"""Pulling one mailbox into the inbox, exactly once, one bad mail never stalling the rest.

A pass (`MailboxSync.run_once`) selects the mailbox, compares its UIDVALIDITY with the
stored cursor (a change means: rescan from UID 1 and let ingest deduplicate; nothing is
wiped), lists the UIDs above the cursor, reads their RFC822.SIZE in batches of 200, and
fetches, parses and stores them batch by batch. Each batch's cursor advance commits in the
same transaction as its messages. A pass with more than `inline_limit` new mails (a first
sync, a catch-up) reads them with the headers-only `triage` and leaves the full parse to the
channel's `Completer` (`on_deferred` wakes it after `WAKE_AFTER` batches and when the pass
ends); a few new mails are parsed in full before they are stored, so they reach agents and
triggers whole at once. Oversized mail (headers kept) and mail that cannot be parsed or
stored go to quarantine with a reason, and the cursor moves past them. After a batch is
committed, the optional after-commit action (`\\Seen` or a move) runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import functools
import itertools
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from channels.email import pool
from channels.email.imap import cursor
from channels.email.imap.client import BATCH, ImapError, ImapSession
from channels.email.imap.cursor import Cursor
from hub import quarantine
from hub.aio import cancel_and_wait
from hub.clock import Clock, utcnow
from hub.inbox import Inbox
from hub.ingest import TRANSIENT
from hub.models import InboundMessage, IngestResult
from hub.pickling import quick_pickle
from hub.prepare import IngestLimits, Prepared, prepare
from hub.store.blobs import BlobBatch, BlobStore

log = logging.getLogger(__name__)


class Parse(Protocol):
    """`(raw message, mailbox, received_at=INTERNALDATE) -> InboundMessage`; raises on mail it
    cannot read. Must pickle (a module-level function or a `functools.partial` of one) to run
    in worker processes."""

    def __call__(
        self, raw: bytes, mailbox: str | None, /, *, received_at: datetime | None = None
    ) -> InboundMessage:
        """Parse one mail."""


Divert = Callable[[InboundMessage], Awaitable[bool]]
"""Is offered every mail before it is stored and takes the ones not for the inbox (a bounce
about our mail); True if it did. Reports and fax-to-mail come with their attachments; other
mail without (they are already in the blob store)."""

MAX_FETCH_BYTES = 16 * 1024 * 1024
INLINE_LIMIT = 50
READ_AHEAD = 2
"""Batches fetched and read ahead of the one being stored."""
WAKE_AFTER = 25
"""Batches a pass stores from headers before it wakes the fill-in (which then drains what is
pending), and again at the end of the pass: a catch-up of a few thousand mails is stored
before its database work competes with storing, a longer one is filled in alongside."""


class AfterCommit(enum.StrEnum):
    """What to do on the server with mail once it is stored."""

    NOTHING = "nothing"
    SEEN = "seen"
    MOVE = "move"


@dataclass(frozen=True, slots=True)
class MailboxSettings:
    """How one mailbox of an account is pulled."""

    account: str
    mailbox: str
    max_message_bytes: int = 35 * 1024 * 1024
    after_commit: AfterCommit = AfterCommit.NOTHING
    move_to: str | None = None
    inline_limit: int = INLINE_LIMIT


@dataclass(slots=True)
class PassResult:
    """What one sync pass did."""

    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    diverted: int = 0
    rescanned: bool = False


@quick_pickle
@dataclass(frozen=True, slots=True)
class _Fetched:
    uid: int
    raw: bytes
    received_at: datetime | None = None


@quick_pickle
@dataclass(frozen=True, slots=True)
class _Read:
    """A fetched mail ready to store (its blobs written), and the whole message, attachments
    included, where the channel may divert it (reports, fax-to-mail) instead of storing it."""

    uid: int
    prepared: Prepared
    whole: InboundMessage | None = None


_ReadBatch = tuple[list[_Read], list[tuple[_Fetched, str]]]


@dataclass(frozen=True, slots=True)
class _Ahead:
    """A batch being fetched and read in the background, up to its highest UID."""

    last_uid: int
    fetching: asyncio.Task[list[_Fetched]]
    parsing: asyncio.Task[_ReadBatch]


class MailboxSync:
    """Pulls one mailbox; stateless between passes apart from the cursor in the store."""

    def __init__(
        self,
        inbox: Inbox,
        settings: MailboxSettings,
        parse: Parse,
        clock: Clock = utcnow,
        divert: Divert | None = None,
        executor: Executor | None = None,
        triage: Parse | None = None,
        on_deferred: Callable[[], None] | None = None,
    ) -> None:
        self.inbox = inbox
        self.settings = settings
        self.parse = parse
        self.clock = clock
        self.divert = divert
        self.executor = executor
        self.triage = triage
        self.on_deferred = on_deferred

    async def run_once(self, session: ImapSession) -> PassResult:
        """One pass: store everything above the cursor; return what happened."""
        s = self.settings
        status = await session.select(s.mailbox)
        stored = await cursor.load(self.inbox.db, s.account, s.mailbox)
        result = PassResult()
        if stored is not None and stored.uidvalidity != status.uidvalidity:
            log.warning(
                "%s/%s: UIDVALIDITY changed from %d to %d; rescanning the mailbox and skipping duplicates",
                s.account,
                s.mailbox,
                stored.uidvalidity,
                status.uidvalidity,
            )
            stored = None
            result.rescanned = True
        position = stored or Cursor(status.uidvalidity, 0, status.highest_modseq)
        if stored is None:
            await cursor.store(self.inbox.db, s.account, s.mailbox, position, self.clock())
        if status.uidnext is not None and status.uidnext <= position.last_uid + 1:
            return result
        uids = await session.uids_after(position.last_uid)
        chunks = [uids[start : start + BATCH] for start in range(0, len(uids), BATCH)]
        if not chunks:
            return result
        uidvalidity = position.uidvalidity
        defer = self.triage is not None and len(uids) > s.inline_limit
        ahead: deque[_Ahead] = deque()
        last_fetch: asyncio.Task[list[_Fetched]] | None = None

        def launch(chunk: list[int]) -> None:
            nonlocal last_fetch
            fetching, parsing = self._read_ahead(session, uidvalidity, chunk, result, defer, last_fetch)
            ahead.append(_Ahead(max(chunk), fetching, parsing))
            last_fetch = fetching

        waiting = iter(chunks)
        for chunk in itertools.islice(waiting, READ_AHEAD):
            launch(chunk)
        batch: _Ahead | None = None
        unannounced = 0
        try:
            while ahead:
                batch = ahead.popleft()
                parsed, bad = await batch.parsing
                for chunk in itertools.islice(waiting, 1):
                    launch(chunk)
                after = Cursor(uidvalidity, batch.last_uid, status.highest_modseq)
                done = await self._process(parsed, bad, after, result)
                unannounced += 1
                if defer and unannounced == WAKE_AFTER:
                    self._announce()
                    unannounced = 0
                if done and s.after_commit is not AfterCommit.NOTHING and last_fetch is not None:
                    await asyncio.wait({last_fetch})
                await self._after_commit(session, done)
        finally:
            if defer and unannounced:
                self._announce()
            for unfinished in (batch, *ahead):
                for task in (unfinished.fetching, unfinished.parsing) if unfinished else ():
                    await cancel_and_wait(task)
                    if not task.cancelled():
                        task.exception()
        return result

    def _announce(self) -> None:
        """Tell the channel that mail stored from its headers waits to be filled in."""
        if self.on_deferred is not None:
            self.on_deferred()

    def _read_ahead(
        self,
        session: ImapSession,
        uidvalidity: int,
        uids: list[int],
        result: PassResult,
        defer: bool,
        previous: asyncio.Task[list[_Fetched]] | None,
    ) -> tuple[asyncio.Task[list[_Fetched]], asyncio.Task[_ReadBatch]]:
        """Fetch a batch once the fetch before it is done (one command at a time on the
        connection), then parse it, in the background, while earlier batches are stored."""

        async def fetch_in_turn() -> list[_Fetched]:
            if previous is not None:
                await asyncio.wait({previous})
                if previous.cancelled() or previous.exception() is not None:
                    raise ImapError("an earlier fetch of this pass failed")
            return await self._fetch(session, uidvalidity, uids, result)

        fetching = asyncio.create_task(fetch_in_turn())

        async def parse_when_fetched() -> _ReadBatch:
            return await self._parse(await fetching, uidvalidity, defer)

        return fetching, asyncio.create_task(parse_when_fetched())

    async def settle(self, session: ImapSession) -> None:
        """Apply the after-commit action to everything the cursor covers (after a crash between
        storing and flagging, the flag is set now; nothing is fetched twice)."""
        s = self.settings
        if s.after_commit is AfterCommit.NOTHING:
            return
        stored = await cursor.load(self.inbox.db, s.account, s.mailbox)
        if stored is None or stored.last_uid == 0:
            return
        status = await session.select(s.mailbox)
        if status.uidvalidity != stored.uidvalidity or status.exists == 0:
            return
        await self._after_commit(session, range(1, stored.last_uid + 1))

    async def _fetch(
        self, session: ImapSession, uidvalidity: int, uids: list[int], result: PassResult
    ) -> list[_Fetched]:
        """Sizes first; oversized mail to quarantine (headers only); then the bodies of the rest."""
        s = self.settings
        sizes = await session.sizes(uids)
        wanted = [uid for uid in uids if uid in sizes and sizes[uid] <= s.max_message_bytes]
        for uid in (uid for uid in uids if uid in sizes and sizes[uid] > s.max_message_bytes):
            await self._quarantine_oversized(session, uidvalidity, uid, sizes[uid])
            result.quarantined += 1
        fetched: list[_Fetched] = []
        for group in _by_size(wanted, sizes, MAX_FETCH_BYTES):
            bodies = await session.bodies_and_dates(group)
            fetched.extend(_Fetched(uid, *bodies[uid]) for uid in group if uid in bodies)
        return fetched

    async def _parse(self, fetched: list[_Fetched], uidvalidity: int, defer: bool) -> _ReadBatch:
        """Read (triage or parse in full) and prepare a batch across the worker processes."""
        parse = self.triage if defer and self.triage is not None else self.parse
        inbox = self.inbox
        work = functools.partial(
            read_items, parse, inbox.blobs.root, inbox.limits, self.settings.mailbox, uidvalidity
        )
        raws = {item.uid: item for item in fetched}
        read: list[_Read] = []
        bad: list[tuple[_Fetched, str]] = []
        blobs = inbox.blobs.batch()
        try:
            for outcomes, written in await pool.spread(self.executor, work, fetched):
                blobs.absorb(written)
                for uid, outcome in outcomes:
                    if isinstance(outcome, str):
                        bad.append((raws[uid], outcome))
                    else:
                        read.append(outcome)
            await asyncio.to_thread(blobs.commit)
        finally:
            blobs.abandon()
        return read, bad

    async def _process(
        self, read: list[_Read], bad: list[tuple[_Fetched, str]], after: Cursor, result: PassResult
    ) -> list[int]:
        """Quarantine what could not be read, divert reports, store the rest with the cursor;
        return the UIDs now stored."""
        for fetched, reason in bad:
            await self._quarantine(after.uidvalidity, fetched.uid, fetched.raw, reason)
            result.quarantined += 1
        if self.divert is not None:
            kept = []
            for item in read:
                if await self.divert(item.whole or item.prepared.message):
                    result.diverted += 1
                else:
                    kept.append(item)
            read = kept
        await self._store(read, after, result)
        return [item.uid for item in read]

    async def _store(self, read: list[_Read], after: Cursor, result: PassResult) -> None:
        s = self.settings
        store = self.inbox.pipeline.store

        async def advance(conn: AsyncConnection, _results: list[IngestResult]) -> None:
            await cursor.save(conn, s.account, s.mailbox, after, self.clock())

        try:
            results = await store([item.prepared for item in read], in_transaction=advance)
        except TRANSIENT:
            raise
        except Exception:  # noqa: BLE001
            log.warning("%s/%s: a batch of %d failed; storing one by one", s.account, s.mailbox, len(read))
        else:
            _count(results, result)
            return
        for index, item in enumerate(read):
            step = Cursor(
                after.uidvalidity, item.uid if index < len(read) - 1 else after.last_uid, after.highest_modseq
            )

            async def advance_one(conn: AsyncConnection, _r: list[IngestResult], step: Cursor = step) -> None:
                await cursor.save(conn, s.account, s.mailbox, step, self.clock())

            try:
                _count(await store([item.prepared], in_transaction=advance_one), result)
            except TRANSIENT:
                raise
            except Exception as err:  # noqa: BLE001
                reason = f"not storable: {type(err).__name__}: {err}".splitlines()[0]
                raw = await self._raw(item.prepared)
                await self._quarantine(after.uidvalidity, item.uid, raw, reason)
                await cursor.store(self.inbox.db, s.account, s.mailbox, step, self.clock())
                result.quarantined += 1
        if not read:
            await cursor.store(self.inbox.db, s.account, s.mailbox, after, self.clock())

    async def _raw(self, prepared: Prepared) -> bytes:
        """The raw mail a prepared message was read from."""
        if prepared.raw is not None:
            return prepared.raw
        if prepared.raw_sha256 is None:
            return b""
        return await self.inbox.blobs.get(prepared.raw_sha256)

    async def _after_commit(self, session: ImapSession, uids: Sequence[int]) -> None:
        s = self.settings
        if s.after_commit is AfterCommit.NOTHING or not uids:
            return
        if s.after_commit is AfterCommit.SEEN:
            await session.add_flags(uids, r"\Seen")
        elif s.move_to:
            await session.move(uids, s.move_to)

    async def _quarantine_oversized(
        self, session: ImapSession, uidvalidity: int, uid: int, size: int
    ) -> None:
        s = self.settings
        headers = await session.headers([uid])
        reason = (
            f"oversized: RFC822.SIZE {size} is over the limit of {s.max_message_bytes} bytes; "
            f"headers kept, the message stays on the server"
        )
        log.warning("%s/%s: UID %d %s", s.account, s.mailbox, uid, reason)
        await self._quarantine(uidvalidity, uid, headers.get(uid, b""), reason)

    async def _quarantine(self, uidvalidity: int, uid: int, raw: bytes, reason: str) -> None:
        s = self.settings
        ref = source_ref(s.mailbox, uidvalidity, uid)
        if await quarantine.holds(self.inbox.db, s.account, ref):
            return
        log.warning("%s/%s: quarantining UID %d: %s", s.account, s.mailbox, uid, reason)
        await quarantine.record(
            self.inbox.db,
            self.inbox.blobs,
            channel_account=s.account,
            external_id=ref,
            reason=reason,
            payload=raw,
            now=self.clock(),
        )


def read_items(
    parse: Parse,
    blob_root: Path,
    limits: IngestLimits,
    mailbox: str,
    uidvalidity: int,
    fetched: list[_Fetched],
) -> tuple[list[tuple[int, _Read | str]], BlobBatch]:
    """Parse and prepare fetched mail (blocking; runs in a worker process or a thread): each
    UID with the mail ready to store, marked with where it lives on the server, or why it
    cannot be stored; and the blobs written, for the caller to commit."""
    blobs = BlobStore(blob_root).batch()
    out: list[tuple[int, _Read | str]] = []
    try:
        for item in fetched:
            try:
                message = parse(item.raw, mailbox, received_at=item.received_at)
            except Exception as err:  # noqa: BLE001
                out.append((item.uid, f"unparseable: {type(err).__name__}: {err}"))
                continue
            where = {"mailbox": mailbox, "uid": item.uid, "uidvalidity": uidvalidity}
            message = dataclasses.replace(message, meta={**message.meta, "imap": where})
            try:
                prepared = prepare(blobs, limits, message, raw_with_row=True)
            except Exception as err:  # noqa: BLE001
                out.append((item.uid, f"not storable: {type(err).__name__}: {err}".splitlines()[0]))
                continue
            out.append((item.uid, _Read(item.uid, prepared, message if _divertible(message) else None)))
    except BaseException:
        blobs.abandon()
        raise
    return out, blobs


def _divertible(message: InboundMessage) -> bool:
    """Reports and fax-to-mail: what the channel may take out of the inbox path."""
    return bool(message.meta.get("report")) or "fax" in (message.meta.get("tags") or ())


def source_ref(mailbox: str, uidvalidity: int, uid: int) -> str:
    """Where a message lives on the server, as quarantine records name it."""
    return f"imap:{mailbox}:{uidvalidity}:{uid}"


def parse_source_ref(ref: str) -> tuple[str, int, int] | None:
    """`(mailbox, uidvalidity, uid)` from a `source_ref`, or None if `ref` is not one."""
    if not ref.startswith("imap:"):
        return None
    mailbox, _, rest = ref[5:].rpartition(":")
    mailbox, _, validity = mailbox.rpartition(":")
    if not mailbox or not validity.isdigit() or not rest.isdigit():
        return None
    return mailbox, int(validity), int(rest)


def _count(results: list[IngestResult], into: PassResult) -> None:
    for r in results:
        if r.duplicate:
            into.duplicates += 1
        else:
            into.stored += 1


def _by_size(uids: list[int], sizes: dict[int, int], limit: int) -> list[list[int]]:
    """Split UIDs into fetch groups of at most `limit` bytes (a bigger single mail goes alone)."""
    groups: list[list[int]] = []
    current: list[int] = []
    total = 0
    for uid in uids:
        size = sizes.get(uid, 0)
        if current and total + size > limit:
            groups.append(current)
            current, total = [], 0
        current.append(uid)
        total += size
    if current:
        groups.append(current)
    return groups
