"""IMAP wire details without a server: mailbox name encoding, UID sets, response parsing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from channels.email.imap import responses, utf7
from channels.email.imap.client import uid_set, uid_set_pieces


def test_mailbox_names_in_modified_utf7_round_trip() -> None:
    assert utf7.encode("~peter/mail/台北/日本語") == "~peter/mail/&U,BTFw-/&ZeVnLIqe-"  # RFC 3501 5.1.3
    for name in ("INBOX", "A&B", "Entwürfe", "传真 Fax", 'Say "hi"'):
        assert utf7.decode(utf7.encode(name)) == name
    assert utf7.quoted('Say "hi" \\ there') == '"Say \\"hi\\" \\\\ there"'
    injected = utf7.quoted("INBOX\r\nA1 DELETE INBOX")  # control characters travel base64-encoded
    assert "\r" not in injected and "\n" not in injected
    assert utf7.decode(injected[1:-1]) == "INBOX\r\nA1 DELETE INBOX"


def test_uid_sets_are_compact() -> None:
    assert uid_set([1, 2, 3, 5, 7, 8, 10]) == "1:3,5,7:8,10"
    assert uid_set([42]) == "42"
    assert uid_set_pieces(range(1, 100_001)) == ["1:100000"]
    pieces = uid_set_pieces(range(1, 3000, 2), max_chars=100)
    assert all(len(p) <= 100 for p in pieces)
    assert [int(u) for p in pieces for u in p.split(",")] == list(range(1, 3000, 2))


def test_responses_are_read_whatever_the_item_order() -> None:
    select = [b"FLAGS (\\Seen)", b"12 EXISTS", b"OK [UIDVALIDITY 1795] UIDs valid", b"OK [UIDNEXT 40] next"]
    status = responses.mailbox_status(select)
    assert (status.uidvalidity, status.uidnext, status.highest_modseq, status.exists) == (1795, 40, None, 12)
    assert responses.search_uids([b"3 1 2", b"Search completed"]) == [1, 2, 3]
    assert responses.search_uids([b"SEARCH", b"Search completed"]) == []
    fetch = [
        b'1 FETCH (UID 7 INTERNALDATE "21-Nov-2026 10:30:00 +0100" BODY[] {5}',
        bytearray(b"hello"),
        b")",
        b"2 FETCH (BODY[] {3}",
        bytearray(b"bye"),
        b" UID 9)",
        b"3 FETCH (FLAGS (\\Seen) UID 9)",
        b"Fetch completed",
    ]
    assert responses.bodies(fetch) == {7: b"hello", 9: b"bye"}
    assert responses.internal_dates(fetch) == {7: datetime(2026, 11, 21, 9, 30, tzinfo=UTC)}
    assert responses.sizes([b"1 FETCH (UID 4 RFC822.SIZE 2048)", b"Fetch completed"]) == {4: 2048}
    with pytest.raises(ValueError, match="UIDVALIDITY"):
        responses.mailbox_status([b"3 EXISTS"])
