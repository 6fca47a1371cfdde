"""Bulk statements store exactly what the schema would, and flip each flag once, on both databases."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from hub.services import Services
from hub.store import bulk, schema

AT = datetime(2026, 11, 23, 9, 0, 0, 250, tzinfo=UTC)
BEIJING = timezone(timedelta(hours=8))


AT_QUERY = bulk.statement(lambda _pg: select(schema.events.c.at).order_by(schema.events.c.id))
LATER_QUERY = bulk.statement(
    lambda _pg: (
        select(schema.events.c.kind).where(schema.events.c.at > bindparam("at")).order_by(schema.events.c.id)
    )
)
TIMER_KEYS = bulk.statement(lambda _pg: select(schema.timers.c.key).order_by(schema.timers.c.key))
KEYS_QUERY = bulk.statement(
    lambda pg: (
        select(schema.timers.c.key).where(bulk.in_list(pg, schema.timers.c.id)).order_by(schema.timers.c.key)
    )
)


def event(n: int, at: datetime) -> dict[str, Any]:
    return {"kind": f"k{n}", "at": at, "conversation_id": None, "agent_id": None, "data": {"n": n, "s": "é"}}


async def test_inserted_rows_read_back_like_rows_the_schema_writes(services: Services) -> None:
    async with services.db.write() as conn:
        await conn.execute(insert(schema.events), [event(1, AT)])
        await bulk.insert(
            conn, schema.events, [event(2, AT), event(3, AT.astimezone(BEIJING) + timedelta(hours=1))]
        )
    e = schema.events
    async with services.db.read() as conn:
        rows = (await conn.execute(select(e.c.kind, e.c.at, e.c.data).order_by(e.c.id))).all()
        raw = await bulk.fetch(conn, AT_QUERY)
        later = await bulk.fetch(conn, LATER_QUERY, at=bulk.stamp_writer(conn)(AT))
    assert [tuple(r) for r in rows] == [
        ("k1", AT, {"n": 1, "s": "é"}),
        ("k2", AT, {"n": 2, "s": "é"}),
        ("k3", AT + timedelta(hours=1), {"n": 3, "s": "é"}),
    ]
    assert raw[0][0] == raw[1][0]
    assert [r[0] for r in later] == ["k3"]


async def test_many_rows_read_back_alike_and_go_with_their_transaction(services: Services) -> None:
    e = schema.events
    many = [event(n, AT + timedelta(seconds=n)) for n in range(bulk.COPY_ROWS + 5)]
    many[1] = event(1, AT.astimezone(BEIJING))

    async def insert_then_fail() -> None:
        async with services.db.write() as conn:
            await bulk.insert(conn, e, many)
            raise RuntimeError("undone")

    with pytest.raises(RuntimeError, match="undone"):
        await insert_then_fail()
    async with services.db.write() as conn:
        await bulk.insert(conn, e, many)
    async with services.db.read() as conn:
        rows = (await conn.execute(select(e.c.kind, e.c.at, e.c.data).order_by(e.c.id))).all()
    assert [tuple(r) for r in rows] == [(r["kind"], r["at"].astimezone(UTC), r["data"]) for r in many]


async def test_a_taken_key_raises_sqlalchemys_integrity_error_and_rolls_back(services: Services) -> None:
    row = {"kind": "k", "key": "taken", "due_at": AT, "payload": {}, "status": "fired", "created_at": AT}
    async with services.db.write() as conn:
        await bulk.insert(conn, schema.timers, [row])

    async def insert_taken() -> None:
        async with services.db.write() as conn:
            await bulk.insert(conn, schema.timers, [{**row, "key": "new"}])
            await bulk.insert(conn, schema.timers, [row])

    with pytest.raises(IntegrityError):
        await insert_taken()
    async with services.db.read() as conn:
        keys = [r[0] for r in await bulk.fetch(conn, TIMER_KEYS)]
    assert keys == ["taken"]


@pytest.mark.parametrize("store_settings", ["postgresql"], indirect=True)  # COPY is PostgreSQL's
async def test_a_taken_key_in_a_copied_batch_raises_sqlalchemys_integrity_error(services: Services) -> None:
    row = {"kind": "k", "key": "taken", "due_at": AT, "payload": {}, "status": "fired", "created_at": AT}
    async with services.db.write() as conn:
        await bulk.insert(conn, schema.timers, [row])
    many = [{**row, "key": f"new-{n}"} for n in range(bulk.COPY_ROWS)] + [row]

    with pytest.raises(IntegrityError):
        async with services.db.write() as conn:
            await bulk.insert(conn, schema.timers, many)
    async with services.db.read() as conn:
        keys = [r[0] for r in await bulk.fetch(conn, TIMER_KEYS)]
    assert keys == ["taken"]


async def test_naive_datetimes_are_refused(services: Services) -> None:
    naive = AT.replace(tzinfo=None)
    with pytest.raises(ValueError, match="naive"):
        async with services.db.write() as conn:
            await bulk.insert(conn, schema.events, [event(1, naive)])


async def test_a_timestamp_repeated_down_a_column_is_written_like_every_other(services: Services) -> None:
    shared = AT + timedelta(minutes=5)
    times = [shared, AT, shared, shared.astimezone(BEIJING), AT + timedelta(microseconds=1), shared]
    async with services.db.write() as conn:
        await bulk.insert(conn, schema.events, [event(n, at) for n, at in enumerate(times)])
    e = schema.events
    async with services.db.read() as conn:
        stored = (await conn.execute(select(e.c.at).order_by(e.c.id))).scalars().all()
    assert stored == times
    with pytest.raises(ValueError, match="naive"):
        async with services.db.write() as conn:
            await bulk.insert(conn, schema.events, [event(1, AT), event(2, AT.replace(tzinfo=None))])


async def test_upsert_update_and_fetch_by_ids(services: Services) -> None:
    t = schema.timers
    rows = [
        {"kind": "k", "key": f"key{n}", "due_at": AT, "conversation_id": None, "payload": {"n": n},
         "status": "pending", "attempts": 0, "created_at": AT}
        for n in range(3)
    ]  # fmt: skip
    async with services.db.write() as conn:
        await bulk.insert(conn, t, rows)
        await bulk.insert(conn, t, [{**rows[0], "payload": {"n": 9}}], on_conflict=["key"])
        await bulk.insert(
            conn, t, [{**rows[1], "payload": {"n": 8}}], on_conflict=["key"], update=["payload"]
        )
        ids = {r.key: r.id for r in await conn.execute(select(t.c.id, t.c.key))}
        await bulk.update(
            conn, t, ["id"], [{"id": ids["key2"], "status": "cancelled", "due_at": AT + timedelta(1)}]
        )
        found = await bulk.fetch(conn, KEYS_QUERY, ids=bulk.listed(conn, [ids["key0"], ids["key2"]]))
    async with services.db.read() as conn:
        stored = {r.key: (r.payload, r.status, r.due_at) for r in await conn.execute(select(t))}
    assert stored == {
        "key0": ({"n": 0}, "pending", AT),
        "key1": ({"n": 8}, "pending", AT),
        "key2": ({"n": 2}, "cancelled", AT + timedelta(1)),
    }
    assert [r[0] for r in found] == ["key0", "key2"]


@pytest.mark.parametrize("store_settings", ["postgresql"], indirect=True)
async def test_a_list_of_ids_is_never_tested_against_every_row_in_a_generic_plan(services: Services) -> None:
    """A generic plan would test `= ANY(array)` row by row, each row against the whole array."""
    t = schema.timers
    rows = [
        {"kind": "k", "key": f"key{n}", "due_at": AT, "conversation_id": None, "payload": {},
         "status": "pending", "attempts": 0, "created_at": AT}
        for n in range(50)
    ]  # fmt: skip
    async with services.db.write() as conn:
        await bulk.insert(conn, t, rows)
        ids = [r[0] for r in await conn.execute(select(t.c.id).order_by(t.c.id))]
        await conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
        compiled = KEYS_QUERY(conn)
        plan = await conn.exec_driver_sql("EXPLAIN " + compiled.sql, compiled.params({"ids": ids[::2]}))
        found = await bulk.fetch(conn, KEYS_QUERY, ids=bulk.listed(conn, ids[::2]))
    text = "\n".join(r[0] for r in plan)
    assert "ANY" not in text, text
    assert "unnest" in text
    assert [r[0] for r in found] == sorted(f"key{n}" for n in range(0, 50, 2))


async def test_a_flag_flips_once_when_two_transactions_race(services: Services, make_config: Any) -> None:
    from hub.services import open_services

    s = schema.sla_cycles
    await _conversation(services)
    cycles = [
        {"conversation_id": 1, "metric": m, "seq": q, "policy": "p", "team_id": None, "assignee_id": None,
         "started_at": AT, "due_at": None, "warn_at": None, "fulfilled_at": None, "breached_at": None,
         "paused": False, "business_seconds": None, "digest": "d", "updated_at": AT}
        for m in ("first_response", "resolution") for q in (0, 1)
    ]  # fmt: skip
    async with services.db.write() as conn:
        await bulk.insert(conn, s, cycles)
    keys = [(1, "first_response", 0), (1, "resolution", 1), (1, "missing", 0)]
    other = await open_services(make_config(), clock=services.clock)
    try:

        async def flip(svc: Services) -> list[tuple[Any, ...]]:
            async with svc.db.write() as conn:
                return await bulk.set_where_null(
                    conn, s, "breached_event_at", AT, ["conversation_id", "metric", "seq"], keys
                )

        first, second = await asyncio.gather(flip(services), flip(other))
    finally:
        await other.close()
    assert sorted(first + second) == [(1, "first_response", 0), (1, "resolution", 1)]
    async with services.db.read() as conn:
        flagged = {(r.metric, r.seq): r.breached_event_at for r in await conn.execute(select(s))}
    assert flagged == {
        ("first_response", 0): AT,
        ("first_response", 1): None,
        ("resolution", 0): None,
        ("resolution", 1): AT,
    }


async def test_new_rows_are_inserted_once_when_two_transactions_race(
    services: Services, make_config: Any
) -> None:
    from hub.services import open_services

    s = schema.sla_cycles
    await _conversation(services)
    columns = ("conversation_id", "metric", "seq", "policy", "started_at", "digest", "updated_at")
    rows = [(1, m, 0, "p", AT, "d", AT) for m in ("first_response", "resolution")]
    key = ["conversation_id", "metric", "seq"]
    async with services.db.write() as conn:
        assert await bulk.insert_new(conn, s, rows[:1], columns=columns, keys=key) == [
            (1, "first_response", 0)
        ]
    if services.db.is_sqlite:
        with pytest.raises(Exception, match="UNIQUE"):
            async with services.db.write() as conn:
                await bulk.insert_new(conn, s, rows, columns=columns, keys=key)
        with pytest.raises(ValueError, match="PostgreSQL only"):
            async with services.db.write() as conn:
                await bulk.insert_new(conn, s, rows[1:], columns=columns, keys=key, returning=["seq"])
        return
    other = await open_services(make_config(), clock=services.clock)
    try:

        async def add(svc: Services) -> list[tuple[Any, ...]]:
            async with svc.db.write() as conn:
                return await bulk.insert_new(conn, s, rows, columns=columns, keys=key)

        first, second = await asyncio.gather(add(services), add(other))
    finally:
        await other.close()
    assert sorted(first + second) == [(1, "resolution", 0)]


@pytest.mark.parametrize("store_settings", ["postgresql"], indirect=True)  # COPY is PostgreSQL's
async def test_many_new_rows_go_whole_and_a_batch_with_a_taken_key_skips_only_that_row(
    services: Services,
) -> None:
    s = schema.sla_cycles
    await _conversation(services)
    columns = ("conversation_id", "metric", "seq", "policy", "started_at", "digest", "updated_at")
    key = ["conversation_id", "metric", "seq"]
    batch = [(1, "first_response", n, "p", AT, "d", AT) for n in range(bulk.COPY_ROWS)]
    async with services.db.write() as conn:
        await conn.execute(
            insert(s), [dict(zip(columns, (1, "resolution", 5, "old", AT, "d", AT), strict=True))]
        )
        first = await bulk.insert_new(conn, s, batch, columns=columns, keys=key)
        again = await bulk.insert_new(
            conn, s, [*batch[:1], *((1, "resolution", n, "p", AT, "d", AT) for n in range(bulk.COPY_ROWS))],
            columns=columns, keys=key,
        )  # fmt: skip
        await conn.execute(insert(schema.events), [event(1, AT)])  # the transaction is still usable
    async with services.db.read() as conn:
        stored = {(r.metric, r.seq): r.policy for r in await conn.execute(select(s))}
    assert first == [(1, "first_response", n) for n in range(bulk.COPY_ROWS)]
    assert sorted(again) == [(1, "resolution", n) for n in range(bulk.COPY_ROWS) if n != 5]
    assert stored[("resolution", 5)] == "old"
    assert len(stored) == 2 * bulk.COPY_ROWS


@pytest.mark.parametrize("store_settings", ["postgresql"], indirect=True)  # COPY is PostgreSQL's
async def test_mostly_new_rows_are_upserted_all_the_same_when_one_key_is_taken(services: Services) -> None:
    t = schema.timers
    rows = [
        {"kind": "k", "key": f"key{n}", "due_at": AT, "conversation_id": None, "payload": {"n": n},
         "status": "pending", "attempts": 0, "created_at": AT}
        for n in range(bulk.COPY_ROWS)
    ]  # fmt: skip
    async with services.db.write() as conn:
        await bulk.insert(conn, t, [{**rows[7], "payload": {"n": "old"}}, {**rows[0], "key": "other"}])
        await bulk.insert(conn, t, rows, on_conflict=["key"], update=["payload"], mostly_new=True)
        more = [{**r, "key": f"more{n}"} for n, r in enumerate(rows)]
        await bulk.insert(conn, t, more, on_conflict=["key"], update=["payload"], mostly_new=True)
    async with services.db.read() as conn:
        stored = {r.key: r.payload for r in await conn.execute(select(t.c.key, t.c.payload))}
    assert len(stored) == 2 * bulk.COPY_ROWS + 1
    assert stored["key7"] == {"n": 7}
    assert stored["more3"] == {"n": 3}


@pytest.mark.parametrize("store_settings", ["postgresql"], indirect=True)  # staging is PostgreSQL's
async def test_many_rows_updated_and_upserted_through_a_stage_land_once_each(services: Services) -> None:
    t = schema.timers
    n = bulk.COPY_ROWS
    rows = [
        {"kind": "k", "key": f"key{i}", "due_at": AT, "conversation_id": None, "payload": {"i": i},
         "status": "pending", "attempts": 0, "created_at": AT}
        for i in range(n)
    ]  # fmt: skip
    async with services.db.write() as conn:
        await bulk.insert(conn, t, rows[:10])
        await bulk.insert(conn, t, rows, on_conflict=["key"], update=["payload"])
        ids = {r.key: r.id for r in await conn.execute(select(t.c.id, t.c.key))}
        for attempt in (1, 2):  # the stage is empty again after each statement
            changed = [(ids[f"key{i}"], "fired", AT + timedelta(minutes=attempt)) for i in range(n)]
            await bulk.update(conn, t, ["id"], changed, columns=("id", "status", "due_at"))
    with pytest.raises(IntegrityError):
        async with services.db.write() as conn:
            await bulk.update(conn, t, ["id"], [(i, None) for i in ids.values()], columns=("id", "status"))
    async with services.db.write() as conn:  # after a failed one, the stage is made again
        await bulk.update(conn, t, ["id"], [(i, "cancelled") for i in ids.values()], columns=("id", "status"))
        await bulk.insert(conn, t, [{**r, "payload": {}} for r in rows], on_conflict=["key"])
    for _ in range(3):
        async with services.db.write() as conn:
            await bulk.update(
                conn, t, ["id"], [(i, "cancelled") for i in ids.values()], columns=("id", "status")
            )
    async with services.db.read() as conn:
        stored = [(r.status, r.due_at, r.payload) for r in await conn.execute(select(t).order_by(t.c.id))]
        sizes = await conn.exec_driver_sql(
            "SELECT pg_relation_size(oid) FROM pg_class WHERE relname = $1",
            (bulk._stage_name(t, ("id", "status")),),
        )
        stages = [size for (size,) in sizes]
    assert stages and set(stages) == {0}  # emptied at each commit: nothing vacuums temporary tables
    assert len(stored) == n
    assert stored[3] == ("cancelled", AT + timedelta(minutes=2), {"i": 3})
    assert {(status, due) for status, due, _ in stored} == {("cancelled", AT + timedelta(minutes=2))}


async def test_rows_written_many_to_a_statement_land_once_each_in_order(services: Services) -> None:
    """Enough rows for several statements on SQLite (its parameter limit), updated and upserted."""
    e = schema.events
    n = bulk.SQLITE_MOST_PARAMETERS // 5 + 7
    async with services.db.write() as conn:
        await bulk.insert(conn, e, [event(i, AT + timedelta(seconds=i)) for i in range(n)])
        ids = [r[0] for r in await conn.execute(select(e.c.id).order_by(e.c.id))]
        await bulk.update(conn, e, ["id"], [(i, f"u{i}") for i in ids[::2]], columns=("id", "kind"))
    async with services.db.read() as conn:
        rows = [(r.kind, r.at, r.data) for r in await conn.execute(select(e).order_by(e.c.id))]
    assert len(rows) == n
    assert rows[0] == (f"u{ids[0]}", AT, {"n": 0, "s": "é"})
    assert rows[1] == ("k1", AT + timedelta(seconds=1), {"n": 1, "s": "é"})
    assert rows[-1][1:] == (AT + timedelta(seconds=n - 1), {"n": n - 1, "s": "é"})
    assert sum(kind.startswith("u") for kind, _, _ in rows) == len(ids[::2])


async def test_an_upsert_of_many_rows_updates_the_taken_keys_and_inserts_the_rest(services: Services) -> None:
    t = schema.timers
    rows = [
        {"kind": "k", "key": f"key{i}", "due_at": AT, "conversation_id": None, "payload": {"i": i},
         "status": "pending", "attempts": 0, "created_at": AT}
        for i in range(bulk.SQLITE_MANY_FROM + 10)
    ]  # fmt: skip
    async with services.db.write() as conn:
        await bulk.insert(conn, t, [{**r, "payload": {"old": True}, "status": "fired"} for r in rows[:10]])
        await bulk.insert(conn, t, rows, on_conflict=["key"], update=["payload"])
    async with services.db.read() as conn:
        stored = {r.key: (r.payload, r.status) for r in await conn.execute(select(t))}
    assert len(stored) == len(rows)
    assert stored["key3"] == ({"i": 3}, "fired")
    assert stored["key25"] == ({"i": 25}, "pending")


async def _conversation(services: Services) -> None:
    async with services.db.write() as conn:
        await conn.execute(
            insert(schema.contacts), {"id": 1, "name": "C", "language": "en", "created_at": AT}
        )
        await conn.execute(
            insert(schema.conversations),
            {"id": 1, "contact_id": 1, "channel": "email", "channel_account": "a", "subject": "s",
             "status": "open", "priority": 1, "created_at": AT, "updated_at": AT},
        )  # fmt: skip


async def test_remembered_instants_are_stored_in_utc_whatever_zone_repeats_them(services: Services) -> None:
    async with services.db.write() as conn:
        await bulk.insert(conn, schema.events, [event(1, AT), event(2, AT + timedelta(microseconds=1))])
        await bulk.insert(
            conn, schema.events, [event(3, AT.astimezone(BEIJING)), event(4, AT.replace(microsecond=0))]
        )
        with pytest.raises(ValueError, match="naive"):
            await bulk.insert(conn, schema.events, [event(5, AT.replace(tzinfo=None))])
    e = schema.events
    async with services.db.read() as conn:
        rows = (await conn.execute(select(e.c.kind, e.c.at).order_by(e.c.id))).all()
        raw = await bulk.fetch(conn, AT_QUERY)
    assert [tuple(r) for r in rows] == [
        ("k1", AT),
        ("k2", AT + timedelta(microseconds=1)),
        ("k3", AT),
        ("k4", AT.replace(microsecond=0)),
    ]
    assert raw[0][0] == raw[2][0]


def test_json_columns_are_encoded_as_json_dumps_would() -> None:
    values = [{"a": [1, 2.5, None, True], "b": 'é"\n'}, None, "text", 3, [], {"n": {"m": [{"k": 1}]}}]
    assert bulk._json_texts(values) == [json.dumps(v) for v in values]
    with pytest.raises(TypeError):
        bulk._json_texts([{"at": AT}])
