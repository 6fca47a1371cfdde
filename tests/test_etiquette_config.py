"""rules/etiquette.yaml and rules/phrases/*.yaml: the shipped files load; bad data is refused clearly."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from hub.errors import RuleError
from hub.etiquette import Draft, EtiquetteFileError, EtiquetteRules, check, load_etiquette
from hub.models import ChannelKind

RULES = Path(__file__).resolve().parent.parent / "rules"


def test_the_shipped_rules_load_and_cover_every_language_rule_in_both_languages() -> None:
    rules = EtiquetteRules.from_dir(RULES)
    covered = {(e.rule, lang) for e, lang in zip(rules.phrases.entries, rules.phrases.languages, strict=True)}
    assert covered == {
        (rule, lang) for rule in ("L1", "L2", "L3", "L4", "L5", "L6", "L7") for lang in ("en", "zh")
    }
    assert rules.phrases.matcher.size > 900
    assert rules.config.E3.warn_length == 50 and rules.config.E3.max_length == 78
    assert rules.config == load_etiquette({}, {}).config.model_copy(update={"E8": rules.config.E8}), (
        "etiquette.yaml spells out the defaults (only the custom words differ)"
    )


def _error(etiquette: Any = None, phrases: dict[str, Any] | None = None) -> EtiquetteFileError:
    with pytest.raises(EtiquetteFileError) as caught:
        load_etiquette(etiquette, phrases or {})
    return caught.value


@pytest.mark.parametrize(
    ("etiquette", "loc", "words"),
    [
        ({"E3": {"max_lenght": 70}}, ("E3", "max_lenght"), "Extra inputs"),
        ({"E3": {"warn_length": 90}}, ("E3",), "warn_length must not be greater than max_length"),
        ({"E3": {"token_format": "[#]"}}, ("E3", "token_format"), "{id}"),
        ({"E3": {"severity": "fatal"}}, ("E3", "severity"), "'error' or 'warning'"),
        ({"E3": {"channels": ["pigeon"]}}, ("E3", "channels", 0), "email"),
        ({"E4": {"max_lines": 0}}, ("E4", "max_lines"), "greater than 0"),
        ({"E6": {"required_fields": ["name", "shoe size"]}}, ("E6", "required_fields", 1), "phone"),
        ({"E6": {"delimiter": "  "}}, ("E6", "delimiter"), "single line"),
        (
            {
                "E7": {
                    "channels": {
                        "email": {"allowed_types": ["exe"], "max_file_bytes": 1, "max_total_bytes": 1}
                    }
                }
            },
            ("E7", "channels", "email", "allowed_types", 0),
            "pdf",
        ),
        (
            {
                "E7": {
                    "channels": {"fax": {"allowed_types": ["pdf"], "max_file_bytes": 9, "max_total_bytes": 1}}
                }
            },
            ("E7", "channels", "fax"),
            "max_file_bytes must not be greater",
        ),
        ({"E8": {"languages": {"zh": True}}}, ("E8", "languages"), "no Chinese spell checker"),
        ({"phrases": {"L9": {}}}, ("phrases", "L9"), "Extra inputs"),
        (["E3"], (), "valid dictionary"),
    ],
)
def test_an_invalid_etiquette_file_is_refused_with_the_key_path(
    etiquette: Any, loc: tuple[Any, ...], words: str
) -> None:
    error = _error(etiquette)
    assert isinstance(error, RuleError) and error.file == "etiquette.yaml"
    [detail] = error.error.errors()
    assert detail["loc"][: len(loc)] == loc and words in detail["msg"], detail


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ({"rule": "L3", "phrases": ["we only keep"]}, "needs a rewrite"),
        ({"rule": "L4", "phrases": ["RMA"]}, "needs an explanation"),
        ({"rule": "L7", "phrases": ["policy"]}, "needs a role"),
        ({"rule": "L1", "phrases": ["idk"], "role": "policy"}, "role is only for"),
        ({"rule": "L1", "phrases": ["idk"], "rewrite": "Let me check"}, "rewrite is only for L3"),
        ({"rule": "L8", "phrases": ["idk"]}, "'L1'"),
        ({"rule": "L1", "phrases": []}, "at least 1 item"),
        ({"rule": "L1", "phrases": [""]}, "at least 1 character"),
        ({"rule": "L1", "phrase": "idk"}, "Extra inputs"),
        ({"rule": "L1", "phrases": ["idk"], "severity": "info"}, "'error' or 'warning'"),
        ({"rule": "L1", "phrases": ["idk"], "language": "fr"}, "'en' or 'zh'"),
    ],
)
def test_an_invalid_phrase_entry_is_refused_naming_the_file_and_entry(
    entry: dict[str, Any], words: str
) -> None:
    error = _error(
        {},
        {"phrases/ok.yaml": {"language": "en"}, "phrases/bad.yaml": {"language": "en", "entries": [entry]}},
    )
    assert error.file == "phrases/bad.yaml"
    details = error.error.errors()
    assert details[0]["loc"][:2] == ("entries", 0)
    assert any(words in d["msg"] for d in details), details


def test_a_single_phrase_may_be_written_as_a_string() -> None:
    rules = load_etiquette(
        {}, {"p.yaml": {"language": "zh", "entries": [{"rule": "L1", "phrases": "不晓得"}]}}
    )
    assert rules.phrases.entries[0].phrases == ("不晓得",)


def test_from_dir_reads_yaml_and_reports_the_bad_file(tmp_path: Path) -> None:
    (tmp_path / "phrases").mkdir()
    (tmp_path / "etiquette.yaml").write_text("E4:\n  max_lines: 30\n", encoding="utf-8")
    (tmp_path / "phrases" / "a.yaml").write_text(
        yaml.safe_dump(
            {"language": "zh", "entries": [{"rule": "L6", "phrases": ["你懂吗"]}]}, allow_unicode=True
        ),
        encoding="utf-8",
    )
    rules = EtiquetteRules.from_dir(tmp_path)
    assert rules.config.E4.max_lines == 30
    assert [f.rule_id for f in check(Draft(ChannelKind.CHAT, None, "你懂吗？"), rules, "zh")] == ["L6"]
    (tmp_path / "phrases" / "b.yaml").write_text("language: en\nentries:\n  - rule: L2\n", encoding="utf-8")
    with pytest.raises(EtiquetteFileError) as caught:
        EtiquetteRules.from_dir(tmp_path)
    assert caught.value.file == "phrases/b.yaml" and caught.value.error.errors()[0]["loc"] == (
        "entries",
        0,
        "phrases",
    )


def test_compiled_rules_are_immutable() -> None:
    rules = load_etiquette({}, {})
    with pytest.raises(ValidationError):
        rules.config.E3.max_length = 10  # type: ignore[misc]
    with pytest.raises(AttributeError):
        rules.config = rules.config  # type: ignore[misc]


def test_one_rule_set_serves_many_threads_with_the_same_results() -> None:
    rules = EtiquetteRules.from_dir(RULES)
    texts = [
        "I don't know, that's not my department. 我也不知道，您问问别人吧。",
        "Due to company policy we cannot refund opened items. 包裹已妥投。",
        "We only keep it until 6. 这很简单的，你懂吗？ recieved",
    ] * 10
    expected = [check(Draft(ChannelKind.CHAT, None, t), rules, "en") for t in texts]
    results: dict[int, list[Any]] = {}

    def work(index: int) -> None:
        results[index] = [check(Draft(ChannelKind.CHAT, None, t), rules, "en") for t in texts]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(results[i] == expected for i in range(8))
    assert all(findings for findings in expected)
