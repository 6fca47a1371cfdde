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
import multiprocessing
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import Executor, ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from channels.email.channel import parse_for  # noqa: E402
from channels.email.imap.client import ImapServer, ImapSession  # noqa: E402
from channels.email.imap.sync import MailboxSettings, MailboxSync  # noqa: E402
from channels.email.parse import MailRules, ParseLimits  # noqa: E402
from hub import config as hub_config  # noqa: E402
from hub.services import open_services  # noqa: E402
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


async def hub_pull(
    dovecot: Dovecot, store: dict[str, Any], root: Path, workers: Executor | None
) -> tuple[int, float]:
    """Pull the mailbox into a fresh hub; return (messages stored, seconds)."""
    config = hub_config.parse({"store": store, "hub": {"data_dir": str(root / "data")}}, root)
    services = await open_services(config)
    try:
        parse = _parser()
        mailbox = MailboxSettings(account="bench", mailbox="INBOX")
        sync = MailboxSync(services.inbox, mailbox, parse, executor=workers)
        session = await ImapSession.open(ImapServer(dovecot.host, dovecot.port, USER, PASSWORD, tls=False))
        try:
            began = time.perf_counter()
            result = await sync.run_once(session)
            seconds = time.perf_counter() - began
        finally:
            await session.close()
        return result.stored + result.duplicates, seconds
    finally:
        await services.close()


def _parser() -> Any:
    import functools

    return functools.partial(parse_for, account="bench", limits=ParseLimits(), rules=MailRules())


def mbsync(dovecot: Dovecot, root: Path) -> tuple[int, float]:
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
    began = time.perf_counter()
    subprocess.run(["mbsync", "-c", str(conf), "-q", "bench"], check=True)
    seconds = time.perf_counter() - began
    return _count(target / "INBOX"), seconds


def offlineimap(dovecot: Dovecot, root: Path) -> tuple[int, float]:
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
    began = time.perf_counter()
    subprocess.run(["offlineimap", "-c", str(conf), "-o", "-u", "quiet"], check=True)
    seconds = time.perf_counter() - began
    return _count(target / "INBOX"), seconds


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
    parser.add_argument("--parse-workers", type=int, default=2, help="worker processes for MIME parsing")
    args = parser.parse_args()
    workers = (
        ProcessPoolExecutor(args.parse_workers, mp_context=multiprocessing.get_context("spawn"))
        if args.parse_workers
        else None
    )
    base = Path(tempfile.mkdtemp(prefix="omnihub-imap-bench-"))
    os.chmod(base, 0o711)
    dovecot = Dovecot(base / "dovecot")
    dovecot.start()
    try:
        began = time.perf_counter()
        mails = realistic(args.messages)
        dovecot.deliver(USER, mails)
        size = sum(len(m) for m in mails) / len(mails)
        filled = time.perf_counter() - began
        print(f"mailbox: {len(mails)} messages, {size / 1024:.1f} KB on average, filled in {filled:.0f} s")
        results: list[tuple[str, int, float]] = []
        sqlite_root = base / "hub-sqlite"
        sqlite_root.mkdir()
        results.append(
            (
                "hub, SQLite",
                *await hub_pull(
                    dovecot, {"url": f"sqlite+aiosqlite:///{sqlite_root}/hub.db"}, sqlite_root, workers
                ),
            )
        )
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        try:
            await _pg_schema(args.pg, True, schema)
        except (OSError, asyncpg.PostgresError) as err:
            print(f"PostgreSQL skipped: {err}")
        else:
            pg_root = base / "hub-pg"
            pg_root.mkdir()
            url = args.pg.replace("postgresql://", "postgresql+asyncpg://", 1)
            try:
                results.append(
                    (
                        "hub, PostgreSQL",
                        *await hub_pull(dovecot, {"url": url, "schema_name": schema}, pg_root, workers),
                    )
                )
            finally:
                await _pg_schema(args.pg, False, schema)
        for name, tool, run in (("mbsync", "mbsync", mbsync), ("offlineimap3", "offlineimap", offlineimap)):
            if shutil.which(tool) is None:
                print(f"{name} skipped: not installed")
                continue
            results.append((name, *await asyncio.to_thread(run, dovecot, base)))
    finally:
        dovecot.stop(kill=True)
        shutil.rmtree(base, ignore_errors=True)
        if workers is not None:
            workers.shutdown()
    reference = next((r for r in results if r[0] == "mbsync"), None)
    print(f"\n{'puller':<18}{'messages':>10}{'seconds':>10}{'msg/s':>10}{'vs mbsync':>11}")
    for name, count, seconds in results:
        rate = count / seconds
        ratio = f"{rate / (reference[1] / reference[2]):.2f}x" if reference else "-"
        print(f"{name:<18}{count:>10}{seconds:>10.1f}{rate:>10.0f}{ratio:>11}")


if __name__ == "__main__":
    asyncio.run(main())
