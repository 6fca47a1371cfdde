"""The REST client against the fake Twilio: one HTTP client per process, rebased URLs, wrapped errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from channels.twilio import rest
from hub.errors import ChannelAuthError, ChannelUnavailable, DeliveryRejected
from tests.fakes.twilio import FakeTwilio
from tests.twilio_helpers import ACCOUNT, LINE, TOKEN


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilio]:
    server = FakeTwilio(ACCOUNT, TOKEN)
    await server.start()
    yield server
    await server.stop()


async def test_calls_are_created_and_updated_through_the_fake(fake: FakeTwilio) -> None:
    async with aiohttp.ClientSession() as session:
        client = rest.client(session, ACCOUNT, TOKEN, fake.base_url, 5)
        call = await rest.call(
            client.calls.create_async(
                to="+14155550100", from_=LINE, twiml="<Response><Say>Hi</Say></Response>"
            ),
            "create",
        )
        assert call.sid in fake.calls and call.status == "queued" and call.to == "+14155550100"
        updated = await rest.call(client.calls(call.sid).update_async(twiml="<Response/>"), "update")
        assert updated.sid == call.sid
        assert fake.calls[call.sid].updates == [{"Twiml": "<Response/>"}]
        assert [r.method for r in fake.requests] == ["POST", "POST"]
        assert rest.http_client(session, fake.base_url, 5) is client.http_client


async def test_errors_become_the_hubs_channel_errors(fake: FakeTwilio) -> None:
    async with aiohttp.ClientSession() as session:
        client = rest.client(session, ACCOUNT, TOKEN, fake.base_url, 5)
        with pytest.raises(DeliveryRejected, match="20404"):
            await rest.call(client.calls("CA" + "0" * 32).update_async(twiml="<Response/>"), "update")
        wrong = rest.client(session, ACCOUNT, "not-the-token", fake.base_url, 5)
        with pytest.raises(ChannelAuthError, match="401"):
            await rest.call(wrong.calls("CA" + "0" * 32).fetch_async(), "fetch")
        gone = rest.client(session, ACCOUNT, TOKEN, "http://127.0.0.1:9", 5)
        with pytest.raises(ChannelUnavailable):
            await rest.call(gone.calls("CA" + "0" * 32).fetch_async(), "fetch")
