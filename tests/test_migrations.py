"""The migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect

from hub.services import Services
from hub.store import schema
from hub.store.migrate import current_revision, upgrade


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={
            "include_name": lambda name, kind, _parent: (
                kind != "table" or (not name.startswith("message_fts") and name != "alembic_version")
            )
        },
    )
    return list(compare_metadata(context, schema.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_migrated_schema_matches_the_declared_one(services: Services) -> None:
    async with services.db.read() as conn:
        assert await conn.run_sync(_diff) == []
        tables = await conn.run_sync(_tables)
    assert {t.name for t in schema.metadata.sorted_tables} <= tables
    assert any(t.startswith("message_fts") for t in tables)


async def test_upgrade_is_idempotent(services: Services) -> None:
    before = await current_revision(services.db)
    await upgrade(services.db)
    assert await current_revision(services.db) == before == "0002"
