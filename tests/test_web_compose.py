"""The composer's API: channels to answer on (a voicemail by e-mail), reply templates, attachments (E7)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from channels.memory import MemoryChannel
from hub import uploads
from hub.errors import PayloadTooLarge
from hub.models import ChannelKind, Identity, IdentityKind, Role
from hub.outbox import Dispatcher
from hub.services import Services
from hub.store import schema
from hub.web import create_app
from tests.conftest import FakeClock
from tests.conftest_web import Caller, as_role, services_with_channels
from tests.factories import inbound

ROOT = Path(__file__).resolve().parent.parent
MON_9 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"
CHANNELS = [
    {"name": "phones", "kind": "memory", "carries": ["voicemail"]},
    {"name": "mail", "kind": "memory", "carries": ["email"]},
]
COMPANY = {
    "name": "Example Trading Ltd",
    "department": "Customer Support",
    "address": "1 Example Street, London EC1A 1AA",
    "phone": "+44 20 7946 0000",
    "email": "support@example.com",
}


@pytest.fixture
async def hub(make_config: Any, clock: FakeClock, tmp_path: Path) -> AsyncIterator[Services]:
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    clock.now = MON_9

    def config(**sections: Any) -> Any:
        return make_config(rules_dir=str(rules), company=COMPANY, **sections)

    async with services_with_channels(config, clock, CHANNELS) as services:
        await services.rules.load()
        yield services


@pytest.fixture
async def agent(aiohttp_client: Any, hub: Services) -> Caller:
    client: TestClient[Any, Any] = await aiohttp_client(create_app(hub))
    return await as_role(client, hub, Role.AGENT)


async def voicemail(hub: Services) -> int:
    """A voicemail from a caller the hub also knows by e-mail."""
    result = await hub.inbox.ingest(
        inbound(
            "vm-1",
            "+442079460123",
            channel=ChannelKind.VOICEMAIL,
            account="phones",
            text="Hello, this is Ana about order 2291, please call me back.",
            at=MON_9,
        )
    )
    mail = await hub.inbox.ingest(
        inbound("<earlier@example.com>", "ana@example.com", account="mail", at=MON_9)
    )
    await hub.contacts.merge(mail.contact_id, result.contact_id)
    return result.conversation_id


async def upload(agent: Caller, name: str, data: bytes, content_type: str, expect: int = 201) -> Any:
    return await agent.call(
        "POST",
        f"/api/uploads?filename={name}",
        data=data,
        headers={"Content-Type": content_type},
        expect=expect,
    )


async def test_a_voicemail_can_be_answered_by_email_with_a_template(hub: Services, agent: Caller) -> None:
    cid = await voicemail(hub)
    options = await agent.get(f"/api/conversations/{cid}/compose")
    routes = {(r["channel"], r["account"], r["to"]): r for r in options["routes"]}
    assert routes[("voicemail", "phones", "+442079460123")]["current"] is True
    by_mail = routes[("email", "mail", "ana@example.com")]
    assert by_mail["current"] is False and by_mail["attachments"] is True
    offered = options["templates"]["email"]
    assert "complaint_reply" in offered and "refusal" in offered
    assert not {"acknowledge", "signature_team", "complaint_reply_subject", "chat_greeting"} & set(offered)

    rendered = await agent.post(
        f"/api/conversations/{cid}/template", {"template": "complaint_reply", "channel": "email"}
    )
    assert rendered["text"].strip() and rendered["subject"]
    assert "-- " not in rendered["text"].splitlines()

    via = {"account": "mail", "to": "ana@example.com"}
    text = f"{rendered['text']}\n\nWe will call you back today."
    message = await agent.post(
        f"/api/conversations/{cid}/reply",
        {"text": text, "subject": "Your order 2291", "via": via},
        expect=202,
    )
    assert message["channel"] == "email" and message["channel_account"] == "mail"
    dispatcher = Dispatcher(hub.db, hub.outbox, hub.channels, hub.config.outbox, hub.clock)
    assert await dispatcher.dispatch_once() == 1
    mail = hub.channels["mail"]
    assert isinstance(mail, MemoryChannel)
    sent = mail.sent[0]
    assert sent.recipient == Identity(IdentityKind.EMAIL, "ana@example.com")
    assert sent.conversation_id == cid and f"[#{cid}]" in (sent.subject or "")


async def test_a_route_the_contact_does_not_have_is_refused(hub: Services, agent: Caller) -> None:
    cid = await voicemail(hub)
    via = {"account": "mail", "to": "someone.else@example.com"}
    await agent.post(f"/api/conversations/{cid}/reply", {"text": "Hello Ana.", "via": via}, expect=409)
    await agent.post(f"/api/conversations/{cid}/template", {"template": "no_such_template"}, expect=422)
    unresolved = await agent.post(f"/api/conversations/{cid}/template", {"template": "followup"}, expect=422)
    assert "followup" in unresolved["error"]


async def test_uploaded_files_go_out_with_the_reply(hub: Services, agent: Caller) -> None:
    cid = await voicemail(hub)
    via = {"account": "mail", "to": "ana@example.com"}
    stored = await upload(agent, "invoice 2291.pdf", PDF, "application/pdf")
    assert stored["filename"] == "invoice 2291.pdf" and stored["size"] == len(PDF)
    body = {"text": "Hello Ana,\n\nThe invoice is attached.", "subject": "Invoice 2291", "via": via}
    clean = await agent.post(f"/api/conversations/{cid}/check", {**body, "attachments": [stored["id"]]})
    assert not [f for f in clean["findings"] if f["rule_id"] == "E7"]
    message = await agent.post(
        f"/api/conversations/{cid}/reply", {**body, "attachments": [stored["id"]]}, expect=202
    )
    assert [a["filename"] for a in message["attachments"]] == ["invoice 2291.pdf"]
    await Dispatcher(hub.db, hub.outbox, hub.channels, hub.config.outbox, hub.clock).dispatch_once()
    mail = hub.channels["mail"]
    assert isinstance(mail, MemoryChannel)
    (sent,) = mail.sent[0].attachments
    assert hub.blobs.path(sent.sha256).read_bytes() == PDF


async def test_attachments_are_checked_and_owned(hub: Services, agent: Caller) -> None:
    cid = await voicemail(hub)
    via = {"account": "mail", "to": "ana@example.com"}
    program = await upload(agent, "invoice.pdf", b"MZ\x90\x00" + b"\x00" * 200, "application/pdf")
    body = {"text": "Hello Ana,\n\nThe invoice is attached.", "subject": "Invoice 2291", "via": via}
    checked = await agent.post(f"/api/conversations/{cid}/check", {**body, "attachments": [program["id"]]})
    assert any(f["rule_id"] == "E7" and f["severity"] == "error" for f in checked["findings"])
    await agent.post(f"/api/conversations/{cid}/reply", {**body, "attachments": [program["id"]]}, expect=422)

    other = await as_role(agent.client, hub, Role.AGENT)
    theirs = await upload(other, "notes.txt", b"private notes", "text/plain")
    await agent.post(f"/api/conversations/{cid}/reply", {**body, "attachments": [theirs["id"]]}, expect=404)
    own_channel = {"text": "Hello Ana.", "attachments": [theirs["id"]]}
    refused = await other.post(f"/api/conversations/{cid}/reply", own_channel, expect=422)
    assert [f["rule_id"] for f in refused["findings"]] == ["E7"]
    await upload(agent, "empty.txt", b"", "text/plain", expect=422)
    async with hub.db.read() as conn:
        count = len((await conn.execute(select(schema.attachments.c.id))).all())
    assert count == 0


async def test_files_over_the_upload_limit_are_refused(hub: Services) -> None:
    agent_row = await hub.directory.add_agent("uploader", None, Role.AGENT)
    with pytest.raises(PayloadTooLarge):
        await uploads.store(
            hub.db, hub.blobs, agent_row.id, "big.pdf", "application/pdf",
            b"\0" * (uploads.MAX_UPLOAD_BYTES + 1), MON_9,
        )  # fmt: skip


def test_uploaded_names_lose_folders_and_control_characters() -> None:
    assert uploads.clean_filename("../../etc/passwd") == "passwd"
    assert uploads.clean_filename("C:\\Users\\ana\\report\x07.pdf") == "report.pdf"
    assert uploads.clean_filename("...") == "attachment"
