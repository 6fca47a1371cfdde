"""Messages per second pulling one IMAP mailbox: the hub (SQLite, PostgreSQL) vs mbsync vs offlineimap3.

The benchmark starts a dovecot on a free port (as the tests do), fills a mailbox with N
realistic mails (plain and HTML, English and Chinese, replies, a few with PDF or image
attachments, sizes from 1 KB to about 200 KB), then in the same run pulls the whole mailbox:

- with the hub's IMAP sync (`MailboxSync.run_once`: sizes, bodies, full MIME parse, storing
  messages, blobs and cursor), on SQLite and on PostgreSQL;
- with mbsync (Debian `isync`) into a Maildir;
- with offlineimap3 into a Maildir;

and prints messages per second for each and the ratio to mbsync.

Usage: python bench/imap_pull.py [--messages 10000] [--pg postgresql://postgres@127.0.0.1/test]
Needs dovecot (dovecot-imapd), mbsync (isync) and offlineimap (offlineimap3) installed.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from channels.email import pool  # noqa: E402
from channels.email.channel import parse_for, triage_for  # noqa: E402
from channels.email.completer import Completer  # noqa: E402
from channels.email.imap.client import ImapServer, ImapSession  # noqa: E402
from channels.email.imap.sync import MailboxSettings, MailboxSync  # noqa: E402
from channels.email.parse import MailRules, ParseLimits  # noqa: E402
from hub import config as hub_config  # noqa: E402
from hub.runtime import freeze_objects  # noqa: E402
from hub.services import open_services  # noqa: E402
from hub.store import schema  # noqa: E402
from tests.dovecot import PASSWORD, Dovecot  # noqa: E402

USER = "bench"
EN = [
    "My order has not arrived yet and the tracking page shows no update since Monday.",
    "Could you send me the invoice for last month again? The PDF was empty.",
    "I was charged twice for the same subscription, please refund one payment.",
    "The replacement part fits, thank you for the quick help!",
    "Can I change the delivery address for order 44871 to my office?",
]
ZH = [
    "您好，我的快递已经一周没有更新了，请帮我查一下。",
    "上个月的发票还没有收到，麻烦再发一次。",
    "同一笔订单被扣了两次款，请尽快退款。",
    "谢谢你们的帮助，问题已经解决了。",
]


def realistic(count: int, seed: int = 11) -> list[bytes]:
    """A mix: 60% plain, 30% HTML with a text part, 10% with an attachment; a third are replies."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    ids: list[str] = []
    out: list[bytes] = []
    for i in range(count):
        msg = EmailMessage()
        zh = rng.random() < 0.3
        sender = f"customer{rng.randrange(3000)}@{'example.cn' if zh else 'example.com'}"
        msg["From"] = f"{'王芳' if zh else 'Priya Patel'} <{sender}>"
        msg["To"] = "support@shop.example"
        own = f"<{uuid.UUID(int=rng.getrandbits(128))}@mail.example.com>"
        msg["Message-ID"] = own
        msg["Date"] = format_datetime(start + timedelta(minutes=i))
        order = rng.randrange(10**5)
        if ids and rng.random() < 0.33:
            parent = rng.choice(ids)
            msg["Subject"] = f"Re: Order {order}"
            msg["In-Reply-To"] = parent
            msg["References"] = parent
        else:
            msg["Subject"] = f"订单 {order} 的问题" if zh else f"Order {order}"
        ids.append(own)
        paragraphs = [rng.choice(ZH if zh else EN) for _ in range(rng.randint(3, 40))]
        text = "\n\n".join(paragraphs) + "\n"
        msg.set_content(text)
        roll = rng.random()
        if roll < 0.3:
            html = "".join(f"<p>{p}</p>" for p in paragraphs)
            msg.add_alternative(
                f"<html><body>{html}<p><img src='https://t.example/p.gif'></p></body></html>", "html"
            )
        elif roll < 0.4:
            size = rng.choice([8_000, 30_000, 120_000])
            msg.add_attachment(
                rng.randbytes(size), maintype="application", subtype="pdf", filename=f"invoice-{order}.pdf"
            )
        out.append(msg.as_bytes())
    return out


@dataclass(frozen=True, slots=True)
class Run:
    """One puller's figures: messages, seconds until stored and until parsed in full, CPU
    seconds until parsed in full and until stored (the hub process and its worker processes,
    which are started with the channel, before the pull), and the hub process's own share of
    the latter."""

    name: str
    count: int
    seconds: float
    whole_seconds: float
    cpu: float
    stored_cpu: float
    hub_cpu: float


def pool_cpu(executor: Any) -> float:
    """CPU seconds the live processes of a pool have used so far (Linux /proc)."""
    if executor is None:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in list(getattr(executor, "_processes", {}) or {}):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def own_cpu() -> float:
    """CPU seconds of this process so far."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    return me.ru_utime + me.ru_stime


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended (user + system)."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


async def hub_pull(name: str, dovecot: Dovecot, store: dict[str, Any], root: Path, args: Any) -> Run:
    """Pull the mailbox into a fresh hub; stored means the cursor is at the end, whole means
    every message is also parsed in full (text, HTML, attachments)."""
    config = hub_config.parse({"store": store, "hub": {"data_dir": str(root / "data")}}, root)
    services = await open_services(config)
    try:
        rules, limits = MailRules(), ParseLimits()
        full = functools.partial(parse_for, account=USER, limits=limits, rules=rules)
        quick = functools.partial(triage_for, account=USER, limits=limits, rules=rules)
        readers = pool.workers(args.parse_workers) if args.parse_workers else None
        fillers = pool.workers(args.parse_workers, background=True) if args.parse_workers else None
        for workers in (readers, fillers):
            if workers is not None:  # started with the channel, before any pull: not timed
                await asyncio.gather(
                    *(
                        asyncio.get_running_loop().run_in_executor(workers, abs, n)
                        for n in range(args.parse_workers)
                    )
                )
        freeze_objects()  # as `omnihub run` does once the hub has started
        began_hub = own_cpu()
        began_own = began_hub + pool_cpu(readers) + pool_cpu(fillers)
        completer = Completer(services.inbox, USER, full, fillers)
        completer.start()
        sync = MailboxSync(
            services.inbox,
            MailboxSettings(account=USER, mailbox="INBOX"),
            full,
            executor=readers,
            triage=None if args.full_parse else quick,
            on_deferred=completer.wake,
        )
        session = await ImapSession.open(ImapServer(dovecot.host, dovecot.port, USER, PASSWORD, tls=False))
        try:
            began = time.perf_counter()
            result = await sync.run_once(session)
            seconds = time.perf_counter() - began
            hub_cpu = own_cpu() - began_hub
            stored_cpu = hub_cpu + began_hub + pool_cpu(readers) + pool_cpu(fillers) - began_own
        finally:
            await session.close()
        await completer.settled()
        whole = time.perf_counter() - began
        used = own_cpu() + pool_cpu(readers) + pool_cpu(fillers) - began_own
        await completer.stop()
        for workers in (readers, fillers):
            if workers is not None:
                workers.shutdown()
        await _check(services)
        return Run(name, result.stored + result.duplicates, seconds, whole, used, stored_cpu, hub_cpu)
    finally:
        await services.close()


async def _check(services: Any) -> None:
    """Every stored mail was read in full: text for all, attachments where the mix has them."""
    m = schema.messages
    async with services.db.read() as conn:
        empty = (await conn.execute(select(func.count()).select_from(m).where(m.c.text == ""))).scalar_one()
        files = (await conn.execute(select(func.count()).select_from(schema.attachments))).scalar_one()
    if empty or not files:
        raise SystemExit(f"the hub stored {empty} mails without text and {files} attachments")


def mbsync(dovecot: Dovecot, root: Path) -> Run:
    """Pull with mbsync into a Maildir."""
    target = root / "mbsync"
    target.mkdir()
    conf = root / "mbsyncrc"
    conf.write_text(
        f"IMAPAccount bench\nHost {dovecot.host}\nPort {dovecot.port}\nUser {USER}\nPass {PASSWORD}\n"
        "SSLType None\nAuthMechs LOGIN\n\n"
        "IMAPStore remote\nAccount bench\n\n"
        f"MaildirStore local\nPath {target}/\nInbox {target}/INBOX\n\n"
        "Channel bench\nFar :remote:\nNear :local:\nPatterns INBOX\nCreate Near\nSync Pull\nSyncState *\n"
    )
    return _timed("mbsync", ["mbsync", "-c", str(conf), "-q", "bench"], target / "INBOX")


def offlineimap(dovecot: Dovecot, root: Path) -> Run:
    """Pull with offlineimap3 into a Maildir."""
    target = root / "offlineimap"
    target.mkdir()
    conf = root / "offlineimaprc"
    conf.write_text(
        f"[general]\naccounts = bench\nmetadata = {root}/offlineimap-meta\n\n"
        "[Account bench]\nlocalrepository = local\nremoterepository = remote\n\n"
        f"[Repository local]\ntype = Maildir\nlocalfolders = {target}\n\n"
        f"[Repository remote]\ntype = IMAP\nremotehost = {dovecot.host}\nremoteport = {dovecot.port}\n"
        f"remoteuser = {USER}\nremotepass = {PASSWORD}\nssl = no\nstarttls = no\nreadonly = True\n"
        "folderfilter = lambda name: name == 'INBOX'\n"
    )
    return _timed("offlineimap3", ["offlineimap", "-c", str(conf), "-o", "-u", "quiet"], target / "INBOX")


def _timed(name: str, command: list[str], maildir: Path) -> Run:
    began, began_cpu = time.perf_counter(), cpu_seconds()
    subprocess.run(command, check=True)
    seconds = time.perf_counter() - began
    used = cpu_seconds() - began_cpu
    return Run(name, _count(maildir), seconds, seconds, used, used, used)


def _count(maildir: Path) -> int:
    return sum(1 for sub in ("cur", "new") if (maildir / sub).exists() for _ in (maildir / sub).iterdir())


async def _pg_schema(dsn: str, create: bool, name: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute(f"CREATE SCHEMA {name}" if create else f"DROP SCHEMA {name} CASCADE")
    finally:
        await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument(
        "--parse-workers",
        type=int,
        default=1,
        help="worker processes for reading, and as many for filling in",
    )
    parser.add_argument(
        "--full-parse", action="store_true", help="parse every mail in full before storing it (no triage)"
    )
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="omnihub-imap-bench-"))
    os.chmod(base, 0o711)
    dovecot = Dovecot(base / "dovecot")
    dovecot.start()
    results: list[Run] = []
    try:
        began = time.perf_counter()
        mails = realistic(args.messages)
        dovecot.deliver(USER, mails)
        size = sum(len(m) for m in mails) / len(mails)
        filled = time.perf_counter() - began
        print(f"mailbox: {len(mails)} messages, {size / 1024:.1f} KB on average, filled in {filled:.0f} s")
        print(f"load average before the pulls: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        sqlite_root = base / "hub-sqlite"
        sqlite_root.mkdir()
        store = {"url": f"sqlite+aiosqlite:///{sqlite_root}/hub.db"}
        results.append(await hub_pull("hub, SQLite", dovecot, store, sqlite_root, args))
        schema_name = f"bench_{uuid.uuid4().hex[:8]}"
        try:
            await _pg_schema(args.pg, True, schema_name)
        except (OSError, asyncpg.PostgresError) as err:
            print(f"PostgreSQL skipped: {err}")
        else:
            pg_root = base / "hub-pg"
            pg_root.mkdir()
            url = args.pg.replace("postgresql://", "postgresql+asyncpg://", 1)
            try:
                pg_store = {"url": url, "schema_name": schema_name}
                results.append(await hub_pull("hub, PostgreSQL", dovecot, pg_store, pg_root, args))
            finally:
                await _pg_schema(args.pg, False, schema_name)
        for tool, run in (("mbsync", mbsync), ("offlineimap", offlineimap)):
            if shutil.which(tool) is None:
                print(f"{tool} skipped: not installed")
                continue
            results.append(await asyncio.to_thread(run, dovecot, base))
    finally:
        dovecot.stop(kill=True)
        shutil.rmtree(base, ignore_errors=True)
    print(f"load average after the pulls: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    reference = next((r for r in results if r.name == "mbsync"), None)
    print(
        f"\n{'puller':<17}{'messages':>9}{'stored s':>9}{'msg/s':>7}{'vs mbsync':>10}{'whole s':>8}"
        f"{'CPU s':>7}{'ms/msg':>7}{'stored CPU s':>13}{'ms/msg':>7}{'vs mbsync':>10}{'hub ms/msg':>11}"
    )
    for r in results:
        rate = r.count / r.seconds
        ratio = f"{rate / (reference.count / reference.seconds):.2f}x" if reference else "-"
        cpu_ratio = (
            f"{(reference.stored_cpu / reference.count) / (r.stored_cpu / r.count):.2f}x"
            if reference
            else "-"
        )
        print(
            f"{r.name:<17}{r.count:>9}{r.seconds:>9.1f}{rate:>7.0f}{ratio:>10}{r.whole_seconds:>8.1f}"
            f"{r.cpu:>7.1f}{1000 * r.cpu / r.count:>7.2f}"
            f"{r.stored_cpu:>13.1f}{1000 * r.stored_cpu / r.count:>7.2f}{cpu_ratio:>10}"
            f"{1000 * r.hub_cpu / r.count:>11.2f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
