"""Time to render a template, to check every shipped template, and to compute a reply-time promise.

Rendering runs synchronously on the event loop (it is CPU-only), so it must stay well under a
millisecond. The benchmark renders the e-mail acknowledgement (text and HTML) and the SMS
acknowledgement in both languages, times `check_templates` over the shipped set (what
`omnihub rules check` adds), and times `promise_due` on a calendar with split shifts and
holidays.

Usage: python bench/templates.py [--renders 5000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hub.sla.calendar import BusinessCalendar  # noqa: E402
from hub.sla.promise import promise_due  # noqa: E402
from hub.templates import SAMPLES, Templates, check_templates  # noqa: E402


def per_call(fn: object, count: int) -> float:
    """Median microseconds per call over 5 runs of `count` calls."""
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(count):
            fn()  # type: ignore[operator]
        runs.append((time.perf_counter() - started) / count * 1e6)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--renders", type=int, default=5000)
    args = parser.parse_args()
    templates = Templates()
    rows = []
    for channel, ext in (("email", "txt"), ("email", "html"), ("sms", "txt")):
        for lang, tz in (("en", "Europe/London"), ("zh", "Asia/Shanghai")):
            sample = SAMPLES[lang]  # type: ignore[index]
            templates.render(channel, "acknowledge", lang, ext, sample, tz=tz)

            def render(channel: str = channel, lang: str = lang, ext: str = ext, tz: str = tz) -> None:
                templates.render(channel, "acknowledge", lang, ext, SAMPLES[lang], tz=tz)  # type: ignore[index]

            rows.append((f"render {channel}/acknowledge.{lang}.{ext}", per_call(render, args.renders), "µs"))
    started = time.perf_counter()
    problems = check_templates(Templates(), now=datetime.now(UTC))
    rows.append(("check_templates (shipped set, cold)", (time.perf_counter() - started) * 1e3, "ms"))
    calendar = BusinessCalendar.build(
        "uk",
        "Europe/London",
        {d: ["09:00-12:30", "13:30-17:30"] for d in ("mon", "tue", "wed", "thu", "fri")},
        country="GB",
        subdivision="ENG",
    )
    received = datetime(2026, 4, 2, 16, 10, tzinfo=UTC)
    rows.append(
        (
            "promise_due (8 h target, over Easter)",
            per_call(lambda: promise_due(received, timedelta(hours=8), 1.5, calendar), 500),
            "µs",
        )
    )
    width = max(len(name) for name, _, _ in rows)
    for name, value, unit in rows:
        print(f"{name:<{width}}  {value:9.1f} {unit}")
    print(f"problems in the shipped set: {len(problems)}")


if __name__ == "__main__":
    main()
