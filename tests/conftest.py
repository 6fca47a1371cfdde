"""Shared fixtures: a store on SQLite and on PostgreSQL, services, a controllable clock."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from hub import config as hub_config
from hub.config import Config
from hub.services import Services, open_services

PG_DSN = os.environ.get("OMNIHUB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_SERVICES = os.environ.get("OMNIHUB_REQUIRE_SERVICES") == "1"


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


def unavailable(what: str) -> None:
    """Skip when a server is missing, or fail when CI says every server must be there."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required (OMNIHUB_REQUIRE_SERVICES=1) but not reachable")
    pytest.skip(f"{what} not reachable")


async def _pg_execute(sql: str) -> None:
    conn = await asyncpg.connect(PG_DSN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """`[store]` settings for a fresh, empty database of each kind."""
    if request.param == "sqlite":
        yield {"url": f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"}
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        await _pg_execute(f"CREATE SCHEMA {schema}")
    except (OSError, asyncpg.PostgresError) as err:
        unavailable(f"PostgreSQL at {PG_DSN} ({err})")
    url = PG_DSN.replace("postgresql://", "postgresql+asyncpg://", 1)
    yield {"url": url, "schema_name": schema}
    await _pg_execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def make_config(tmp_path: Path, store_settings: dict[str, Any]) -> Any:
    """Build a Config on the test's store, with extra sections merged in."""

    def build(**sections: Any) -> Config:
        data: dict[str, Any] = {"store": dict(store_settings), "hub": {"data_dir": str(tmp_path / "data")}}
        for key, value in sections.items():
            data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
        return hub_config.parse(data, tmp_path)

    return build


@pytest.fixture
async def services(make_config: Any, clock: FakeClock) -> AsyncIterator[Services]:
    """Migrated services on a fresh store, with the fake clock."""
    svc = await open_services(make_config(), clock=clock)
    yield svc
    await svc.close()
