"""The SLA report as a text table, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Literal

from hub.rules.durations import format_duration
from hub.sla.report import SlaReport

Format = Literal["table", "csv", "json"]
FORMATS: tuple[Format, ...] = ("table", "csv", "json")


def render(report: SlaReport, fmt: Format) -> str:
    """The report in one of FORMATS."""
    if fmt == "json":
        return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        return _csv(report)
    return _table(report)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _secs(value: float | None) -> str:
    return "-" if value is None else format_duration(timedelta(seconds=round(value)))


def _summary(r: SlaReport) -> list[tuple[str, str]]:
    return [
        ("first_responses", str(r.first_responses)),
        ("first_response_median", _secs(r.first_response_median_seconds)),
        ("first_response_p90", _secs(r.first_response_p90_seconds)),
        ("calls_offered", str(r.calls_offered)),
        ("calls_answered", str(r.calls_answered)),
        ("calls_within_rings", str(r.calls_within_rings)),
        ("calls_within_rings_rate", _pct(r.within_rings_rate)),
        ("calls_abandoned", str(r.calls_abandoned)),
        ("average_speed_of_answer_seconds", "-" if r.average_speed_of_answer_seconds is None
         else f"{r.average_speed_of_answer_seconds:.1f}"),
        ("promises_made", str(r.promises_made)),
        ("promises_kept", str(r.promises_kept)),
        ("promises_kept_rate", _pct(r.promises_kept_rate)),
        ("receipt_checks_due", str(r.receipt_checks_due)),
        ("receipt_checks_done", str(r.receipt_checks_done)),
        ("breaches", str(len(r.breaches))),
    ]  # fmt: skip


def _csv(r: SlaReport) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["section", "group", "metric", "met", "breached", "open", "value"])
    for name, value in _summary(r):
        w.writerow(["summary", "", name, "", "", "", value])
    for by, rows in r.compliance.items():
        for c in rows:
            w.writerow([by, c.group, c.metric, c.met, c.breached, c.open, _pct(c.rate)])
    for b in r.breaches:
        w.writerow(["breach", b["conversation_id"], b["metric"], "", "", "", b["breached_at"]])
    return out.getvalue()


def _grid(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    cells = [[str(x) for x in header], *[[str(x) for x in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return ["  ".join(v.ljust(widths[i]) for i, v in enumerate(row)).rstrip() for row in cells]


def _table(r: SlaReport) -> str:
    team = r.team or "all teams"
    lines = [f"SLA report {r.start.isoformat()} to {r.end.isoformat()} ({team})", ""]
    lines += _grid(("measure", "value"), _summary(r))
    for by, rows in r.compliance.items():
        lines += ["", f"Compliance by {by}"]
        lines += _grid(
            (by, "metric", "met", "breached", "open", "rate"),
            [(c.group, c.metric, c.met, c.breached, c.open, _pct(c.rate)) for c in rows],
        )
    lines += ["", "Breaches"]
    lines += _grid(
        ("conversation", "metric", "policy", "team", "agent", "due", "breached"),
        [
            (b["conversation_id"], b["metric"], b["policy"], b["team"] or "-", b["agent"] or "-", b["due_at"],
             b["breached_at"])
            for b in r.breaches
        ],
    )  # fmt: skip
    return "\n".join(lines) + "\n"
