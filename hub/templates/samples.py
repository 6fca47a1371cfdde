"""The variables templates are rendered with, as sample data in English and Chinese.

This is the reference for what a template may use (templates/README.md lists it too); the
checks render every template with it, so a misspelt or unknown variable is reported. Every
string is distinctive, so a check can tell from the output whether a field was rendered.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from hub.templates.dates import Language

SAMPLE_TIMEZONES: Mapping[Language, str] = {"en": "Europe/London", "zh": "Asia/Shanghai"}

_COMMON: dict[str, Any] = {
    "conversation": {
        "id": 48213,
        "channel": "email",
        "opened_at": datetime(2031, 3, 10, 8, 12, tzinfo=UTC),
        "last_reply_at": datetime(2031, 3, 11, 14, 5, tzinfo=UTC),
        "resolved_at": datetime(2031, 3, 12, 9, 40, tzinfo=UTC),
    },
    "reply_by": datetime(2031, 3, 11, 9, 0, tzinfo=UTC),
    "hold": {"wait": timedelta(minutes=4)},
}

SAMPLES: Mapping[Language, Mapping[str, Any]] = {
    "en": _COMMON
    | {
        "customer": {"name": "Harriet Quennell", "language": "en", "timezone": "Europe/London"},
        "agent": {
            "name": "Mira Okafor",
            "title": "Senior Support Specialist",
            "department": "Customer Care",
            "email": "mira.okafor@example.com",
            "phone": "+44 113 496 0321",
            "address": "18 Harbour Street, Leeds LS1 4AB",
        },
        "team": {
            "name": "Northern Support Desk",
            "department": "Customer Care",
            "email": "support@example.com",
            "phone": "+44 113 496 0300",
            "address": "18 Harbour Street, Leeds LS1 4AB",
        },
        "company": {
            "name": "Brightwater Supplies",
            "address": "18 Harbour Street, Leeds LS1 4AB",
            "phone": "+44 113 496 0300",
            "email": "hello@example.com",
            "website": "https://example.com",
        },
        "conversation": _COMMON["conversation"] | {"subject": "Replacement kettle lid"},
        "business_hours": "Monday to Friday, 9:00 to 17:30",
        "alternative_contact": {
            "name": "Jonas Brekke",
            "phone": "+44 113 496 0999",
            "email": "duty@example.com",
        },
        "complaint": {
            "summary": "the delivery arrived two days late",
            "next_step": "a courier will collect the damaged parcel on Thursday morning",
        },
        "refusal": {
            "request": "a refund after 120 days",
            "reason": "the warranty covers repairs rather than refunds after 90 days",
            "alternatives": ["a free repair within five working days", "a 20% discount on a new kettle"],
        },
        "callback": {
            "reason": "the missing warranty card",
            "contact": "+44 113 496 0377",
            "best_time": "weekdays after 14:00",
        },
        "fax": {
            "sender": {
                "name": "Mira Okafor",
                "company": "Brightwater Supplies",
                "phone": "+44 113 496 0321",
                "fax": "+44 113 496 0388",
                "email": "mira.okafor@example.com",
            },
            "recipient": {
                "name": "Priya Ramanathan",
                "company": "Ramanathan Hardware",
                "phone": "+44 161 496 0555",
                "fax": "+44 161 496 0556",
            },
            "subject": "Signed return authorisation",
            "date": datetime(2031, 3, 11, 10, 30, tzinfo=UTC),
            "pages": 7,
            "confidential": True,
        },
    },
    "zh": _COMMON
    | {
        "customer": {"name": "欧阳晓燕", "language": "zh", "timezone": "Asia/Shanghai"},
        "agent": {
            "name": "王丽娟",
            "title": "高级客服专员",
            "department": "客户服务部",
            "email": "wang.lijuan@example.com",
            "phone": "+86 21 6235 0321",
            "address": "上海市静安区南京西路1266号",
        },
        "team": {
            "name": "华东客服中心",
            "department": "客户服务部",
            "email": "support@example.com",
            "phone": "+86 21 6235 0300",
            "address": "上海市静安区南京西路1266号",
        },
        "company": {
            "name": "明水供应有限公司",
            "address": "上海市静安区南京西路1266号",
            "phone": "+86 21 6235 0300",
            "email": "hello@example.com",
            "website": "https://example.com",
        },
        "conversation": _COMMON["conversation"] | {"subject": "更换水壶盖"},
        "business_hours": "周一至周五 9:00至17:30",
        "alternative_contact": {
            "name": "赵建国",
            "phone": "+86 21 6235 0999",
            "email": "duty@example.com",
        },
        "complaint": {
            "summary": "包裹晚到了两天",
            "next_step": "快递员将于周四上午上门取回损坏的包裹",
        },
        "refusal": {
            "request": "购买120天后退款",
            "reason": "超过90天后保修只提供维修而不提供退款",
            "alternatives": ["五个工作日内免费维修", "购买新水壶享八折优惠"],
        },
        "callback": {
            "reason": "缺少的保修卡",
            "contact": "+86 21 6235 0377",
            "best_time": "工作日下午两点以后",
        },
        "fax": {
            "sender": {
                "name": "王丽娟",
                "company": "明水供应有限公司",
                "phone": "+86 21 6235 0321",
                "fax": "+86 21 6235 0388",
                "email": "wang.lijuan@example.com",
            },
            "recipient": {
                "name": "李国栋",
                "company": "国栋五金行",
                "phone": "+86 10 8529 0555",
                "fax": "+86 10 8529 0556",
            },
            "subject": "已签署的退货授权书",
            "date": datetime(2031, 3, 11, 10, 30, tzinfo=UTC),
            "pages": 7,
            "confidential": True,
        },
    },
}
"""Sample contexts by language; `SAMPLE_TIMEZONES` gives the time zone they render in."""

ALTERNATIVES: Mapping[str, Any] = {
    "reply_by": datetime(2031, 4, 22, 9, 0, tzinfo=UTC),
    "fax.date": datetime(2031, 5, 27, 15, 45, tzinfo=UTC),
    "fax.pages": 12,
    "fax.confidential": False,
    "conversation.id": 70519,
    "hold.wait": timedelta(minutes=25),
}
"""Second values for fields that are not strings: a template renders such a field when
changing it to this value changes the output."""


def lookup(context: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path such as `agent.name`; KeyError if absent."""
    value: Any = context
    for part in path.split("."):
        value = value[part]
    return value


def replaced(context: Mapping[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `context` with the value at a dotted path replaced."""
    head, _, rest = path.partition(".")
    copy = dict(context)
    copy[head] = replaced(context[head], rest, value) if rest else value
    return copy
