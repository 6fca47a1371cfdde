"""Time of the pre-send etiquette check on a one-page mail against 1,000 phrases.

Loads the shipped rules (rules/etiquette.yaml and rules/phrases/), adds generated but realistic
phrases (departments, products and stock phrasings agents type, English and Chinese) until the
phrase lists hold 1,000 phrases, and times on a ≈3,000-character mixed English/Chinese mail:
1. the phrase check alone (L1-L7: folding, one Aho-Corasick pass, exceptions, L3/L7 context);
2. the full `check()` (E3-E8 and L1-L7, spelling included).
Prints the median and p99 per check in milliseconds.

Usage: python -m bench.etiquette [--runs 2000]
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hub.etiquette import Draft, EtiquetteRules, check, load_etiquette  # noqa: E402
from hub.etiquette.phrases import check_phrases  # noqa: E402
from hub.models import ChannelKind  # noqa: E402

TARGET_PHRASES = 1000
DEPARTMENTS_EN = ["billing", "shipping", "returns", "warehouse", "finance", "sales", "IT", "logistics",
                  "accounts", "installation", "repairs", "the store"]  # fmt: skip
DEPARTMENTS_ZH = [
    "财务部",
    "物流部",
    "仓库",
    "售后部",
    "技术部",
    "销售部",
    "门店",
    "安装部",
    "维修部",
    "客服中心",
    "采购部",
    "法务部",
]
THINGS_EN = [
    "refund",
    "delivery date",
    "invoice",
    "voucher",
    "warranty",
    "tracking",
    "discount",
    "replacement",
]
THINGS_ZH = ["退款", "发货时间", "发票", "优惠券", "保修", "物流", "折扣", "换货"]

PAGE = """Dear Ms Wang,

In short: your replacement phone ships today and the refund for the broken one reached your card this morning.

Thank you for your patience while we looked into order 44871. I checked with our warehouse: the parcel
with the replacement left the depot at 10:20 and the tracking link is https://track.example.com/44871.
Delivery is planned for tomorrow between 9 am and 1 pm; if that does not suit you, reply to this mail and
I will move it to a time that does. The refund of 349.00 EUR for the faulty unit was sent on Monday and
your bank confirmed it this morning, so you should see it on your statement within one working day.

王女士您好，感谢您的耐心等待。我们已经和仓库确认，换货的手机今天上午已经发出，预计明天上午送达。
如果明天不方便收货，请直接回复这封邮件，我们会为您改到合适的时间。故障机的退款349元已于周一原路退回，
银行今天上午已经确认，一个工作日内就会显示在您的账单上。给您带来的不便，我们深表歉意。

About the charger you asked about: the new model uses the same USB-C cable, so you can keep using the one
you have. If you would like a second charger, I can add one to the parcel at half price; just let me know
by tonight. We only keep the offer open until Friday, I'm afraid. Your warranty moves to the new phone
and now runs until 14 May 2028; the certificate is attached as a PDF.

关于充电器：新机型使用相同的USB-C数据线，您现有的充电器可以继续使用。如果您需要再买一个充电器，
我可以帮您以半价加在这次的包裹里。保修也会转到新手机上，有效期到2028年5月14日，保修证书附在邮件里。
如有不清楚的地方，欢迎随时联系我，我会亲自跟进到底。

For your records, here is what happens next. The courier will ask for a signature, so someone needs to
be at home; if nobody is in, the parcel goes to the pick-up point on Elbstraße 12, where it waits for
seven days. Please put the faulty phone in the box the replacement comes in, stick the prepaid return
label on it (it is attached to this mail as well), and hand it to the courier or drop it at any post
office within 14 days. You do not need to reset the faulty phone: we erase every returned device.

收货时快递员需要签收，请确保家里有人；如果无人签收，包裹会放到易北街12号的自提点，保留七天。
请把故障手机放进新手机的包装盒里，贴上随邮件附上的预付退货单，交给快递员或在14天内送到任意邮局即可。
故障手机不需要恢复出厂设置，我们会清除所有退回设备上的数据，请放心。

You also asked whether the new phone works with your car. It supports the same Bluetooth profiles as the
old one, and the hands-free settings move over with your backup. If your car asks for a code when you pair
it, use 0000; if it still does not connect, our video guide at https://help.example.com/pairing shows each
step, and you can write to support@example.com at any time.

关于车载蓝牙：新手机支持与旧手机相同的蓝牙协议，车载免提设置会随备份一起恢复。配对时如果车机要求输入
密码，请输入0000；如仍无法连接，可以观看我们的视频教程，或随时发邮件给我们。

Once more, I'm sorry for the trouble with the first phone. I don't know if you have had a chance to try
the backup we set up, but your photos and contacts are all there and will appear on the new phone as soon
as you sign in with your usual account. If anything does not look right, write back and I'll call you.

Best regards,
-- {SPACE}
Anna Schmidt
Customer Support Specialist
Acme GmbH, 12 Harbour Street, 20457 Hamburg
Tel: +49 40 1234 5678
""".replace("{SPACE}", "")


def generated_phrases(count: int) -> list[dict[str, Any]]:
    """Realistic phrase-list entries beyond the shipped ones (buck-passing, ignorance, jargon)."""
    pools = [
        ({"rule": "L2", "language": "en"}, (f"that's a {d} issue" for d in DEPARTMENTS_EN)),
        ({"rule": "L2", "language": "en"}, (f"ask {d} yourself" for d in DEPARTMENTS_EN)),
        ({"rule": "L2", "language": "en"}, (f"{d} always gets it wrong" for d in DEPARTMENTS_EN)),
        ({"rule": "L2", "language": "en"}, (f"not my job, {d} handles that" for d in DEPARTMENTS_EN)),
        ({"rule": "L1", "language": "en"}, (f"I have no idea about the {t}" for t in THINGS_EN)),
        ({"rule": "L1", "language": "en"}, (f"nobody knows about the {t}" for t in THINGS_EN)),
        ({"rule": "L2", "language": "zh"}, (f"这是{d}的事" for d in DEPARTMENTS_ZH)),
        ({"rule": "L2", "language": "zh"}, (f"{d}那边弄错了" for d in DEPARTMENTS_ZH)),
        ({"rule": "L2", "language": "zh"}, (f"您去找{d}" for d in DEPARTMENTS_ZH)),
        ({"rule": "L2", "language": "zh"}, (f"{d}经常出错" for d in DEPARTMENTS_ZH)),
        ({"rule": "L1", "language": "zh"}, (f"{t}我不清楚" for t in THINGS_ZH)),
        ({"rule": "L1", "language": "zh"}, (f"{t}的事我不知道" for t in THINGS_ZH)),
        ({"rule": "L4", "language": "en", "explanation": "our internal code"},
         (f"status code {c}{n}" for c, n in itertools.product("ABCDEFGHJK", range(10, 40)))),
        ({"rule": "L4", "language": "zh", "explanation": "内部状态"},
         (f"{c}{n}状态" for c, n in itertools.product("甲乙丙丁戊己庚辛", range(10, 40)))),
    ]  # fmt: skip
    entries = []
    for template, phrases in itertools.cycle(pools):
        phrase = next(phrases, None)
        if phrase is None:
            continue
        entries.append({**template, "phrases": [phrase]})
        if len(entries) == count:
            return entries
    raise AssertionError("unreachable")


def rules_with(total: int) -> tuple[EtiquetteRules, int]:
    """The shipped rules plus generated phrases: `total` phrases in all."""
    etiquette = yaml.safe_load((ROOT / "rules" / "etiquette.yaml").read_text(encoding="utf-8"))
    files = {
        p.name: yaml.safe_load(p.read_text(encoding="utf-8"))
        for p in sorted((ROOT / "rules" / "phrases").glob("*.yaml"))
    }
    shipped = sum(
        len(e["phrases"]) if isinstance(e["phrases"], list) else 1
        for f in files.values()
        for e in f["entries"]
    )
    files["generated.yaml"] = {"language": "en", "entries": generated_phrases(total - shipped)}
    return load_etiquette(etiquette, files), shipped


def timed(runs: int, work: Any) -> tuple[float, float, float, float]:
    """Median and p99 in ms of wall time and of this process's CPU time (steadier on a busy machine)."""
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        work()
        cpu.append((time.process_time() - start_cpu) * 1000)
        wall.append((time.perf_counter() - start) * 1000)
    return (*_median_p99(wall), *_median_p99(cpu))


def _median_p99(samples: list[float]) -> tuple[float, float]:
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args()
    started = time.perf_counter()
    rules, shipped = rules_with(TARGET_PHRASES)
    compile_ms = (time.perf_counter() - started) * 1000
    draft = Draft(ChannelKind.EMAIL, "Your replacement phone and refund [#44871]", PAGE, is_reply=False)
    config = rules.config.phrases
    findings = check(draft, rules, "en")
    for _ in range(50):
        check(draft, rules, "en")
    phrase = timed(args.runs, lambda: check_phrases(PAGE, "body", rules.phrases, config, "en"))
    full = timed(args.runs, lambda: check(draft, rules, "en"))
    phrases = sum(len(e.phrases) for e in rules.phrases.entries)
    print(f"phrases: {phrases} ({shipped} shipped), automaton keys: {rules.phrases.matcher.size}, "
          f"mail: {len(PAGE)} characters, {PAGE.count(chr(10))} lines, runs: {args.runs}")  # fmt: skip
    print(f"rule set load and compile: {compile_ms:.0f} ms (once)")
    found = ", ".join(f"{f.rule_id}:{PAGE[f.span[0] : f.span[1]]!r}" for f in findings if f.span)
    print(f"findings on the mail: {found}")
    print(f"load average: {', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    print(f"{'check':30} {'median ms':>10} {'p99 ms':>8} {'CPU median':>11} {'CPU p99':>8}")
    for name, (median, p99, cpu_median, cpu_p99) in (
        ("phrases (L1-L7)", phrase),
        ("full check() (E3-E8, L1-L7)", full),
    ):
        print(f"{name:30} {median:10.3f} {p99:8.3f} {cpu_median:11.3f} {cpu_p99:8.3f}")


if __name__ == "__main__":
    main()
