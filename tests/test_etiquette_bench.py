"""bench/etiquette.py runs and measures what it says: 1,000 phrases on a one-page mixed mail."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_benchmark_runs_on_1000_phrases_and_a_one_page_mail() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.etiquette", "--runs", "3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=50,
        check=True,
    )
    lines = result.stdout.splitlines()
    assert lines[0].startswith("phrases: 1000 ")
    characters = int(lines[0].split("mail: ")[1].split(" characters")[0])
    assert 2500 <= characters <= 3500
    assert any(line.startswith("phrases (L1-L7)") for line in lines)
    assert any(line.startswith("full check()") for line in lines)
