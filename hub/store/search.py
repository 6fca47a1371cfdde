"""Full-text search over messages: FTS5 on SQLite, tsvector on PostgreSQL, one tokeniser for both.

Chinese has no spaces between words, so CJK runs are indexed as overlapping character
bigrams; other scripts as lower-cased words. Queries are tokenised the same way, which
makes `退款` find `申请退款` on both databases.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.store import bulk

MAX_TERM = 100
MAX_TERMS_CHARS = 200_000

_WORD = re.compile(r"[^\W_]+")
_CJK = re.compile(r"([\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]+)")


def _cjk_groups(word: str) -> list[list[str]]:
    groups: list[list[str]] = []
    for index, piece in enumerate(_CJK.split(word)):
        if index % 2 == 0:
            if piece:
                groups.append([piece])
        elif len(piece) == 1:
            groups.append([piece])
        else:
            groups.append([piece[i : i + 2] for i in range(len(piece) - 1)])
    return groups


def _tokens(value: str) -> list[list[str]]:
    """Groups of tokens: a word alone, or the bigrams of one CJK run (which form a phrase)."""
    groups: list[list[str]] = []
    for word in _WORD.findall(unicodedata.normalize("NFKC", value).lower()):
        if word.isascii():
            groups.append([word])
        else:
            groups.extend(_cjk_groups(word))
    return groups


def index_terms(*parts: str | None) -> str:
    """The space-separated terms stored for a message (words too long to be words are left out)."""
    out: list[str] = []
    budget = MAX_TERMS_CHARS
    for part in parts:
        if not part or budget <= 0:
            continue
        part = part[:budget]
        budget -= len(part)
        if part.isascii():
            out.extend([w for w in _WORD.findall(part.lower()) if len(w) <= MAX_TERM])
            continue
        if not unicodedata.is_normalized("NFKC", part):
            part = unicodedata.normalize("NFKC", part)
        for word in _WORD.findall(part.lower()):
            if len(word) > MAX_TERM:
                continue
            if word.isascii():
                out.append(word)
            else:
                for group in _cjk_groups(word):
                    out.extend(group)
    return " ".join(out)


def fts_ddl(dialect: str) -> list[str]:
    """Statements that create the search index for a dialect."""
    if dialect == "sqlite":
        return ["CREATE VIRTUAL TABLE message_fts USING fts5(terms, tokenize='unicode61')"]
    return [
        "CREATE TABLE message_fts (message_id BIGINT PRIMARY KEY REFERENCES messages(id), "
        "terms TSVECTOR NOT NULL)",
        "CREATE INDEX ix_message_fts_terms ON message_fts USING GIN (terms)",
    ]


def tsvector(terms: str) -> str:
    """PostgreSQL's text form of a tsvector of our (quote-free) terms."""
    return "'" + "' '".join(dict.fromkeys(terms.split())) + "'" if terms else ""


async def index_messages(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Index messages given as `{"id": message id, "terms": index_terms(...)}`."""
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        sql = "INSERT INTO message_fts(rowid, terms) VALUES (?, ?)"
        await bulk.execute_many(conn, sql, [(r["id"], r["terms"]) for r in rows])
        return
    await conn.execute(_INDEX_PG, _arrays(rows))


async def reindex_messages(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Replace the terms of indexed messages, given like `index_messages`."""
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        await conn.execute(text("UPDATE message_fts SET terms = :terms WHERE rowid = :id"), rows)
        return
    await conn.execute(_REINDEX_PG, _arrays(rows))


_INDEX_PG = text(
    "INSERT INTO message_fts(message_id, terms) SELECT r.id, CAST(r.terms AS tsvector) "
    "FROM unnest(CAST(:ids AS BIGINT[]), CAST(:terms AS TEXT[])) AS r(id, terms)"
)
_REINDEX_PG = text(
    "UPDATE message_fts SET terms = CAST(r.terms AS tsvector) "
    "FROM unnest(CAST(:ids AS BIGINT[]), CAST(:terms AS TEXT[])) AS r(id, terms) "
    "WHERE message_fts.message_id = r.id"
)


def _arrays(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The rows as the two arrays of one PostgreSQL statement (the last terms of an id win)."""
    terms = {r["id"]: tsvector(r["terms"]) for r in rows}
    return {"ids": list(terms), "terms": list(terms.values())}


def match_sql(dialect: str, query: str) -> tuple[str, dict[str, str]] | None:
    """A SQL fragment selecting matching message ids, or None when the query has no terms."""
    groups = _tokens(query)
    if not groups:
        return None
    if dialect == "sqlite":
        parts = ['"' + " ".join(g) + '"' for g in groups]
        if len(groups[-1]) == 1 and groups[-1][0].isascii():
            parts[-1] += "*"
        return "SELECT rowid FROM message_fts WHERE message_fts MATCH :fts_q", {"fts_q": " AND ".join(parts)}
    pg_parts = [" & ".join(f"'{t}'" for t in g) for g in groups]
    if len(groups[-1]) == 1 and groups[-1][0].isascii():
        pg_parts[-1] += ":*"
    tsquery = " & ".join(f"({p})" for p in pg_parts)
    return (
        "SELECT message_id FROM message_fts WHERE terms @@ to_tsquery('simple', :fts_q)",
        {"fts_q": tsquery},
    )
