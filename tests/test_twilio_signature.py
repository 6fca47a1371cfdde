"""Twilio webhook signatures: the documented example, altered copies, JSON bodies, public URLs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from multidict import MultiDict

from channels.twilio.signature import WebhookVerifier
from hub.services import Services
from hub.web import create_app
from tests.fakes.twilio import WebhookSender, signature
from tests.twilio_helpers import ACCOUNT, PUBLIC, TOKEN, twilio_channel

EXAMPLE_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
EXAMPLE_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}
EXAMPLE_SIGNATURE = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def example_is_valid(url: str, params: dict[str, str], sig: str) -> bool:
    verifier = WebhookVerifier("12345", "https://mycompany.com")
    return verifier.valid(url, MultiDict(params), sig)


def test_the_documented_example_validates_and_the_fake_signs_it_the_same() -> None:
    assert example_is_valid(EXAMPLE_URL, EXAMPLE_PARAMS, EXAMPLE_SIGNATURE)
    assert signature("12345", EXAMPLE_URL, EXAMPLE_PARAMS) == EXAMPLE_SIGNATURE


@pytest.mark.parametrize("key", sorted(EXAMPLE_PARAMS))
def test_changing_any_param_breaks_the_signature(key: str) -> None:
    altered = {**EXAMPLE_PARAMS, key: EXAMPLE_PARAMS[key] + "9"}
    assert not example_is_valid(EXAMPLE_URL, altered, EXAMPLE_SIGNATURE)
    dropped = {k: v for k, v in EXAMPLE_PARAMS.items() if k != key}
    assert not example_is_valid(EXAMPLE_URL, dropped, EXAMPLE_SIGNATURE)


@pytest.mark.parametrize(
    "url",
    [
        "https://mycompany.com/myapp.php?foo=1&bar=3",
        "https://mycompany.com/myapp.php?foo=1",
        "http://mycompany.com/myapp.php?foo=1&bar=2",
        "https://evil.example/myapp.php?foo=1&bar=2",
        "https://mycompany.com/other.php?foo=1&bar=2",
    ],
)
def test_another_url_breaks_the_signature(url: str) -> None:
    assert not example_is_valid(url, EXAMPLE_PARAMS, EXAMPLE_SIGNATURE)


@pytest.mark.parametrize(
    "sig", ["", "0/KCTR6DLpKmkAf8muzZqo1nDgQ", "1/KCTR6DLpKmkAf8muzZqo1nDgQ=", EXAMPLE_SIGNATURE.lower()]
)
def test_another_signature_or_token_fails(sig: str) -> None:
    assert not example_is_valid(EXAMPLE_URL, EXAMPLE_PARAMS, sig)
    other = WebhookVerifier("12346", "https://mycompany.com")
    assert not other.valid(EXAMPLE_URL, MultiDict(EXAMPLE_PARAMS), EXAMPLE_SIGNATURE)


def test_a_signature_with_bytes_that_are_not_utf8_is_wrong_not_an_error() -> None:
    undecodable = b"bm9w\xffZQ==".decode("utf-8", "surrogateescape")
    assert not example_is_valid(EXAMPLE_URL, EXAMPLE_PARAMS, undecodable)


def test_repeated_keys_are_signed_as_sent() -> None:
    params = [("MediaUrl", "b"), ("MediaUrl", "a"), ("Body", "x")]
    sig = signature("12345", EXAMPLE_URL, params)
    verifier = WebhookVerifier("12345", "https://mycompany.com")
    assert verifier.valid(EXAMPLE_URL, MultiDict(params), sig)
    assert not verifier.valid(EXAMPLE_URL, dict(params), sig)


Client = TestClient[Any, Any]


@pytest.fixture
async def hub(make_config: Any, clock: Any) -> AsyncIterator[Services]:
    async with twilio_channel(make_config, clock) as services:
        yield services


@pytest.fixture
async def client(aiohttp_client: Any, hub: Services) -> Client:
    return await aiohttp_client(create_app(hub))


def sender_for(client: Client, session: aiohttp.ClientSession) -> WebhookSender:
    return WebhookSender(TOKEN, session, public_base=PUBLIC, local_base=str(client.make_url("")))


STATUS = {"AccountSid": ACCOUNT, "CallSid": "CA" + "1" * 32, "CallStatus": "ringing"}
ROUTE = f"{PUBLIC}/webhooks/twilio_voice/main/status"


async def test_webhook_routes_refuse_missing_and_wrong_signatures(client: Client) -> None:
    async with aiohttp.ClientSession() as session:
        sender = sender_for(client, session)
        assert (await sender.post(ROUTE, STATUS)).status < 300
        assert (await sender.post(ROUTE, STATUS, sign=False)).status == 403
        assert (await sender.post(ROUTE, STATUS, signature_value="bm9wZQ==")).status == 403
        signed_elsewhere = sender.sign(ROUTE.replace(PUBLIC, "https://other.example"), STATUS)
        assert (await sender.post(ROUTE, STATUS, signature_value=signed_elsewhere)).status == 403
        tampered = sender.sign(ROUTE, STATUS)
        changed = {**STATUS, "CallStatus": "completed"}
        assert (await sender.post(ROUTE, changed, signature_value=tampered)).status == 403


async def test_json_webhooks_are_checked_with_their_body_hash(client: Client) -> None:
    async with aiohttp.ClientSession() as session:
        sender = sender_for(client, session)
        past_the_check = await sender.post_json(ROUTE, {"CallSid": "CA1"})
        assert past_the_check.status == 400 and "CallStatus" in past_the_check.text
        body = '{"CallSid": "CA2"}'
        url = f"{ROUTE}?bodySHA256={'0' * 64}"
        headers = {"Content-Type": "application/json", "X-Twilio-Signature": sender.sign(url, [])}
        async with session.post(sender.local(url), data=body, headers=headers) as response:
            assert response.status == 403
        headers["X-Twilio-Signature"] = sender.sign(ROUTE, [])
        async with session.post(sender.local(ROUTE), data=body, headers=headers) as response:
            assert response.status == 403


async def test_forwarded_headers_count_only_when_trusted(
    make_config: Any, clock: Any, aiohttp_client: Any
) -> None:
    proxied = "https://proxy.example.net"
    for trusted in (False, True):
        async with twilio_channel(make_config, clock, trust_forwarded_headers=trusted) as services:
            client = await aiohttp_client(create_app(services))
            async with aiohttp.ClientSession() as session:
                sender = WebhookSender(
                    TOKEN, session, public_base=proxied, local_base=str(client.make_url(""))
                )
                headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "proxy.example.net"}
                url = ROUTE.replace(PUBLIC, proxied)
                answer = await sender.post(url, STATUS, headers=headers)
                assert (answer.status < 300) is trusted
