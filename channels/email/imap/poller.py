"""Keeping an account's mailboxes in sync: one connection and task per mailbox.

Each mailbox task opens a session, settles the after-commit action, syncs, then waits for
news with IDLE (re-issued before 29 minutes; the wake-up doubles as the periodic full sync)
or sleeps `poll_seconds` where the server has no IDLE. Any error drops the session; the
task reconnects with backoff and the next pass catches up from the cursor, so nothing is
skipped. The account is `degraded` while a mailbox is cut off: one log line when the server
is lost, one when it is back. On PostgreSQL the account is pulled by one process at a time
(a session advisory lock); the others stand by.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from channels.base import ChannelState
from channels.email.imap.client import ImapServer, ImapSession
from channels.email.imap.sync import Divert, MailboxSettings, MailboxSync, Parse
from hub.aio import backoff, cancel_and_wait
from hub.clock import Clock, utcnow
from hub.errors import ChannelAuthError
from hub.inbox import Inbox

log = logging.getLogger(__name__)

ACCOUNT_LOCKS = 0x696D6170


@dataclass(frozen=True, slots=True)
class PollSettings:
    """How often to look when IDLE is missing or quiet, and how long to back off."""

    idle: bool = True
    poll_seconds: float = 60.0
    full_sync_seconds: float = 600.0
    backoff_base_seconds: float = 1.0
    backoff_max_seconds: float = 300.0
    lock_retry_seconds: float = 15.0


class ImapPoller:
    """Runs the sync of every configured mailbox of one account; owns its tasks."""

    def __init__(
        self,
        inbox: Inbox,
        server: ImapServer,
        mailboxes: Sequence[MailboxSettings],
        parse: Parse,
        settings: PollSettings | None = None,
        clock: Clock = utcnow,
        divert: Divert | None = None,
        executor: Executor | None = None,
        triage: Parse | None = None,
        on_deferred: Callable[[], None] | None = None,
    ) -> None:
        self.inbox = inbox
        self.server = server
        self.settings = settings or PollSettings()
        self.syncs = [
            MailboxSync(inbox, m, parse, clock, divert, executor, triage, on_deferred) for m in mailboxes
        ]
        self.account = mailboxes[0].account if mailboxes else ""
        self.passes = 0
        self._down: dict[str, str] = {}
        self._bad_credentials = False
        self._running = False
        self._holding_lock = False
        self._task: asyncio.Task[None] | None = None
        self._lock_conn: AsyncConnection | None = None

    async def verify(self) -> None:
        """Log in once; raise ChannelAuthError or ChannelUnavailable (ImapError) if that fails."""
        session = await ImapSession.open(self.server)
        await session.close()

    def start(self) -> None:
        """Begin pulling in the background."""
        if self._task is None or self._task.done():
            self._running = True
            self._task = asyncio.create_task(self._run(), name=f"imap-{self.account}")

    async def stop(self) -> None:
        """Stop every mailbox task and release the account lock."""
        self._running = False
        task, self._task = self._task, None
        await cancel_and_wait(task)
        await self._release_lock()

    def state(self) -> ChannelState:
        """CONNECTED while every mailbox is reachable; DEGRADED while one is not."""
        if not self._running:
            return ChannelState.STOPPED
        if self._bad_credentials:
            return ChannelState.BAD_CREDENTIALS
        if self._down:
            return ChannelState.DEGRADED
        if not self._holding_lock:
            return ChannelState.CONNECTING
        return ChannelState.CONNECTED

    async def _run(self) -> None:
        try:
            await self._take_lock()
            async with asyncio.TaskGroup() as group:
                for sync in self.syncs:
                    group.create_task(
                        self._mailbox(sync), name=f"imap-{self.account}-{sync.settings.mailbox}"
                    )
        finally:
            await self._release_lock()

    async def _mailbox(self, sync: MailboxSync) -> None:
        name = sync.settings.mailbox
        session: ImapSession | None = None
        failures = 0
        try:
            while True:
                try:
                    if session is None:
                        session = await ImapSession.open(self.server)
                        await sync.settle(session)
                    await sync.run_once(session)
                    self.passes += 1
                    self._up(name)
                    failures = 0
                    if self.settings.idle and session.has_idle:
                        await session.wait_for_news(self.settings.full_sync_seconds)
                    else:
                        await asyncio.sleep(self.settings.poll_seconds)
                except ChannelAuthError as err:
                    self._lost(name, err, credentials=True)
                    failures += 1
                except Exception as err:  # noqa: BLE001
                    self._lost(name, err)
                    failures += 1
                else:
                    continue
                if session is not None:
                    await session.close()
                    session = None
                s = self.settings
                await asyncio.sleep(backoff(failures, s.backoff_base_seconds, s.backoff_max_seconds))
        finally:
            if session is not None:
                await asyncio.shield(session.close())

    def _lost(self, mailbox: str, err: BaseException, credentials: bool = False) -> None:
        if credentials and not self._bad_credentials:
            log.error("%s: the IMAP server refused our credentials: %s", self.account, err)
        self._bad_credentials = credentials
        if not self._down and not credentials:
            log.warning(
                "%s: lost the IMAP server (%s: %s); reconnecting with backoff",
                self.account,
                type(err).__name__,
                err,
            )
        else:
            log.debug("%s/%s: still failing: %s", self.account, mailbox, err)
        self._down[mailbox] = str(err)

    def _up(self, mailbox: str) -> None:
        self._bad_credentials = False
        if self._down.pop(mailbox, None) is not None and not self._down:
            log.info("%s: the IMAP server is back; caught up", self.account)

    async def _take_lock(self) -> None:
        db = self.inbox.db
        if db.is_sqlite:
            self._holding_lock = True
            return
        key = account_lock_key(db.schema, self.account)
        waited = False
        while True:
            conn = await db.engine.connect()
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            got = (
                await conn.execute(
                    text("SELECT pg_try_advisory_lock(:ns, :key)"), {"ns": ACCOUNT_LOCKS, "key": key}
                )
            ).scalar_one()
            if got:
                self._lock_conn = conn
                self._holding_lock = True
                if waited:
                    log.info("%s: this process now pulls the mailbox", self.account)
                return
            await conn.close()
            if not waited:
                log.info("%s: another process pulls this mailbox; standing by", self.account)
                waited = True
            await asyncio.sleep(self.settings.lock_retry_seconds)

    async def _release_lock(self) -> None:
        conn, self._lock_conn = self._lock_conn, None
        self._holding_lock = False
        if conn is not None:
            try:
                await asyncio.shield(conn.close())
            except Exception:
                log.debug("closing the lock connection of %s failed", self.account, exc_info=True)


def account_lock_key(schema: str | None, account: str) -> int:
    """The advisory lock of an account's mailboxes: per store schema, since locks span the database.

    A store in the default schema keeps the key hubs used before schemas were part of it, so an
    old and a new process exclude each other during a rolling upgrade.
    """
    named = account if schema in (None, "public") else f"{schema}\x00{account}"
    digest = hashlib.sha256(named.encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF
