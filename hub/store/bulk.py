"""Reading and writing tens of thousands of rows per statement, on SQLite and PostgreSQL.

SQLAlchemy Core compiles every statement and type-processes every parameter of every row;
for large batches that costs more than the database does. Statements here are still built
with Core, but compiled once per kind of database and then sent to the driver with the raw
values the column types would store (a UTC timestamp as SQLite's text or an aware datetime,
JSON as text), so rows written here read back through the schema exactly like rows written
through it. On SQLite inserts go out as one statement per batch of rows, updates as one
`executemany`; on PostgreSQL as one statement over `unnest` arrays, or for many rows by COPY
(into the table, or into a temporary stage the statement reads). A list of ids travels as one
parameter (`json_each` on SQLite, `unnest` on PostgreSQL). Everything runs in the caller's
transaction.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sqlite3
import zlib
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from json import encoder as json_encoder
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Executable,
    Table,
    bindparam,
    cast,
    delete,
    func,
    select,
    tuple_,
)
from sqlalchemy import column as sql_column
from sqlalchemy import table as sql_table
from sqlalchemy import update as sql_update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.store.schema import UTCDateTime

Encoder = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Compiled:
    """A statement's SQL in the driver's parameter style, and its parameters in order."""

    sql: str
    names: tuple[str, ...]
    defaults: Mapping[str, Any]

    def params(self, given: Mapping[str, Any]) -> tuple[Any, ...]:
        """The positional parameters: given values, else the values built into the statement."""
        return tuple(given[n] if n in given else self.defaults[n] for n in self.names)


_COMPILED: dict[tuple[Any, ...], Compiled] = {}


def _compiled(conn: AsyncConnection, key: tuple[Any, ...], build: Callable[[bool], Any]) -> Compiled:
    """`build(on_postgresql)` compiled for the connection's kind of database, once per key."""
    full = (conn.dialect.name, *key)
    found = _COMPILED.get(full)
    if found is None:
        found = _COMPILED[full] = _compile(conn.dialect, build(is_pg(conn)))
    return found


def _compile(dialect: Dialect, stmt: Any) -> Compiled:
    compiled = stmt.compile(dialect=dialect)
    return Compiled(compiled.string, tuple(compiled.positiontup or ()), dict(compiled.params))


def statement(build: Callable[[bool], Executable]) -> Callable[[AsyncConnection], Compiled]:
    """Compile `build(on_postgresql)` once per kind of database."""

    def compiled(conn: AsyncConnection) -> Compiled:
        return _compiled(conn, (build,), build)

    return compiled


def is_pg(conn: AsyncConnection) -> bool:
    """Whether the connection is to PostgreSQL."""
    return conn.dialect.name == "postgresql"


def in_list(pg: bool, column: ColumnElement[Any], name: str = "ids") -> ColumnElement[bool]:
    """`column` is one of the values passed as the one parameter `name` (made by `listed`).

    On PostgreSQL the values are a joined `unnest` of one array, not `= ANY(array)`: once a
    prepared statement switches to its generic plan, a sequential scan would test every row
    against the whole array one element at a time (10,000 ids against a small table: 4 ms
    became 170 ms from the sixth run on).
    """
    if pg:
        return column.in_(select(func.unnest(cast(bindparam(name), ARRAY(column.type)))))
    return column.in_(select(func.json_each(bindparam(name)).table_valued("value").c.value))


def zipped(**columns: ColumnElement[Any]) -> Any:
    """PostgreSQL rows made of the parameters named as `columns`, arrays of the columns' types in
    step (`unnest` of several arrays): a set of keys to look up one at a time by correlated subqueries,
    which stale statistics cannot turn into scans of the table as they can an `IN` or a join."""
    return _arrays(columns, columns.values(), columns)


def _arrays(params: Iterable[str], columns: Iterable[ColumnElement[Any]], names: Iterable[str]) -> Any:
    """Rows named `names` from parameters that are arrays of the columns' types, in step."""
    arrays = (cast(bindparam(p), ARRAY(c.type)) for p, c in zip(params, columns, strict=True))
    return func.unnest(*arrays).table_valued(*names).render_derived()


def listed(conn: AsyncConnection, values: Sequence[Any]) -> Any:
    """The parameter value for an `in_list` condition."""
    return list(values) if is_pg(conn) else json.dumps(list(values))


async def fetch(
    conn: AsyncConnection, query: Callable[[AsyncConnection], Compiled], **params: Any
) -> Sequence[Any]:
    """Every row of a compiled query, as tuples of raw driver values (see the readers below).

    Both databases are asked through their driver directly, within the caller's transaction
    (on PostgreSQL a `read()` connection has none before its first SQLAlchemy statement: each
    query then sees its own snapshot, as under READ COMMITTED anyway). SQLAlchemy's result rows
    cost more than the query on large batches.
    """
    compiled = query(conn)
    if is_pg(conn):
        async with _asyncpg(conn, compiled.sql) as driver:
            return await driver.fetch(compiled.sql, *compiled.params(params))  # type: ignore[no-any-return]
    driver = await _sqlite_driver(conn)
    if driver is not None:
        with _sqlite_errors(compiled.sql):
            return list(await driver.execute_fetchall(compiled.sql, compiled.params(params)))
    return (await conn.exec_driver_sql(compiled.sql, compiled.params(params))).all()


async def execute(conn: AsyncConnection, query: Callable[[AsyncConnection], Compiled], **params: Any) -> None:
    """Run a compiled statement that returns no rows."""
    compiled = query(conn)
    driver = await _sqlite_driver(conn)
    if driver is not None:
        with _sqlite_errors(compiled.sql):
            await driver.execute(compiled.sql, compiled.params(params))
        return
    await conn.exec_driver_sql(compiled.sql, compiled.params(params))


async def execute_many(conn: AsyncConnection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """Run SQL written in the driver's parameter style once per row of raw values."""
    driver = await _sqlite_driver(conn)
    if driver is not None:
        with _sqlite_errors(sql):
            await driver.executemany(sql, rows)
        return
    await conn.exec_driver_sql(sql, list(rows))


async def _sqlite_driver(conn: AsyncConnection) -> Any | None:
    """The aiosqlite connection under `conn` if it is SQLite's and in a transaction: one trip to
    its thread per statement, where SQLAlchemy's adapter makes three or four (cursor, execute,
    fetch, close)."""
    if is_pg(conn) or not conn.in_transaction():
        return None
    return (await conn.get_raw_connection()).driver_connection


@contextlib.contextmanager
def _sqlite_errors(sql: str) -> Iterator[None]:
    """SQLite's errors as SQLAlchemy's (IntegrityError, OperationalError...), for callers' handlers."""
    try:
        yield
    except sqlite3.Error as err:
        raise DBAPIError.instance(sql, None, err, sqlite3.Error) from err


def stamp_reader(conn: AsyncConnection) -> Callable[[Any], datetime | None]:
    """Turns a raw timestamp value from this database into an aware UTC datetime."""
    return _read_pg_stamp if is_pg(conn) else _read_sqlite_stamp


def _read_sqlite_stamp(value: str | None) -> datetime | None:
    """SQLite's UTC text as an aware datetime, parsed with its offset (a sixth of the time of
    parsing it naive and replacing the zone)."""
    return None if value is None else datetime.fromisoformat(value + "+00:00")


def _read_pg_stamp(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def json_reader(conn: AsyncConnection) -> Callable[[Any], Any]:
    """Turns a raw JSON column value from this database into Python values."""
    return _same if is_pg(conn) else _read_json


def _same(value: Any) -> Any:
    return value


def _read_json(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def stamp_writer(conn: AsyncConnection) -> Encoder:
    """Turns an aware datetime into the raw value the schema stores in this database."""
    return _write_pg_stamp if is_pg(conn) else _remembered_sqlite_stamp


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the store")
    return value.astimezone(UTC)


def _write_sqlite_stamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = _aware(value)
    return value.isoformat(" ", "microseconds")[:26]


def _write_pg_stamp(value: datetime | None) -> datetime | None:
    return None if value is None else _aware(value)


ColumnEncoder = Callable[[Sequence[Any]], list[Any]]


def _sqlite_stamps(values: Sequence[datetime | None]) -> list[str | None]:
    """`_write_sqlite_stamp` over a column, each instant formatted once while it is remembered."""
    memo = _STAMP_TEXTS
    if len(memo) > STAMP_TEXTS_KEPT:
        memo.clear()
    out: list[str | None] = []
    for value in values:
        if value is None:
            out.append(None)
        elif (text := memo.get(value)) is not None:
            out.append(text)
        else:
            out.append(memo.setdefault(value, _write_sqlite_stamp(value)))
    return out


def _remembered_sqlite_stamp(value: datetime | None) -> str | None:
    return _sqlite_stamps((value,))[0]


_STAMP_TEXTS: dict[datetime, str | None] = {}
STAMP_TEXTS_KEPT = 50_000
"""Instants whose SQLite text is remembered: a batch's rows share many (now, due times, event times)."""


def _pg_stamps(values: Sequence[datetime | None]) -> list[datetime | None]:
    return [v if v is None or v.tzinfo is UTC else _aware(v) for v in values]


def _json_texts(values: Sequence[Any]) -> list[str]:
    """`json.dumps` over a column, through one C encoder instead of a new one per value."""
    if _c_encoder is None:
        return [json.dumps(v) for v in values]
    join = "".join
    return [join(_c_encoder(v, 0)) for v in values]


def _unserialisable(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_make_encoder: Any = getattr(json_encoder, "c_make_encoder", None)
_c_encoder = (
    None
    if _make_encoder is None
    else _make_encoder(
        None, _unserialisable, json_encoder.encode_basestring_ascii, None, ": ", ", ", False, False, True
    )
)
"""What `json.dumps` runs with its default settings, built once (None where the C module is missing)."""


async def insert(
    conn: AsyncConnection,
    table: Table,
    rows: Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]],
    *,
    columns: Sequence[str] | None = None,
    on_conflict: Sequence[str] | None = None,
    update: Sequence[str] = (),
    mostly_new: bool = False,
) -> None:
    """Insert rows: dicts with the same keys, or tuples of `columns`. On a conflict over the
    `on_conflict` columns ([] for any unique constraint) update the `update` columns, or skip
    the row when there are none. With `mostly_new`, many rows on PostgreSQL go by COPY, and
    only if a key turns out taken by the conflict-handling insert."""
    if not rows:
        return
    names, values = _columns(rows, columns)
    if len(rows) >= COPY_ROWS and is_pg(conn):
        if on_conflict is None:
            await _copy(conn, table, names, values)
            return
        if mostly_new and await _copied_whole(conn, table, names, values):
            return
    conflict = None if on_conflict is None else (tuple(on_conflict), tuple(update))
    if conflict is not None and len(rows) >= COPY_ROWS and is_pg(conn):
        staged = _compiled(
            conn,
            ("staged_insert", table, names, conflict),
            lambda pg: _insert(pg, table, names, conflict, _emptied_stage(table, names)),
        )
        await _staged(conn, table, names, values, staged)
        return
    compiled = _compiled(
        conn, ("insert", table, names, conflict), lambda pg: _insert(pg, table, names, conflict)
    )
    await _send(conn, table, compiled, names, values)


COPY_ROWS = 100
"""From this many rows, plain inserts on PostgreSQL go by COPY, which costs both sides less per row."""


async def _copy(
    conn: AsyncConnection,
    table: Table,
    columns: tuple[str, ...],
    values: list[Sequence[Any]],
    into: str | None = None,
) -> None:
    """Insert rows by COPY (into `table`, or a table `into` of its columns) in the caller's
    transaction, begun first if no statement has begun it."""
    encoded = _encoded(conn, table, columns, values)
    records = zip(*(encoded[f"p_{c}"] for c in columns), strict=True)
    name = into or table.name
    async with _asyncpg(conn, f"COPY {name}") as driver:
        await driver.copy_records_to_table(name, columns=list(columns), records=records)


@contextlib.asynccontextmanager
async def _asyncpg(conn: AsyncConnection, statement: str) -> AsyncIterator[Any]:
    """The asyncpg connection under `conn`, inside the caller's transaction (begun first if
    SQLAlchemy holds one that no statement has begun yet); its errors raised as SQLAlchemy's."""
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    if conn.in_transaction() and not driver.is_in_transaction():
        await conn.exec_driver_sql("SELECT 1")
    try:
        yield driver
    except Exception as err:
        _raise_as_sqlalchemy(conn, raw, statement, err)
        raise


async def _staged(
    conn: AsyncConnection,
    table: Table,
    columns: tuple[str, ...],
    values: list[Sequence[Any]],
    statement: Compiled,
) -> None:
    """Run a statement over many rows on PostgreSQL: COPY them into a temporary table of their
    columns, which the statement empties as it reads it (`_emptied_stage`).

    COPY encodes a row in half the time asyncpg takes to encode it across one array per column.
    The temporary table lives as long as the connection; it is empty between statements, and
    truncated at each commit (nothing vacuums temporary tables: deleted rows would keep their
    space, and the table would grow by every batch and be scanned whole by every statement).
    PostgreSQL's role needs the TEMPORARY privilege on the database (the default).
    """
    await conn.exec_driver_sql(_stage_ddl(conn.dialect, table, columns))
    await _copy(conn, table, columns, values, into=_stage_name(table, columns))
    await conn.exec_driver_sql(statement.sql)


def _stage_name(table: Table, columns: tuple[str, ...]) -> str:
    return f"stage_{table.name}_{zlib.crc32(','.join(columns).encode()):08x}"


@functools.lru_cache(maxsize=256)
def _stage_ddl(dialect: Dialect, table: Table, columns: tuple[str, ...]) -> str:
    """Create the stage of these columns unless this connection has it: same names and types, no rows."""
    quote = dialect.identifier_preparer.quote
    listed = ", ".join(quote(c) for c in columns)
    stage = quote(_stage_name(table, columns))
    return (
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS "  # noqa: S608 (quoted names only)
        f"SELECT {listed} FROM {quote(table.name)} WITH NO DATA"
    )


def _emptied_stage(table: Table, columns: tuple[str, ...]) -> Any:
    """The stage's rows, deleted as they are read (a common table expression `s`)."""
    stage = sql_table(_stage_name(table, columns), *(sql_column(c) for c in columns))
    return delete(stage).returning(*stage.c).cte("s")


def _staged_update(table: Table, columns: tuple[str, ...], keys: tuple[str, ...]) -> Any:
    rows = _emptied_stage(table, columns)
    return (
        sql_update(table)
        .where(*(table.c[k] == rows.c[k] for k in keys))
        .values({c: rows.c[c] for c in columns if c not in keys})
    )


def _raise_as_sqlalchemy(conn: AsyncConnection, raw: Any, statement: str, err: Exception) -> None:
    """Raise asyncpg's error as SQLAlchemy's (IntegrityError, OperationalError...) with its SQLSTATE,
    as a statement sent through SQLAlchemy would, for callers' handlers (ingest's race, conflict retries)."""
    dbapi_error = conn.dialect.loaded_dbapi.Error
    try:
        raw.dbapi_connection._handle_exception(err)
    except dbapi_error as adapted:
        raise DBAPIError.instance(statement, None, adapted, dbapi_error) from err


async def insert_new(
    conn: AsyncConnection,
    table: Table,
    rows: Sequence[Sequence[Any]],
    *,
    columns: Sequence[str],
    keys: Sequence[str],
    returning: Sequence[str] = (),
) -> list[tuple[Any, ...]]:
    """Insert rows (tuples of `columns`) whose `keys` are not taken yet; return the keys of those inserted
    (on PostgreSQL, the `returning` columns instead when given; SQLite refuses `returning`).

    On PostgreSQL a row whose key another transaction took first is skipped. On SQLite the
    caller's write transaction holds the database's one write lock, so no other writer can
    take a key it found free: a taken key is an error there.
    """
    if returning and not is_pg(conn):
        raise ValueError("insert_new returns other columns than its keys on PostgreSQL only")
    if not rows:
        return []
    names = tuple(columns)
    values: list[Sequence[Any]] = list(zip(*rows, strict=True))
    key = tuple(keys)
    back = tuple(returning) or key
    compiled = _compiled(
        conn, ("insert_new", table, names, key, back), lambda pg: _insert_new(pg, table, names, key, back)
    )
    if is_pg(conn):
        if not returning and len(rows) >= COPY_ROWS and await _copied_whole(conn, table, names, values):
            return _keys_of(rows, names, key)
        encoded = _encoded(conn, table, names, values)
        found = await conn.exec_driver_sql(compiled.sql, compiled.params(encoded))
        return [tuple(r) for r in found]
    await _send(conn, table, compiled, names, values)
    return _keys_of(rows, names, key)


def _keys_of(
    rows: Sequence[Sequence[Any]], names: tuple[str, ...], key: tuple[str, ...]
) -> list[tuple[Any, ...]]:
    if names[: len(key)] == key:
        n = len(key)
        return [r[:n] if type(r) is tuple else tuple(r[:n]) for r in rows]
    at = [names.index(k) for k in key]
    return [tuple(r[i] for i in at) for r in rows]


async def _copied_whole(
    conn: AsyncConnection, table: Table, columns: tuple[str, ...], values: list[Sequence[Any]]
) -> bool:
    """COPY the rows if none of their keys is taken (True), else change nothing (False).

    The rows are usually all new (their keys were looked up first), so COPY, cheaper on both
    sides than a conflict-checking insert, mostly succeeds; when another transaction took a
    key in between it fails as a whole and is rolled back to a savepoint.
    """
    try:
        async with conn.begin_nested():
            await _copy(conn, table, columns, values)
    except IntegrityError:
        return False
    return True


async def update(
    conn: AsyncConnection,
    table: Table,
    keys: Sequence[str],
    rows: Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]],
    *,
    columns: Sequence[str] | None = None,
) -> None:
    """Set every other column of each row (dicts, or tuples of `columns`) where the `keys` columns match."""
    if not rows:
        return
    names, values = _columns(rows, columns)
    key = tuple(keys)
    if len(rows) >= COPY_ROWS and is_pg(conn):
        staged = _compiled(
            conn, ("staged_update", table, names, key), lambda _pg: _staged_update(table, names, key)
        )
        await _staged(conn, table, names, values, staged)
        return
    compiled = _compiled(conn, ("update", table, names, key), lambda pg: _update(pg, table, names, key))
    await _send(conn, table, compiled, names, values)


def _columns(
    rows: Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]], columns: Sequence[str] | None
) -> tuple[tuple[str, ...], list[Sequence[Any]]]:
    if columns is None:
        dicts: Sequence[Mapping[str, Any]] = rows  # type: ignore[assignment]
        names = tuple(dicts[0])
        return names, [[r[c] for r in dicts] for c in names]
    return tuple(columns), list(zip(*rows, strict=True))


async def set_where_null(
    conn: AsyncConnection,
    table: Table,
    column: str,
    value: Any,
    keys: Sequence[str],
    wanted: Sequence[tuple[Any, ...]],
) -> list[tuple[Any, ...]]:
    """Set `column` to `value` on the rows with these key values where it is NULL; return their keys.

    One statement, so of two transactions racing on a row only one sees it flip.
    """
    if not wanted:
        return []
    key = tuple(keys)
    compiled = _compiled(conn, ("flip", table, column, key), lambda pg: _flip(pg, table, column, key))
    encode = _encoders(conn.dialect.name, table, (column,))[0]
    given: dict[str, Any] = {"value": value if encode is None else encode([value])[0]}
    if is_pg(conn):
        given.update({f"p_{k}": list(c) for k, c in zip(keys, zip(*wanted, strict=True), strict=True)})
    else:
        given["keys"] = json.dumps(wanted)
    rows = await conn.exec_driver_sql(compiled.sql, compiled.params(given))
    return [tuple(r) for r in rows]


async def _send(
    conn: AsyncConnection,
    table: Table,
    compiled: Compiled,
    columns: tuple[str, ...],
    values: list[Sequence[Any]],
) -> None:
    encoded = _encoded(conn, table, columns, values)
    if is_pg(conn):
        await conn.exec_driver_sql(compiled.sql, compiled.params(encoded))
        return
    rows = list(zip(*(encoded[n] for n in compiled.names), strict=True))
    driver = await _sqlite_driver(conn)
    if driver is None:
        await conn.exec_driver_sql(compiled.sql, rows)
        return
    if len(rows) < SQLITE_MANY_FROM or _sqlite_rows(compiled.sql, 1) is None:
        with _sqlite_errors(compiled.sql):
            await driver.executemany(compiled.sql, rows)
        return
    per = max(1, SQLITE_MOST_PARAMETERS // len(compiled.names))
    for at in range(0, len(rows), per):
        part = rows[at : at + per]
        sql = _sqlite_rows(compiled.sql, len(part))
        assert sql is not None
        with _sqlite_errors(sql):
            await driver.execute(sql, [value for row in part for value in row])


SQLITE_MANY_FROM = 20
"""From this many rows, SQLite gets one statement per batch of rows (see `_sqlite_rows`)."""
SQLITE_MOST_PARAMETERS = 32_766
"""SQLite's limit on one statement's parameters (SQLITE_MAX_VARIABLE_NUMBER since 3.32)."""


@functools.lru_cache(maxsize=256)
def _sqlite_rows(sql: str, n: int) -> str | None:
    """A one-row INSERT (`... VALUES (?, ...) ...`) as this module compiles it, for n rows at once
    (None for other statements).

    `executemany` steps SQLite once per row, giving up Python's lock for each step; when the
    event loop is busy meanwhile, taking it back costs up to the 5 ms switch interval per row
    (75,000 rows: 0.37 s alone, 94 s beside a busy loop). One statement for many rows takes
    the lock back once. Updates stay one statement per row: SQLite's `UPDATE ... FROM (VALUES
    ...)` took 11% longer than that in an SLA recomputation.
    """
    head, found, tail = sql.partition(" VALUES (")
    if not (found and head.startswith("INSERT INTO ") and ")" in tail):
        return None
    end = tail.index(")") + 1
    group, rest = "(" + tail[:end], tail[end:]
    return None if "?" in rest else f"{head} VALUES {', '.join([group] * n)}{rest}"


def _encoded(
    conn: AsyncConnection, table: Table, columns: tuple[str, ...], values: list[Sequence[Any]]
) -> dict[str, list[Any]]:
    return {
        f"p_{c}": list(v) if enc is None else enc(v)
        for c, v, enc in zip(columns, values, _encoders(conn.dialect.name, table, columns), strict=True)
    }


def _names(columns: Sequence[str]) -> list[str]:
    return [f"p_{c}" for c in columns]


@functools.cache
def _encoders(dialect: str, table: Table, columns: tuple[str, ...]) -> tuple[ColumnEncoder | None, ...]:
    out: list[ColumnEncoder | None] = []
    for name in columns:
        kind = table.c[name].type
        if isinstance(kind, UTCDateTime):
            out.append(_pg_stamps if dialect == "postgresql" else _sqlite_stamps)
        elif isinstance(kind, JSON):
            out.append(_json_texts)
        else:
            out.append(None)
    return tuple(out)


def _among(table: Table, column: str) -> ColumnElement[bool]:
    """`column` is in its own parameter array: lets PostgreSQL find the rows by index before joining."""
    return table.c[column] == func.any(cast(bindparam(f"p_{column}"), ARRAY(table.c[column].type)))


def _unnest(table: Table, columns: Sequence[str]) -> Any:
    return _arrays(_names(columns), (table.c[c] for c in columns), columns)


def _insert(
    pg: bool,
    table: Table,
    columns: tuple[str, ...],
    conflict: tuple[tuple[str, ...], tuple[str, ...]] | None,
    rows: Any = None,
) -> Any:
    """INSERT of the columns from `rows` (PostgreSQL; by default the parameter arrays) or from one
    row of parameters (SQLite), with what to do on a conflict."""
    stmt: Any
    if pg:
        rows = _unnest(table, columns) if rows is None else rows
        stmt = postgresql.insert(table).from_select(columns, select(*(rows.c[c] for c in columns)))
    else:
        stmt = sqlite.insert(table).values(
            {c: bindparam(n) for c, n in zip(columns, _names(columns), strict=True)}
        )
    if conflict is None:
        return stmt
    keys, changed = conflict
    if changed:
        return stmt.on_conflict_do_update(
            index_elements=list(keys), set_={c: stmt.excluded[c] for c in changed}
        )
    return stmt.on_conflict_do_nothing(index_elements=list(keys) or None)


def _insert_new(
    pg: bool, table: Table, columns: tuple[str, ...], keys: tuple[str, ...], back: tuple[str, ...]
) -> Any:
    if not pg:
        return _insert(pg, table, columns, None)
    stmt = _insert(pg, table, columns, (keys, ()))
    return stmt.returning(*(table.c[k] for k in back))


def _update(pg: bool, table: Table, columns: tuple[str, ...], keys: tuple[str, ...]) -> Any:
    changed = [c for c in columns if c not in keys]
    if pg:
        rows = _unnest(table, columns)
        match = [_among(table, keys[0]), *(table.c[k] == rows.c[k] for k in keys)]
        values = {c: rows.c[c] for c in changed}
    else:
        match = [table.c[k] == bindparam(f"p_{k}") for k in keys]
        values = {c: bindparam(f"p_{c}") for c in changed}
    return sql_update(table).where(*match).values(values)


def _flip(pg: bool, table: Table, column: str, keys: tuple[str, ...]) -> Any:
    key_columns = [table.c[k] for k in keys]
    if pg:
        rows = _unnest(table, keys)
        match = [_among(table, keys[0]), *(table.c[k] == rows.c[k] for k in keys)]
    else:
        pairs = func.json_each(bindparam("keys")).table_valued("value")
        picked = select(*(func.json_extract(pairs.c.value, f"$[{n}]") for n in range(len(keys))))
        match = [tuple_(*key_columns).in_(picked)]
    return (
        sql_update(table)
        .where(*match, table.c[column].is_(None))
        .values({column: bindparam("value")})
        .returning(*key_columns)
    )
