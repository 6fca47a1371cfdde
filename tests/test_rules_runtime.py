"""A real hub process: its triggers fire, its rules reload while it runs, and bad rules stop its start."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub import config as hub_config
from hub.models import Role
from hub.services import open_services
from tests.hubproc import HubProcess, write_config

SECRET = "s-rules-0123456789"
TAGGING = """
triggers:
  - name: tag-orders
    when: message.received
    if: {any: [{field: body, operator: contains, value: order}]}
    then: [{tag: orders}, {set_priority: high}]
"""
BROKEN = TAGGING.replace("set_priority: high", "set_priority: highest")
RENAMED = TAGGING.replace("tag: orders", "tag: shop")


@pytest.fixture
async def hub_process(tmp_path: Path) -> AsyncIterator[HubProcess]:
    process = HubProcess(tmp_path / "omnihub.toml")
    yield process
    await process.ensure_stopped()


def configure(tmp_path: Path, process: HubProcess) -> Path:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "triggers.yaml").write_text(TAGGING, encoding="utf-8")
    write_config(
        process.config,
        {
            "hub": {"data_dir": str(tmp_path / "data")},
            "web": {"port": 0},
            "channels": [{"name": "shop", "kind": "api", "secret": SECRET}],
        },
    )
    return rules


async def supervisor_token(process: HubProcess) -> str:
    services = await open_services(hub_config.load(process.config))
    try:
        agent = await services.directory.add_agent("sup", None, Role.SUPERVISOR)
        return await services.directory.issue_token(agent.id, "tests")
    finally:
        await services.close()


async def post_message(http: aiohttp.ClientSession, url: str, external_id: str, text: str) -> dict[str, Any]:
    body = json.dumps(
        {"external_id": external_id, "sender": {"kind": "email", "address": "ana@example.com"}, "text": text}
    ).encode()
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-Omnihub-Signature": f"sha256={signature}", "Content-Type": "application/json"}
    async with http.post(f"{url}/webhooks/api/shop/messages", data=body, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        result: dict[str, Any] = await resp.json()
        return result


async def conversation(
    http: aiohttp.ClientSession, url: str, token: str, cid: int, want: str
) -> dict[str, Any]:
    """The conversation, once its tags include `want` (the scheduler fires triggers within a second)."""
    async with asyncio.timeout(15):
        while True:
            async with http.get(f"{url}/api/conversations/{cid}", headers=auth(token)) as resp:
                data: dict[str, Any] = (await resp.json())["conversation"]
            if want in data["tags"]:
                return data
            await asyncio.sleep(0.1)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def rewrite(path: Path, text: str, bump: int) -> None:
    path.write_text(text, encoding="utf-8")
    stamp = path.stat().st_mtime_ns + bump * 1_000_000_000
    os.utime(path, ns=(stamp, stamp))


async def rules_status(
    http: aiohttp.ClientSession, url: str, token: str, until: Callable[[dict[str, Any]], bool]
) -> Any:
    """`GET /api/rules`, once the hub has looked at the folder again and `until` holds."""
    async with asyncio.timeout(15):
        while True:
            async with http.get(f"{url}/api/rules", headers=auth(token)) as resp:
                data = await resp.json()
            if until(data):
                return data
            await asyncio.sleep(0.1)


@pytest.mark.slow
async def test_a_running_hub_fires_triggers_and_reloads_its_rules(
    tmp_path: Path, hub_process: HubProcess
) -> None:
    rules = configure(tmp_path, hub_process)
    token = await supervisor_token(hub_process)
    url = await hub_process.start()
    async with aiohttp.ClientSession() as http:
        first = await post_message(http, url, "m-1", "Where is my order?")
        data = await conversation(http, url, token, first["conversation_id"], "orders")
        assert data["priority"] == "high"
        async with http.get(f"{url}/api/rules", headers=auth(token)) as resp:
            loaded = await resp.json()
        assert loaded["last_error"] is None

        rewrite(rules / "triggers.yaml", BROKEN, 1)
        status = await rules_status(http, url, token, lambda d: d["last_error"] is not None)
        assert status["version"] == loaded["version"]
        assert [(p["file"], p["line"], p["key"]) for p in status["problems"]] == [
            ("triggers.yaml", 6, "triggers[0].then[1].set_priority")
        ]
        second = await post_message(http, url, "m-2", "Another order question")
        await conversation(http, url, token, second["conversation_id"], "orders")

        rewrite(rules / "triggers.yaml", RENAMED, 2)
        status = await rules_status(http, url, token, lambda d: d["version"] != loaded["version"])
        assert status["last_error"] is None and status["version"] != loaded["version"]
        third = await post_message(http, url, "m-3", "Order number 3")
        await conversation(http, url, token, third["conversation_id"], "shop")
    assert await hub_process.terminate(15) == 0, hub_process.log
    assert hub_process.log.count("rules in") == 1 and "set_priority" in hub_process.log


@pytest.mark.slow
async def test_a_hub_with_invalid_rules_does_not_start(tmp_path: Path, hub_process: HubProcess) -> None:
    rules = configure(tmp_path, hub_process)
    (rules / "triggers.yaml").write_text(BROKEN, encoding="utf-8")
    with pytest.raises(RuntimeError, match="hub exited early"):
        await hub_process.start(within=20)
    assert await hub_process.wait(10) == 2
    assert "triggers.yaml:6:" in hub_process.log and "Traceback" not in hub_process.log
