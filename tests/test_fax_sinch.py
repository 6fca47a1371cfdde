"""The fax channel with Sinch Fax v3, end to end against the wire-level fake on 127.0.0.1."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request
from pypdf import PdfReader
from sqlalchemy import select

from channels.fax.providers.base import WebhookRefused
from channels.fax.providers.sinch import SinchProvider, SinchSettings, check_callback
from hub.models import OutboundStatus
from hub.outbox import Dispatcher
from hub.store import schema
from tests.fakes.sinch_fax import KEY_ID, KEY_SECRET, PROJECT, FakeSinchFax
from tests.fax_helpers import CUSTOMER_FAX, OUR_FAX, FaxHub, conversation_of, count, fax_hub, pdf_pages

ROOT = Path(__file__).resolve().parents[1]
USER, PASSWORD = "sinch-callbacks", "callback pass/word"


@pytest.fixture
async def sinch() -> AsyncIterator[FakeSinchFax]:
    fake = FakeSinchFax()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def hub(make_config: Any, clock: Any, sinch: FakeSinchFax) -> AsyncIterator[FaxHub]:
    line = {
        "name": "sinchfax",
        "kind": "fax",
        "provider": "sinch",
        "number": OUR_FAX,
        "sinch": {
            "project_id": PROJECT,
            "key_id": KEY_ID,
            "key_secret": KEY_SECRET,
            "api_url": f"{sinch.url}/v3",
            "callback_username": USER,
            "callback_password": PASSWORD,
        },
    }
    async with fax_hub(make_config, clock, line, rules_dir=str(ROOT / "rules")) as h:
        await h.services.rules.load()
        yield h


def callback(hub: FaxHub, user: str = USER, password: str = PASSWORD) -> str:
    host = hub.url.removeprefix("http://")
    secret = password.replace("/", "%2F").replace(" ", "%20")
    return f"http://{user}:{secret}@{host}/webhooks/fax/sinchfax/callback"


async def test_incoming_fax_with_its_pdf_is_stored_once(hub: FaxHub, sinch: FakeSinchFax) -> None:
    document = pdf_pages(2, "order")
    fax_id, answers = await sinch.incoming(
        callback(hub), sender=CUSTOMER_FAX, to=OUR_FAX, document=document, pages=2
    )
    assert answers == [200, 200]
    m = schema.messages
    async with hub.services.db.read() as conn:
        [row] = (await conn.execute(select(m).where(m.c.external_id == fax_id))).mappings().all()
    assert row["sender"] == CUSTOMER_FAX and row["meta"]["fax"]["pages"] == 2
    timeline = await hub.services.inbox.timeline(row["conversation_id"])
    assert await hub.services.blobs.get(timeline.messages[0].attachments[0].sha256) == document


async def test_callbacks_without_our_credentials_are_refused(hub: FaxHub, sinch: FakeSinchFax) -> None:
    _, answers = await sinch.incoming(
        callback(hub, password="guess"), sender=CUSTOMER_FAX, to=OUR_FAX, document=pdf_pages(1), pages=1
    )
    assert answers == [403, 403]
    plain = f"{hub.url}/webhooks/fax/sinchfax/callback"
    _, answers = await sinch.incoming(plain, sender=CUSTOMER_FAX, to=OUR_FAX, document=pdf_pages(1), pages=1)
    assert answers == [403, 403]
    assert await count(hub.services, schema.messages) == 0


async def test_zero_page_pdf_is_quarantined(hub: FaxHub, sinch: FakeSinchFax) -> None:
    empty = (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    )
    fax_id, answers = await sinch.incoming(
        callback(hub), sender=CUSTOMER_FAX, to=OUR_FAX, document=empty, pages=0
    )
    assert answers == [200, 200]
    q = schema.quarantine
    async with hub.services.db.read() as conn:
        [row] = (await conn.execute(select(q).where(q.c.external_id == fax_id))).mappings().all()
    assert await hub.services.blobs.get(row["raw_sha256"]) == empty
    assert await count(hub.services, schema.messages) == 0


async def test_reply_is_sent_and_completion_marks_it_delivered(hub: FaxHub, sinch: FakeSinchFax) -> None:
    services = hub.services
    fax_id, _ = await sinch.incoming(
        callback(hub), sender=CUSTOMER_FAX, to=OUR_FAX, document=pdf_pages(1), pages=1
    )
    cid = await conversation_of(services, fax_id)
    reply = await services.outbox.reply(cid, "Your order ships on Monday.", agent_id=None)
    await Dispatcher(
        services.db, services.outbox, services.channels, services.config.outbox, services.clock
    ).dispatch_once()
    [sent] = sinch.sent.values()
    assert sent.to == CUSTOMER_FAX and sent.sender == OUR_FAX
    assert sent.callback_url == callback(hub)
    assert len(PdfReader(io.BytesIO(sent.document)).pages) == 2
    assert await sinch.complete(sent.id, pages=2) == [200, 200]
    o = schema.outbox
    async with services.db.read() as conn:
        status = (await conn.execute(select(o.c.status).where(o.c.message_id == reply.id))).scalar_one()
    assert status == OutboundStatus.DELIVERED.value
    assert await count(services, schema.tasks) == 1


def test_a_callback_token_in_the_url_is_accepted_and_checked() -> None:
    settings = SinchSettings(project_id="p", key_id="k", key_secret="s", callback_token="t0k/en")
    provider = SinchProvider(settings, None)  # type: ignore[arg-type]
    url = provider.callback_url("http://127.0.0.1:8080/webhooks/fax/sinchfax/callback")
    assert url.endswith("/callback?token=t0k%2Fen")
    check_callback(settings, make_mocked_request("POST", "/webhooks/fax/sinchfax/callback?token=t0k/en"))
    for wrong in ("?token=guess", ""):
        with pytest.raises(WebhookRefused):
            check_callback(settings, make_mocked_request("POST", f"/webhooks/fax/sinchfax/callback{wrong}"))
