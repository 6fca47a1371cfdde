"""The shipped rules treat faxes as the etiquette says: the e-mail first-response SLA (F4)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from hub.rules.conditions import Facts
from hub.rules.source import RuleSource

ROOT = Path(__file__).resolve().parents[1]

FAX = Facts(
    channel="fax", mailbox="fax", subject="Fax from +442079460958", body="Fax from +442079460958: 2 pages.",
    sender="+442079460958", language="en", tags=frozenset(), priority="normal", status="open", team=None,
    assignee=None, in_business_hours=True, contact_name=None,
)  # fmt: skip


async def test_faxes_get_the_same_sla_policy_as_mail() -> None:
    book = (await RuleSource(ROOT / "rules").load()).policies
    fax = book.select(FAX)
    mail = book.select(dataclasses.replace(FAX, channel="email", sender="ana@example.com"))
    call = book.select(dataclasses.replace(FAX, channel="voice"))
    assert fax is not None and mail is not None and call is not None
    assert fax.name == mail.name
    assert fax.targets == mail.targets
    assert call.name != fax.name
