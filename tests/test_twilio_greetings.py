"""`omnihub rules check` on the voicemail greetings configured per team and agent (V1, V2, V3)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from channels.twilio.greetings import check_greetings
from channels.twilio.voicemail_settings import VoicemailSettings
from hub.cli import main
from tests.twilio_helpers import ACCOUNT, LINE

REPO = Path(__file__).resolve().parent.parent


def today() -> date:
    """The day `rules check` judges ages by (UTC), read when a test runs, not when the module loads."""
    return datetime.now(UTC).date()


def greeting(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "team": "Support",
        "updated": today().isoformat(),
        "alternative_contact": {"name": "Dana Lee", "phone": "+44 20 7946 0999"},
    }
    return {**base, **fields}


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {json.dumps(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def _toml_greeting(fields: dict[str, Any]) -> str:
    rows = "".join(f"{k} = {_toml_value(v)}\n" for k, v in fields.items() if v is not None)
    return f"[[channels.voicemail.greetings]]\n{rows}"


def write_config(tmp_path: Path, greetings: list[dict[str, Any]], max_age: str = "30d") -> Path:
    rules = tmp_path / "rules"
    shutil.copytree(REPO / "rules", rules)
    etiquette = rules / "etiquette.yaml"
    text = etiquette.read_text(encoding="utf-8").replace(
        "greeting_max_age: 30d", f"greeting_max_age: {max_age}"
    )
    etiquette.write_text(text, encoding="utf-8")
    config = tmp_path / "omnihub.toml"
    config.write_text(
        f"""rules_dir = "rules"
[[channels]]
name = "phones"
kind = "twilio_voice"
account_sid = "{ACCOUNT}"
auth_token = "secret-token"
lines = [{{number = "{LINE}", team = "Support"}}]
{"".join(_toml_greeting(g) for g in greetings)}""",
        encoding="utf-8",
    )
    return config


def test_rules_check_reports_greetings_missing_v2_v3_and_old_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = (today() - timedelta(days=10)).isoformat()
    config = write_config(
        tmp_path,
        [
            greeting(audio_url="https://cdn.example.com/support.mp3"),
            greeting(team=None, agent="alice", language="zh", alternative_contact=None, updated=old),
            greeting(language="zh", alternative_contact={"name": "Front desk"}),
        ],
        max_age="7d",
    )
    code = main(["--config", str(config), "rules", "check"])
    out = capsys.readouterr().out
    assert code == 1
    lines = [line for line in out.splitlines() if "voicemail.greetings" in line]
    assert len(lines) == 4, out
    assert "greetings[0] (team Support, en): error: a recorded greeting must say when" in lines[0]
    assert lines[0].endswith("[V2]")
    assert "greetings[1] (agent alice, zh): error:" in lines[1] and lines[1].endswith("[V3]")
    assert "greetings[1] (agent alice, zh): warning: the greeting is 10 days old" in lines[2]
    assert lines[2].endswith("[V1]") and "every 7 days" in lines[2]
    assert "greetings[2]" in lines[3] and lines[3].endswith("[V3]")
    assert "greetings: 3 errors, 1 warnings" in out


def test_good_greetings_pass_and_age_follows_the_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = (today() - timedelta(days=10)).isoformat()
    config = write_config(
        tmp_path,
        [
            greeting(
                audio_url="https://cdn.example.com/s.mp3", reply_time="the next business day", updated=old
            )
        ],
    )
    assert main(["--config", str(config), "rules", "check"]) == 0
    assert "voicemail.greetings" not in capsys.readouterr().out


def test_a_greeting_belongs_to_a_team_or_an_agent() -> None:
    with pytest.raises(ValueError, match="either a team or an agent"):
        VoicemailSettings.model_validate({"greetings": [greeting(agent="bob")]})
    settings = VoicemailSettings.model_validate(
        {"greetings": [greeting(), greeting(team=None, agent="bob", updated="2020-01-01")]}
    )
    problems = check_greetings(settings, "x", date(2020, 3, 1), timedelta(days=30))
    assert [(p.rule, p.severity) for p in problems] == [("V1", "warning")]
    chosen = settings.greeting_for("en", agent="bob", team="Support")
    assert chosen is not None and chosen.agent == "bob"
    fallback = settings.greeting_for("en", agent="carol", team="Support")
    assert fallback is not None and fallback.team == "Support"
    assert settings.greeting_for("zh", agent=None, team="Support") is None
