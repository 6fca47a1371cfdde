"""The async engine, with SQLite made safe for one writer at a time and PostgreSQL for many."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from hub.aio import backoff
from hub.errors import ConfigError
from hub.store.writelock import WriteLock

log = logging.getLogger(__name__)
T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 30_000
CONFLICT_STATES = frozenset({"40P01", "40001"})
"""PostgreSQL's deadlock_detected and serialization_failure: the transaction may simply run again."""
CONFLICT_ATTEMPTS = 5
SQLITE_CHECKPOINT_PAGES = 20_000
"""WAL pages (about 80 MB) before a commit checkpoints: rarer checkpoints keep them out of most
messages' way (chat fan-out p99 on SQLite 116-118 ms at SQLite's default of 1,000, 85-89 ms)."""


class Database:
    """One engine per process; `write()` for transactions that change data, `read()` for queries."""

    def __init__(self, url: str, *, schema: str | None = None, pool_size: int = 10) -> None:
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise ConfigError(f"store.url: unsupported database {self.dialect!r}")
        self.url = parsed
        self.schema = schema
        self._write_lock = WriteLock()
        kwargs: dict[str, Any] = {}
        if self.dialect == "postgresql":
            if parsed.drivername != "postgresql+asyncpg":
                self.url = parsed.set(drivername="postgresql+asyncpg")
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = pool_size
            if schema:
                kwargs["connect_args"] = {"server_settings": {"search_path": schema}}
        elif parsed.drivername != "sqlite+aiosqlite":
            self.url = parsed.set(drivername="sqlite+aiosqlite")
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.dialect == "sqlite":
            _configure_sqlite(self.engine)

    @property
    def is_sqlite(self) -> bool:
        """Whether this is the embedded SQLite store."""
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def write(self, *, urgent: bool = False) -> AsyncIterator[AsyncConnection]:
        """A transaction that may write; committed on exit, rolled back on error.

        On SQLite writers take turns; `urgent` ones (a sender waits on them) go first.
        """
        if self.is_sqlite:
            async with self._write_lock.hold(urgent=urgent), self.engine.connect() as conn:
                conn = await conn.execution_options(sqlite_begin="IMMEDIATE")
                async with conn.begin():
                    yield conn
        else:
            async with self.engine.begin() as conn:
                yield conn

    async def write_again_on_conflict(
        self, work: Callable[[AsyncConnection], Awaitable[T]], *, urgent: bool = False
    ) -> T:
        """`work` in a write transaction, run again from the start if PostgreSQL aborts it for a deadlock."""
        attempt = 1
        while True:
            try:
                async with self.write(urgent=urgent) as conn:
                    return await work(conn)
            except DBAPIError as err:
                state = getattr(err.orig, "sqlstate", None)
                if state not in CONFLICT_STATES or attempt >= CONFLICT_ATTEMPTS:
                    raise
                log.info("transaction aborted by a conflict (%s); running it again", state)
            await asyncio.sleep(backoff(attempt, 0.01, 0.2))
            attempt += 1

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for queries, in a read transaction that is rolled back on exit."""
        async with self.engine.connect() as conn:
            yield conn

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA foreign_keys=ON",
            f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
            "PRAGMA synchronous=NORMAL",
            f"PRAGMA wal_autocheckpoint={SQLITE_CHECKPOINT_PAGES}",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")
