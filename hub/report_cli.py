"""`omnihub report sla`: the SLA report from the store, as a table, CSV or JSON."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime, time, timedelta

from hub.config import Config
from hub.errors import ConfigError
from hub.sla import report
from hub.sla.report_format import FORMATS, render
from hub.store import Database


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Register `report sla`; its handler is set by the caller."""
    kinds = commands.add_parser("report", help="reports").add_subparsers(dest="report", metavar="REPORT")
    sla = kinds.add_parser("sla", help="SLA compliance, response times, calls, promises and breaches")
    sla.add_argument(
        "--from", dest="start", type=instant, help="start (date or ISO time; default: 30 days ago)"
    )
    sla.add_argument("--to", dest="end", type=instant, help="end, exclusive (date or ISO time; default: now)")
    sla.add_argument("--team", help="only this team's conversations and calls")
    sla.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    return sla


def instant(text: str) -> datetime:
    """A date (midnight UTC) or an ISO 8601 time (UTC when it has no offset)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date or ISO time: {text!r}") from None
    if len(text) <= 10:
        value = datetime.combine(value.date(), time(), UTC)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def run(config: Config, args: argparse.Namespace) -> int:
    """Print the report; exit 0."""
    end: datetime = args.end or datetime.now(UTC)
    start: datetime = args.start or end - timedelta(days=30)
    if start >= end:
        raise ConfigError("--from must be before --to")

    async def work() -> str:
        db = Database(config.store_url, schema=config.store.schema_name)
        try:
            async with db.read() as conn:
                return render(await report.build(conn, start, end, args.team), args.format)
        finally:
            await db.dispose()

    sys.stdout.write(asyncio.run(work()))
    return 0
