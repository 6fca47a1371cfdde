"""Records that cross to and from worker processes pickle to equal records."""

from __future__ import annotations

import pickle
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime

import pytest

from hub.content import Filled
from hub.models import ChannelKind, Identity, IdentityKind, InboundAttachment, InboundMessage
from hub.prepare import Prepared


def _message() -> InboundMessage:
    return InboundMessage(
        channel=ChannelKind.EMAIL,
        channel_account="support",
        external_id="<a@example.com>",
        sender=Identity.of(IdentityKind.EMAIL, "Priya@Example.com"),
        text="hello",
        received_at=datetime(2026, 11, 1, tzinfo=UTC),
        subject="Order 1",
        attachments=(InboundAttachment("a.pdf", "application/pdf", b"%PDF"),),
        own_refs=("<a@example.com>",),
        meta={"imap": {"uid": 7}},
        content_pending=True,
    )


def test_a_filled_message_survives_pickling_whole() -> None:
    filled = Filled(3, Prepared(_message(), "ab" * 32, ({"filename": "a.pdf"},), ("note",), "hello", b"raw"))
    back = pickle.loads(pickle.dumps(filled, protocol=pickle.HIGHEST_PROTOCOL))
    assert back == filled
    assert back.prepared is not None and back.prepared.message.sender == filled.prepared.message.sender  # type: ignore[union-attr]


def test_an_unpickled_record_stays_frozen() -> None:
    back = pickle.loads(pickle.dumps(_message()))
    with pytest.raises(FrozenInstanceError):
        back.text = "changed"  # type: ignore[misc]
