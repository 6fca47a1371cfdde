"""Conditions: each field with its operators, groups and nesting, and what is refused at load."""

from __future__ import annotations

import unicodedata
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from hub.rules.conditions import OPERATORS, Condition, Conditions, Facts, matches

FACTS = Facts(
    channel="email",
    mailbox="support",
    subject="Re: Order #48213 — REFUND please",
    body="My parcel never arrived. 我要投诉！",
    sender="priya.patel@example.com",
    language="en",
    tags=frozenset({"vip", "complaint"}),
    priority="high",
    status="open",
    team="billing",
    assignee=None,
    in_business_hours=True,
    contact_name="Priya Patel",
)


def cond(field: str, operator: str, value: Any = None) -> Conditions:
    item: dict[str, Any] = {"field": field, "operator": operator}
    if value is not None:
        item["value"] = value
    return Conditions.model_validate({"all": [item]})


@pytest.mark.parametrize(
    ("field", "operator", "value", "expected"),
    [
        ("channel", "is", "email", True),
        ("channel", "is", "EMAIL", True),
        ("channel", "is_not", "email", False),
        ("channel", "in", ["sms", "email"], True),
        ("channel", "not_in", ["sms", "fax"], True),
        ("mailbox", "starts_with", "supp", True),
        ("mailbox", "is_empty", None, False),
        ("subject", "contains", "refund", True),
        ("subject", "not_contains", "invoice", True),
        ("subject", "matches", r"order #\d+", True),
        ("subject", "matches", r"^order", False),
        ("subject", "starts_with", "re:", True),
        ("subject", "ends_with", "PLEASE", True),
        ("body", "contains", "投诉", True),
        ("body", "contains", "ＡＲＲＩＶＥＤ", True),
        ("body", "matches", "投诉|退款", True),
        ("sender", "ends_with", "@example.com", True),
        ("sender", "is", "someone@example.com", False),
        ("language", "is", "zh", False),
        ("language", "in", ["en", "zh"], True),
        ("tags", "contains", "VIP", True),
        ("tags", "not_contains", "spam", True),
        ("tags", "is_empty", None, False),
        ("tags", "is_not_empty", None, True),
        ("priority", "is", "high", True),
        ("priority", "at_least", "normal", True),
        ("priority", "at_least", "urgent", False),
        ("priority", "at_most", "high", True),
        ("priority", "in", ["low", "normal"], False),
        ("status", "is", "open", True),
        ("status", "not_in", ["resolved"], True),
        ("team", "is", "Billing", True),
        ("assignee", "is_empty", None, True),
        ("assignee", "is_not_empty", None, False),
        ("assignee", "is", "alice", False),
        ("in_business_hours", "is", True, True),
        ("in_business_hours", "is", False, False),
        ("contact_name", "contains", "patel", True),
    ],
)
def test_each_field_and_operator(field: str, operator: str, value: Any, expected: bool) -> None:
    assert matches(cond(field, operator, value), FACTS) is expected


def test_every_field_is_covered_by_the_table() -> None:
    covered = {"channel", "mailbox", "subject", "body", "sender", "language", "tags", "priority"}
    covered |= {"status", "team", "assignee", "in_business_hours", "contact_name"}
    assert covered == set(OPERATORS)


def test_unknown_business_hours_never_match() -> None:
    unknown = replace(FACTS, in_business_hours=None)
    assert not matches(cond("in_business_hours", "is", True), unknown)
    assert not matches(cond("in_business_hours", "is", False), unknown)


