"""`omnihub rules check` and `omnihub rules test`: output and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hub.cli import main

DATA = Path(__file__).parent / "data" / "rules"
SHIPPED = Path(__file__).resolve().parent.parent / "rules"
Capsys = pytest.CaptureFixture[str]


def run_cli(capsys: Capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_prints_every_problem_and_exits_1(capsys: Capsys) -> None:
    code, out, err = run_cli(capsys, "rules", "check", str(DATA / "many_mistakes"))
    assert code == 1
    lines = out.splitlines()
    assert len(lines) == 14
    assert lines[0].startswith("calendars.yaml:3:16: calendars.default.time_zone: expected a time zone")
    assert "triggers.yaml:5:9: triggers[0].then[0].asign: expected one of: assign," in out
    assert "14 problems" in err


def test_check_of_valid_rules_prints_a_line_for_rules_and_templates_and_exits_0(capsys: Capsys) -> None:
    code, out, _ = run_cli(capsys, "rules", "check", str(SHIPPED))
    assert code == 0
    rules_line, templates_line = out.splitlines()
    assert "rules valid, version" in rules_line
    assert "sla.yaml" in rules_line and "etiquette.yaml" in rules_line
    assert templates_line.startswith("templates: 0 errors, 0 warnings")


def test_check_renders_templates_and_fails_on_a_broken_one(tmp_path: Path, capsys: Capsys) -> None:
    folder = tmp_path / "templates" / "voice"
    folder.mkdir(parents=True)
    (folder / "phone_greeting.en.txt.j2").write_text("Hello, {{ agent.name }} speaking.\n", encoding="utf-8")
    (folder / "phone_greeting.zh.txt.j2").write_text("您好，{{ agent.nmae }}。\n", encoding="utf-8")
    code, out, _ = run_cli(capsys, "rules", "check", str(SHIPPED), "--templates", str(tmp_path / "templates"))
    assert code == 1
    assert "phone_greeting.en.txt.j2" in out and "[P2]" in out
    assert "phone_greeting.zh.txt.j2:1" in out


def test_check_without_a_folder_argument_uses_the_configuration(tmp_path: Path, capsys: Capsys) -> None:
    (tmp_path / "omnihub.toml").write_text('rules_dir = "my-rules"\n', encoding="utf-8")
    (tmp_path / "my-rules").mkdir()
    (tmp_path / "my-rules" / "triggers.yaml").write_text("triggers: 3\n", encoding="utf-8")
    code, out, _ = run_cli(capsys, "--config", str(tmp_path / "omnihub.toml"), "rules", "check")
    assert code == 1 and out.startswith("triggers.yaml:1:11: triggers: ")
    code, _, err = run_cli(capsys, "rules", "check", str(tmp_path / "nowhere"))
    assert code == 1 and "no such folder" in err


def test_rules_test_shows_what_fires_for_an_email(tmp_path: Path, capsys: Capsys) -> None:
    sample = tmp_path / "complaint.eml"
    sample.write_bytes(
        "From: 王芳 <wang.fang@example.cn>\r\nTo: support@example.com\r\n"
        "Subject: =?utf-8?b?5oqV6K+JOiDorqLljZUgIzQ4MjEz?=\r\n"
        "Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n我要投诉，包裹一直没到。\r\n".encode()
    )
    code, out, err = run_cli(capsys, "rules", "test", str(sample), "--rules", str(SHIPPED))
    assert code == 0, err
    assert "  complaint (on message.received)" in out
    assert '    set_priority: "high"' in out
    assert "language: zh" in out and "in_business_hours: True" in out
    code, out, _ = run_cli(capsys, "rules", "test", str(sample), "--rules", str(SHIPPED), "--json")
    data = json.loads(out)
    assert [t["trigger"] for t in data["triggers"]] == ["acknowledge", "complaint"]
    assert data["triggers"][1]["actions"][2] == {"reply_with_template": {"template": "complaint_reply"}}


def test_rules_test_reads_json_messages_and_reports_bad_samples(tmp_path: Path, capsys: Capsys) -> None:
    sample = tmp_path / "calm.json"
    sample.write_text(
        json.dumps({"sender": {"address": "ana@example.com"}, "subject": "Thanks", "text": "All good."}),
        encoding="utf-8",
    )
    code, out, _ = run_cli(capsys, "rules", "test", str(sample), "--rules", str(SHIPPED))
    assert code == 0 and "triggers: none fire" in out
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    code, _, err = run_cli(capsys, "rules", "test", str(broken), "--rules", str(SHIPPED))
    assert code == 1 and "not valid JSON" in err
    code, _, err = run_cli(capsys, "rules", "test", str(sample), "--rules", str(DATA / "aliases"))
    assert code == 1 and "aliases (*a) are not allowed" in err


def test_rules_test_shows_the_policy_the_promise_and_the_etiquette_findings(
    tmp_path: Path, capsys: Capsys
) -> None:
    sample = tmp_path / "late.eml"
    sample.write_bytes(
        b"From: Wang Fang <wang.fang@example.cn>\r\nTo: support@example.com\r\n"
        b"Subject: Order 48213 never arrived\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\n"
        b"My parcel never arrived and I don't know who to ask!!!\r\n"
    )
    code, out, err = run_cli(capsys, "rules", "test", str(sample), "--rules", str(SHIPPED))
    assert code == 0, err
    assert "  policy: standard\n  first_response: 4h" in out
    assert "  promise: by Monday 23 November, 17:00" in out
    assert "We will reply by Monday 23 November, 17:00." in out
    assert "  - L1 error: " in out and "  - E5 warning: " in out
    code, out, _ = run_cli(capsys, "rules", "test", str(sample), "--rules", str(SHIPPED), "--json")
    data = json.loads(out)
    assert data["acknowledgement"]["promise_due_at"] == "2026-11-23T17:00:00+00:00"
    assert {f["rule_id"] for f in data["etiquette"]} >= {"L1", "E5"}
