"""Hot reload: a valid change is swapped in, an invalid one keeps the old set and is reported."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from hub.models import Role
from hub.rules.problems import RuleSetInvalid
from hub.rules.source import RuleSource
from hub.services import Services
from hub.web import create_app
from tests.conftest import FakeClock
from tests.conftest_web import as_role

SHIPPED = Path(__file__).resolve().parent.parent / "rules"
GOOD = "triggers:\n  - name: one\n    when: message.received\n    then: [{tag: a}]\n"
BAD = "triggers:\n  - name: one\n    when: message.received\n    then: [{tagg: a}]\n"


def touch(path: Path, text: str, bump: int) -> None:
    path.write_text(text, encoding="utf-8")
    stamp = path.stat().st_mtime_ns + bump * 1_000_000_000
    os.utime(path, ns=(stamp, stamp))


async def test_reload_swaps_valid_changes_and_keeps_the_old_set_on_errors(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "rules"
    shutil.copytree(SHIPPED, folder)
    source = RuleSource(folder, clock=clock)
    first = await source.load()
    assert source.status().version == first.version and source.status().last_error is None
    assert await source.reload() is False

    triggers = folder / "triggers.yaml"
    touch(triggers, BAD, 1)
    with caplog.at_level(logging.ERROR, "hub.rules.source"):
        assert await source.reload() is False
        touch(triggers, BAD + "# same problem\n", 2)
        assert await source.reload() is False
    assert source.current is first
    status = source.status()
    assert status.version == first.version
    assert status.last_error is not None and "tagg" in status.last_error
    assert [(p.file, p.line, p.key_path) for p in status.problems] == [
        ("triggers.yaml", 4, "triggers[0].then[0].tagg")
    ]
    logged = [r for r in caplog.records if "invalid" in r.getMessage()]
    assert len(logged) == 1 and f"keeping version {first.version}" in logged[0].getMessage()

    clock.advance(minutes=1)
    touch(triggers, GOOD, 3)
    assert await source.reload() is True
    assert source.current is not first and [t.name for t in source.current.triggers.triggers] == ["one"]
    status = source.status()
    assert status.last_error is None and status.problems == () and status.loaded_at == clock()
    touch(triggers, BAD, 4)
    with pytest.raises(RuleSetInvalid):
        await source.load()
    assert [t.name for t in source.current.triggers.triggers] == ["one"]


async def test_the_background_task_picks_up_changes(tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    source = RuleSource(folder, poll_seconds=0.02)
    before = await source.load()
    source.start()
    try:
        touch(folder / "triggers.yaml", GOOD, 1)
        async with asyncio.timeout(5):
            while source.current is before:
                await asyncio.sleep(0.02)
    finally:
        await source.stop()
    assert [t.name for t in source.current.triggers.triggers] == ["one"]


async def test_supervisors_see_the_rules_status(
    aiohttp_client: Any, services: Services, tmp_path: Path
) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "triggers.yaml").write_text(GOOD, encoding="utf-8")
    loaded = await services.rules.load()
    client: TestClient[Any, Any] = await aiohttp_client(create_app(services))
    agent = await as_role(client, services, Role.AGENT)
    supervisor = await as_role(client, services, Role.SUPERVISOR)
    await agent.get("/api/rules", expect=403)
    body = await supervisor.get("/api/rules")
    assert body["version"] == loaded.version and body["last_error"] is None and body["problems"] == []
    touch(folder / "triggers.yaml", BAD, 1)
    await services.rules.reload()
    body = await supervisor.get("/api/rules")
    assert body["version"] == loaded.version
    assert body["problems"] == [
        {
            "file": "triggers.yaml",
            "line": 4,
            "column": 13,
            "key": "triggers[0].then[0].tagg",
            "message": body["problems"][0]["message"],
        }
    ]
    assert "got 'tagg'" in body["problems"][0]["message"]