def test_groups_all_any_nesting_and_empty() -> None:
    assert matches(None, FACTS)
    assert matches(Conditions(), FACTS)
    nested = Conditions.model_validate(
        {
            "all": [{"field": "channel", "operator": "is", "value": "email"}],
            "any": [
                {"field": "tags", "operator": "contains", "value": "nothing"},
                {
                    "all": [
                        {"field": "priority", "operator": "at_least", "value": "high"},
                        {"field": "body", "operator": "matches", "value": "never arrived"},
                    ]
                },
            ],
        }
    )
    assert matches(nested, FACTS)
    assert not matches(nested, replace(FACTS, priority="normal"))
    assert not matches(nested, replace(FACTS, channel="sms"))
    only_any = Conditions.model_validate(
        {"any": [{"field": "status", "operator": "is", "value": "resolved"}]}
    )
    assert not matches(only_any, FACTS)


@pytest.mark.parametrize(
    ("item", "location", "message"),
    [
        ({"field": "colour", "operator": "is", "value": "x"}, ("field",), "expected one of: channel"),
        ({"field": "tags", "operator": "is", "value": "x"}, ("operator",), "tags allows the operators"),
        (
            {"field": "body", "operator": "matches", "value": "(x"},
            ("value",),
            "not a valid regular expression",
        ),
        ({"field": "channel", "operator": "is", "value": "pigeon"}, ("value",), "expected one of: email"),
        ({"field": "priority", "operator": "at_least", "value": "huge"}, ("value",), "low, normal"),
        ({"field": "status", "operator": "in", "value": "open"}, ("value",), "expects a list"),
        ({"field": "in_business_hours", "operator": "is", "value": "yes"}, ("value",), "true or false"),
        ({"field": "tags", "operator": "is_empty", "value": "x"}, ("value",), "takes no value"),
        ({"field": "body", "operator": "contains", "value": 3}, ("value",), "expects a text value"),
        ({"field": "body", "operator": "contains"}, ("value",), "expects a text value"),
    ],
)
def test_values_that_do_not_fit_are_refused_at_load(
    item: dict[str, Any], location: tuple[str], message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        Condition.model_validate(item)
    [error] = caught.value.errors()
    assert error["loc"] == location
    assert message in error["msg"]


def test_regular_expressions_ignore_case_and_are_compiled_once() -> None:
    c = Condition.model_validate({"field": "subject", "operator": "matches", "value": "REFUND"})
    assert c._pattern is not None and c._pattern.flags & 2
    assert c.test(FACTS)


TEXT = st.text(alphabet="abcABC 投诉ｆｕｌｌ-", max_size=12)


@given(actual=TEXT, value=TEXT.filter(bool), tags=st.frozensets(st.sampled_from(["a", "b", "vip"])))
def test_negated_operators_are_exact_complements(actual: str, value: str, tags: frozenset[str]) -> None:
    facts = replace(FACTS, subject=actual, body=actual, contact_name=actual or None, tags=tags)
    pairs = [("contains", "not_contains"), ("is", "is_not"), ("is_empty", "is_not_empty")]
    for field in ("subject", "body", "contact_name"):
        for yes, no in pairs:
            v = None if yes == "is_empty" else value
            assert matches(cond(field, yes, v), facts) is not matches(cond(field, no, v), facts)
    for yes, no in (("contains", "not_contains"), ("is_empty", "is_not_empty")):
        v = None if yes == "is_empty" else "vip"
        assert matches(cond("tags", yes, v), facts) is not matches(cond("tags", no, v), facts)

    def fold(text: str) -> str:
        return unicodedata.normalize("NFKC", text).casefold()

    assert matches(cond("subject", "contains", value), facts) is (fold(value) in fold(actual))


@given(
    have=st.sampled_from(["low", "normal", "high", "urgent"]),
    want=st.sampled_from(["low", "normal", "high", "urgent"]),
)
def test_priority_bounds_follow_the_order_low_normal_high_urgent(have: str, want: str) -> None:
    order = ["low", "normal", "high", "urgent"]
    facts = replace(FACTS, priority=have)
    assert matches(cond("priority", "at_least", want), facts) is (order.index(have) >= order.index(want))
    assert matches(cond("priority", "at_most", want), facts) is (order.index(have) <= order.index(want))
