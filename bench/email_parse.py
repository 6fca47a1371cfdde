"""Mails per second through `parse_message` (the full parse) and `peek` (headers only).

Builds N realistic mails (plain replies with quoted history, HTML newsletters with remote
images, mails with a PDF attachment, Chinese mails in GB18030, a few bounces), composed
the way clients write them, then parses each once on one core and prints a table: mails
per second, mean size, and the full parse's share of the headers-only rate.

Usage: python bench/email_parse.py [--messages 5000]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from channels.email.parse import parse_message, peek  # noqa: E402

WORDS = ["order", "parcel", "invoice", "refund", "delivery", "address", "payment", "account", "tracking"]
ZH = ["您好，我的订单还没有收到。", "请问发票什么时候寄出？", "我想申请退款，谢谢。", "快递单号查不到信息。"]


def paragraph(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def reply(rng: random.Random, i: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Customer {i} <customer{i % 2000}@example.com>"
    msg["To"] = "support@acme.test"
    msg["Subject"] = f"Re: Order {1000 + i} [#{i % 500}]"
    msg["Message-ID"] = f"<r{i}@mail.example.com>"
    msg["In-Reply-To"] = f"<c{i % 500}.m{i}.0123456789abcdef@acme.test>"
    msg["References"] = " ".join(f"<ref{i}.{k}@example.com>" for k in range(rng.randint(1, 6)))
    msg["Date"] = "Tue, 04 Nov 2025 09:12:44 +0100"
    quoted = "\n".join("> " + paragraph(rng, 12) for _ in range(rng.randint(3, 30)))
    attribution = "On Mon, Nov 3, 2025 at 4:05 PM Support wrote:"
    body = f"{paragraph(rng, 40)}\n\nBest regards\nCustomer\n\n{attribution}\n{quoted}\n"
    msg.set_content(body)
    if rng.random() < 0.4:
        html = "".join(f"<p>{paragraph(rng, 30)}</p>" for _ in range(rng.randint(2, 12)))
        msg.add_alternative(
            f'<html><body>{html}<img src="https://t.example/{i}.gif"></body></html>', subtype="html"
        )
    if rng.random() < 0.15:
        msg.add_attachment(
            rng.randbytes(rng.randint(20_000, 200_000)),
            maintype="application",
            subtype="pdf",
            filename=f"scan-{i}.pdf",
        )
    return msg.as_bytes(policy=SMTP)


def chinese(rng: random.Random, i: int) -> bytes:
    text = "".join(rng.choice(ZH) for _ in range(rng.randint(2, 10)))
    head = (
        f"From: =?utf-8?b?5byg5LiJ?= <zh{i}@qq.com>\r\nTo: support@acme.test\r\nSubject: 订单 {i}\r\n"
        f"Message-ID: <zh{i}@qq.com>\r\nContent-Type: text/plain; charset=GB2312\r\n\r\n"
    )
    return head.encode("gb18030") + (
        text + "\r\n\r\n------------------ 原始邮件 ------------------\r\n"
        "发件人: support@acme.test\r\n发送时间: 2025年11月5日\r\n\r\n您好\r\n"
    ).encode("gb18030")


def bounce(i: int) -> bytes:
    return (
        f"From: MAILER-DAEMON@mx.example.com\r\nTo: support@acme.test\r\nSubject: Undelivered Mail\r\n"
        f"Message-ID: <b{i}@mx>\r\n"
        "Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n"
        "--B\r\nContent-Type: text/plain\r\n\r\nfailed\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        f"Reporting-MTA: dns; mx\r\n\r\nFinal-Recipient: rfc822; gone{i}@example.com\r\nAction: failed\r\n"
        f"Status: 5.1.1\r\n\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: <c1.m{i}.0123456789abcdef@acme.test>\r\n\r\n--B--\r\n"
    ).encode()


def corpus(n: int) -> list[bytes]:
    rng = random.Random(7)
    mails = []
    for i in range(n):
        roll = rng.random()
        mails.append(bounce(i) if roll < 0.03 else chinese(rng, i) if roll < 0.2 else reply(rng, i))
    return mails


def rate(mails: list[bytes], parse: object) -> float:
    start = time.perf_counter()
    for raw in mails:
        parse(raw)  # type: ignore[operator]
    return len(mails) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    args = parser.parse_args()
    mails = corpus(args.messages)
    size = sum(map(len, mails)) / len(mails)
    full = rate(mails, lambda raw: parse_message(raw, account="bench"))
    head = rate(mails, peek)
    print(f"{len(mails)} mails, mean {size / 1024:.1f} KB, one core")
    print(f"{'parse':<22}{'mails/s':>10}")
    print(f"{'peek (headers only)':<22}{head:>10.0f}")
    print(f"{'parse_message (full)':<22}{full:>10.0f}")
    print(f"full / headers-only    {full / head:>9.2f}")


if __name__ == "__main__":
    main()
