"""Phrase matching as people really type: folding, boundaries, variants, exceptions, spans (L1-L7)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.etiquette import Draft, EtiquetteRules, check, load_etiquette
from hub.etiquette.matcher import english_variants
from hub.etiquette.normalize import fold
from hub.models import ChannelKind

RULES = Path(__file__).resolve().parent.parent / "rules"
L1_EN = {"rule": "L1", "phrases": ["I don't know", "dunno", "idk"], "except": ["I don't know if you"]}
L1_ZH = {"rule": "L1", "phrases": ["我不知道", "我也不知道", "不清楚"], "except": ["不知道您是否"]}


def _rules(*entries: dict[str, object]) -> EtiquetteRules:
    return load_etiquette({}, {"phrases/test.yaml": {"language": "en", "entries": list(entries)}})


def _found(rules: EtiquetteRules, text: str) -> list[tuple[str, str]]:
    """(rule ID, original text under the span) of each phrase finding."""
    findings = check(Draft(ChannelKind.CHAT, None, text), rules, "en")
    return [
        (f.rule_id, text[f.span[0] : f.span[1]]) for f in findings if f.span and f.rule_id.startswith("L")
    ]


@pytest.fixture(scope="module")
def shipped() -> EtiquetteRules:
    return EtiquetteRules.from_dir(RULES)


@pytest.fixture(scope="module")
def l1() -> EtiquetteRules:
    return _rules(L1_EN, {**L1_ZH, "language": "zh"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Well, I DON'T know.", "I DON'T know"),
        ("i   don't\tknow", "i   don't\tknow"),
        ("I don't-know", "I don't-know"),
        ("I don’t know", "I don’t know"),
        ("I do not know", "I do not know"),
        ("I dont know", "I dont know"),
        ("Idontknow", "Idontknow"),
        ("ｉ ｄｏｎ＇ｔ ｋｎｏｗ", "ｉ ｄｏｎ＇ｔ ｋｎｏｗ"),
        ("Dunno, sorry", "Dunno"),
        ("IDK!!", "IDK"),
        ("我不知道", "我不知道"),
        ("我、不、知道。", "我、不、知道"),
        ("我 不 知 道", "我 不 知 道"),
        ("我也不知道呢", "我也不知道"),
        ("这个不清楚", "不清楚"),
        ("客户问的我不知道 really", "我不知道"),
        ("I don't know 具体原因", "I don't know"),
        ("具体原因I don't know", "I don't know"),
    ],
)
def test_phrases_are_found_as_people_type_them_and_spans_cover_the_original(
    l1: EtiquetteRules, text: str, expected: str
) -> None:
    assert _found(l1, text) == [("L1", expected)]


@pytest.mark.parametrize(
    "text",
    [
        "Let me know when it arrives.",
        "The sender is unknown.",
        "I know what happened.",
        "We know the courier.",
        "Candidates: kidk, idkfa, midkey",
        "I don't know if you saw my last mail.",
        "不知道您是否方便接电话？",
        "我知道了",
        "I don'tknowingly ship late",
    ],
)
def test_english_respects_word_boundaries_and_exceptions_hold(l1: EtiquetteRules, text: str) -> None:
    assert _found(l1, text) == []


def test_an_exception_does_not_reach_across_clause_punctuation(l1: EtiquetteRules) -> None:
    assert _found(l1, "我不知道，您是否可以问问别人") == [("L1", "我不知道")]
    assert _found(l1, "我不知道您是否方便") == []


def test_contractions_match_spelt_out_forms_both_ways() -> None:
    assert {"i do not know", "i don't know"} <= english_variants("I don't know")
    assert "we can't help" in english_variants("we cannot help")
    assert "you are wrong" in english_variants("you're wrong")


def test_overlapping_hits_of_one_rule_report_the_longest_once(l1: EtiquetteRules) -> None:
    rules = _rules({"rule": "L1", "phrases": ["不知道", "我也不知道"], "language": "zh"})
    assert _found(rules, "这个我也不知道") == [("L1", "我也不知道")]


def test_one_text_can_break_several_rules_in_text_order(shipped: EtiquetteRules) -> None:
    text = "No idea, that's not my department. You're wrong, as I already told you."
    assert [rule for rule, _ in _found(shipped, text)] == ["L1", "L2", "L5", "L6"]


def test_characters_that_fold_to_several_map_back_to_one_original_character() -> None:
    rules = _rules({"rule": "L4", "phrases": ["grosse strasse", "fine"], "explanation": "street"})
    text = "ﬁne: Große Straße 5"
    assert _found(rules, text) == [("L4", "ﬁne"), ("L4", "Große Straße")]


def test_fold_keeps_question_and_exclamation_marks_and_drops_other_punctuation() -> None:
    assert fold("You know?！ (Really)").text == "youknow?!really"
    assert fold("我、不，知道。").text == "我不知道"


@settings(max_examples=200, deadline=None)
@given(
    before=st.text(max_size=30),
    after=st.text(max_size=30),
    spacing=st.sampled_from(["", " ", "  ", "\u3000", "、", "-", "\n"]),
)
def test_a_chinese_phrase_is_found_anywhere_with_its_span_on_the_original(
    l1: EtiquetteRules, before: str, after: str, spacing: str
) -> None:
    phrase = spacing.join("我不知道")
    text = f"{before}。{phrase}。{after}"
    hits = [h for h in l1.phrases.matcher.find(text) if h.start == len(before) + 1]
    assert hits and text[hits[0].start : hits[0].end] == phrase


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_every_span_lies_inside_the_text_and_starts_and_ends_on_kept_characters(
    shipped: EtiquetteRules, text: str
) -> None:
    for hit in shipped.phrases.matcher.find(text):
        assert 0 <= hit.start < hit.end <= len(text)
        assert fold(text[hit.start : hit.end]).text, (text, hit)
        assert fold(text[hit.start]).text and fold(text[hit.end - 1]).text


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=100))
def test_folding_maps_every_folded_character_to_a_character_that_folds_to_it(text: str) -> None:
    folded = fold(text)
    for index, char in enumerate(folded.text):
        origin = folded.origin(index)
        assert char in fold(text[origin]).text
