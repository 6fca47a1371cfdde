"""Rule files: every mistake reported with file, line, column, key and what was expected, all at once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hub.errors import RuleError
from hub.rules.loader import RULE_FILES, check_ruleset, load_ruleset
from hub.rules.problems import RuleProblem, RuleSetInvalid
from hub.rules.triggers import TimeWhen

DATA = Path(__file__).parent / "data" / "rules"
SHIPPED = Path(__file__).resolve().parent.parent / "rules"


def problems_of(name: str) -> list[RuleProblem]:
    ruleset, problems = check_ruleset(DATA / name)
    assert ruleset is None
    return problems


def where(problems: list[RuleProblem]) -> list[tuple[str, int, int, str]]:
    return [(p.file, p.line, p.column, p.key_path) for p in sorted(problems)]


def test_every_mistake_of_every_file_is_reported_at_its_key() -> None:
    problems = problems_of("many_mistakes")
    assert where(problems) == [
        ("calendars.yaml", 3, 16, "calendars.default.time_zone"),
        ("calendars.yaml", 6, 12, "calendars.default.hours.tue"),
        ("calendars.yaml", 8, 16, "calendars.default.holidays.country"),
        ("triggers.yaml", 5, 9, "triggers[0].then[0].asign"),
        ("triggers.yaml", 7, 11, "triggers[1].when"),
        ("triggers.yaml", 11, 29, "triggers[2].when.unreplied_after"),
        ("triggers.yaml", 18, 35, "triggers[3].if.all[0].operator"),
        ("triggers.yaml", 19, 19, "triggers[3].if.all[1].field"),
        ("triggers.yaml", 21, 23, "triggers[3].then[0].set_priority"),
        ("triggers.yaml", 26, 51, "triggers[4].if.any[0].value"),
        ("triggers.yaml", 28, 41, "triggers[4].then[0].reply_with_template.template"),
        ("triggers.yaml", 31, 11, "triggers[5].then"),
        ("triggers.yaml", 32, 5, "triggers[6].name"),
        ("triggers.yaml", 35, 5, "triggers[6].stopp"),
    ]
    text = {p.key_path: p.message for p in problems}
    assert text["triggers[0].then[0].asign"].startswith("expected one of: assign, assign_round_robin, tag")
    assert text["triggers[0].then[0].asign"].endswith("got 'asign' (did you mean 'assign'?)")
    assert "got 'message.recieved'" in text["triggers[1].when"]
    assert text["triggers[2].when.unreplied_after"].startswith("expected a duration like 30m or 4h")
    assert text["triggers[3].if.all[0].operator"] == (
        "tags allows the operators: contains, not_contains, is_empty, is_not_empty; got 'matches'"
    )
    assert "got 'colour'" in text["triggers[3].if.all[1].field"]
    assert (
        text["triggers[3].then[0].set_priority"]
        == "expected one of: low, normal, high, urgent; got 'highest'"
    )
    assert text["triggers[4].if.any[0].value"].startswith("not a valid regular expression")
    assert "Bad Name!" in text["triggers[4].then[0].reply_with_template.template"]
    assert text["triggers[5].then"] == "expected at least one action"
    assert text["triggers[6].name"] == "missing required key 'name'"
    assert "(did you mean 'stop'?)" in text["triggers[6].stopp"]
    assert "Europe/Londn" in text["calendars.default.time_zone"]
    assert "must start before it ends" in text["calendars.default.hours.tue"]


def test_yaml_syntax_duplicates_and_non_text_keys_are_located() -> None:
    problems = problems_of("yaml_syntax")
    assert where(problems) == [
        ("calendars.yaml", 4, 5, "calendars.default.time_zone"),
        ("calendars.yaml", 6, 5, "calendars.default"),
        ("triggers.yaml", 6, 9, ""),
    ]
    messages = [p.message for p in sorted(problems)]
    assert messages[0] == "duplicate key 'time_zone' (first on line 3)"
    assert "put it in quotes" in messages[1]
    assert messages[2].startswith("not valid YAML:")


def test_aliases_are_refused_so_a_small_file_cannot_expand() -> None:
    [problem] = problems_of("aliases")
    assert (problem.line, problem.column) == (2, 12)
    assert "aliases (*a) are not allowed" in problem.message


def test_cross_references_are_checked_at_the_referencing_key() -> None:
    problems = problems_of("cross_refs")
    assert [str(p) for p in sorted(problems)] == [
        "triggers.yaml:6:11: triggers[1].name: trigger name 'same' is used twice (first at triggers[0])",
        "triggers.yaml:8:15: triggers[1].calendar: no calendar 'shanghai' in calendars.yaml; known: default",
    ]


def test_load_raises_a_rule_error_carrying_every_problem() -> None:
    with pytest.raises(RuleError) as caught:
        load_ruleset(DATA / "many_mistakes")
    assert isinstance(caught.value, RuleSetInvalid)
    assert len(caught.value.problems) == 14
    assert str(caught.value).startswith("14 problems in the rule files: calendars.yaml:3:16:")


def test_the_shipped_rules_are_valid() -> None:
    ruleset = load_ruleset(SHIPPED)
    names = [t.name for t in ruleset.triggers.triggers]
    assert names[:2] == ["acknowledge", "complaint"] and len(names) == len(set(names))
    london = ruleset.calendars["default"]
    assert str(london.timezone) == "Europe/London"
    assert london.hours_on(__import__("datetime").date(2026, 12, 25)) == ()
    timed = [t.timed for t in ruleset.triggers.triggers if t.timed is not None]
    assert all(isinstance(t, TimeWhen) for t in timed) and timed


def test_missing_files_get_defaults_and_unknown_files_are_only_warnings(tmp_path: Path) -> None:
    empty = load_ruleset(tmp_path / "absent")
    assert empty.triggers.triggers == () and list(empty.calendars) == ["default"]
    (tmp_path / "README.md").write_text("notes\n")
    (tmp_path / "extra.yaml").write_text("anything: 1\n")
    ruleset = load_ruleset(tmp_path)
    assert len(ruleset.warnings) == 1 and "extra.yaml" in ruleset.warnings[0]


def test_the_version_changes_with_the_bytes_of_the_files(tmp_path: Path) -> None:
    shutil.copytree(SHIPPED, tmp_path / "rules")
    before = load_ruleset(tmp_path / "rules").version
    assert before == load_ruleset(tmp_path / "rules").version
    with (tmp_path / "rules" / "triggers.yaml").open("a") as f:
        f.write("# a comment changes the version too\n")
    assert load_ruleset(tmp_path / "rules").version != before
    assert len(before) == 12


def test_a_calendar_named_default_must_exist(tmp_path: Path) -> None:
    (tmp_path / "calendars.yaml").write_text(
        "calendars:\n  office:\n    time_zone: UTC\n    hours: {mon: ['09:00-17:00']}\n"
    )
    [problem] = check_ruleset(tmp_path)[1]
    assert (problem.line, problem.key_path) == (2, "calendars")
    assert "a calendar named 'default' must exist" in problem.message


def test_registering_a_file_kind_is_one_entry_with_its_own_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydantic import BaseModel, ConfigDict

    from hub.rules.loader import RuleFile

    class Phrases(BaseModel):
        model_config = ConfigDict(extra="forbid")
        phrases: list[str] = []

    def no_duplicates(ruleset: object) -> list[RuleProblem]:
        found = []
        for path, model in ruleset.matching("glossary/*.yaml", Phrases).items():  # type: ignore[attr-defined]
            if len(set(model.phrases)) != len(model.phrases):
                found.append(ruleset.source(path).problem(("phrases",), "duplicate phrase"))  # type: ignore[attr-defined]
        return found

    monkeypatch.setitem(RULE_FILES, "glossary/*.yaml", RuleFile(Phrases, no_duplicates))
    (tmp_path / "glossary").mkdir()
    (tmp_path / "glossary" / "en.yaml").write_text("phrases: [a, b]\n")
    (tmp_path / "glossary" / "zh.yaml").write_text("phrases:\n  - 我不知道\n  - 我不知道\n")
    ruleset, problems = check_ruleset(tmp_path)
    assert [str(p) for p in problems] == ["glossary/zh.yaml:2:3: phrases: duplicate phrase"]
    (tmp_path / "glossary" / "zh.yaml").write_text("phrases: [我不知道]\nwords: 1\n")
    ruleset, problems = check_ruleset(tmp_path)
    expected = "glossary/zh.yaml:2:1: words: expected one of: phrases; got 'words'"
    assert [str(p) for p in problems] == [expected]
    (tmp_path / "glossary" / "zh.yaml").write_text("phrases: [我不知道]\n")
    ruleset, problems = check_ruleset(tmp_path)
    assert ruleset is not None and not problems
    assert ruleset.matching("glossary/*.yaml", Phrases)["glossary/zh.yaml"].phrases == ["我不知道"]


def test_unsafe_tags_tabs_and_several_documents_are_problems(tmp_path: Path) -> None:
    (tmp_path / "triggers.yaml").write_text(
        'triggers: !!python/object/apply:os.system ["touch pwned"]\n', encoding="utf-8"
    )
    (tmp_path / "calendars.yaml").write_text("calendars: {}\n---\nmore: 1\n", encoding="utf-8")
    problems = sorted(check_ruleset(tmp_path)[1])
    located = [(p.file, p.line, p.column) for p in problems]
    assert located == [("calendars.yaml", 2, 1), ("triggers.yaml", 1, 11)]
    assert "expected a single document" in problems[0].message
    assert problems[1].message.startswith("unsupported YAML tag") and not (tmp_path / "pwned").exists()


def test_values_of_the_wrong_shape_say_what_was_expected() -> None:
    found = {(p.file, p.key_path): (p.line, p.column, p.message) for p in problems_of("wrong_shapes")}
    expected = {
        ("calendars.yaml", "calendars.default.hours.mon"): (4, 18, "'9-17' is not a range like 09:00-17:30"),
        ("calendars.yaml", "calendars.default.hours.funday"): (
            4,
            28,
            "expected one of: mon, tue, wed, thu, fri, sat, sun; got 'funday'",
        ),
        ("calendars.yaml", "calendars.default.holidays.dates[0]"): (
            5,
            55,
            "expected a date like 2026-12-24; got 'tomorrow'",
        ),
        ("calendars.yaml", "calendars.default.extra_working_days.not-a-date"): (
            6,
            55,
            "expected a date like 2026-12-24; got 'not-a-date'",
        ),
        ("triggers.yaml", "triggers[0].when"): (3, 11, "expected text; got 5"),
        ("triggers.yaml", "triggers[0].if"): (4, 9, "expected a mapping (key: value); got a list"),
        ("triggers.yaml", "triggers[0].then"): (5, 11, "expected a list; got a mapping"),
        ("triggers.yaml", "triggers[1].then[2].set_status"): (
            12,
            21,
            "expected one of: open, pending, resolved (snoozing needs a time)",
        ),
        ("triggers.yaml", "triggers[1].then[3].assign.agent"): (13, 17, "missing required key 'agent'"),
        ("triggers.yaml", "triggers[1].then[4].add_note.text"): (14, 19, "must not be empty"),
        ("triggers.yaml", "triggers[2].when"): (
            16,
            11,
            "expected exactly one of: unreplied_after, waiting_since",
        ),
        ("triggers.yaml", "triggers[2].stop"): (17, 11, "expected true or false; got 'maybe'"),
        ("triggers.yaml", "triggers[2].then[0].escalate.team"): (18, 23, "expected text; got 3"),
    }
    for key, value in expected.items():
        assert found.pop(key) == value, key
    assert set(found) == {
        ("triggers.yaml", "triggers[1].name"),
        ("triggers.yaml", "triggers[1].when[1]"),
        ("triggers.yaml", "triggers[1].then[0]"),
        ("triggers.yaml", "triggers[1].then[1]"),
        ("triggers.yaml", "triggers2"),
    }
    assert found[("triggers.yaml", "triggers[1].then[0]")][2].endswith("got tag, untag")
    assert found[("triggers.yaml", "triggers[1].then[1]")][2].endswith("got nothing")


def test_an_impossible_date_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "calendars.yaml").write_text(
        "calendars:\n  default:\n    time_zone: UTC\n    hours: {}\n    holidays: {dates: [2026-13-01]}\n",
        encoding="utf-8",
    )
    [problem] = check_ruleset(tmp_path)[1]
    assert (problem.line, problem.column, problem.key_path) == (5, 24, "calendars.default.holidays.dates[0]")
    assert "month must be in 1..12" in problem.message
