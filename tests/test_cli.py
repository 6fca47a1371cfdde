"""The `omnihub` command, run in-process and as a real subprocess, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import channels
from hub import bootstrap, defaults
from hub import runtime as hub_runtime
from hub.cli import main
from hub.config import Config, load
from hub.services import open_services
from tests.factories import inbound

REPO = Path(__file__).resolve().parent.parent
Capsys = pytest.CaptureFixture[str]


def run_cli(capsys: Capsys, *argv: str) -> tuple[int, str, str]:
    """Run the CLI in this process; return exit code, stdout and stderr."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def config_file(tmp_path: Path, store_settings: dict[str, Any]) -> Path:
    """An omnihub.toml on the test's store (SQLite file or a fresh PostgreSQL schema)."""
    store = "".join(f"{key} = {json.dumps(value)}\n" for key, value in store_settings.items())
    path = tmp_path / "hub" / "omnihub.toml"
    path.parent.mkdir()
    path.write_text(
        f'[store]\n{store}\n[[channels]]\nname = "demo-email"\nkind = "memory"\n', encoding="utf-8"
    )
    return path


def test_init_writes_a_working_hub(tmp_path: Path, capsys: Capsys) -> None:
    folder = tmp_path / "site"
    code, out, err = run_cli(capsys, "init", str(folder))
    assert code == 0, err
    password_file = folder / "data" / bootstrap.INITIAL_LOGIN_FILE
    password = password_file.read_text(encoding="utf-8").strip()
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert len(password) >= 16
    assert password in out
    assert (folder / "data" / "omnihub.db").is_file()
    for kind in defaults.KINDS:
        for name, data in defaults.files(kind).items():
            assert (folder / kind / name).read_bytes() == data
    assert (folder / "rules" / "README.md").is_file()

    async def login() -> bool:
        services = await open_services(load(folder / "omnihub.toml"))
        try:
            agent = await services.directory.authenticate("admin", password)
        finally:
            await services.close()
        return agent is not None and agent.role.name == "ADMIN"

    assert asyncio.run(login())


def test_written_configuration_documents_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "omnihub.toml"
    path.write_text(bootstrap.config_text(), encoding="utf-8")
    written = load(path)
    model = Config()
    for section in ("hub", "store", "web", "inbox", "outbox", "runtime"):
        assert getattr(written, section) == getattr(model, section), section
    assert (written.rules_dir, written.templates_dir) == (model.rules_dir, model.templates_dir)
    assert [c.name for c in written.channels] == [
        "demo-email",
        "demo-sms",
        "demo-whatsapp",
        "demo-voice",
        "demo-fax",
        "demo-chat",
        "mail",
        "website",
    ]
    assert {c.kind for c in written.channels} == {"memory", "email", "webchat"}
    assert channels.configured(written)[-2].settings.receiver.port == 2525  # type: ignore[attr-defined]
    text = bootstrap.config_text()
    for section in bootstrap.SECTIONS:
        for key in type(getattr(model, section)).model_fields:
            assert f"\n{key} = " in text or f"\n# {key} = " in text, f"{section}.{key}"
    assert 'secret = "env:OMNIHUB_API_SECRET"' in text
    assert '# url = "postgresql+asyncpg://' in text


def test_keys_the_template_misses_are_still_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    template = bootstrap.CONFIG_TEMPLATE.replace("max_batch = {inbox.max_batch}\n", "")
    monkeypatch.setattr(bootstrap, "CONFIG_TEMPLATE", template)
    path = tmp_path / "omnihub.toml"
    path.write_text(bootstrap.config_text(), encoding="utf-8")
    assert f"max_batch = {Config().inbox.max_batch}" in path.read_text(encoding="utf-8")
    assert load(path).inbox == Config().inbox


def test_init_refuses_to_overwrite(tmp_path: Path, capsys: Capsys) -> None:
    assert run_cli(capsys, "init", str(tmp_path))[0] == 0
    config = tmp_path / "omnihub.toml"
    config.write_text(config.read_text(encoding="utf-8") + "\n# my edit\n", encoding="utf-8")
    readme = tmp_path / "rules" / "README.md"
    readme.write_text("our own rules\n", encoding="utf-8")
    password = (tmp_path / "data" / bootstrap.INITIAL_LOGIN_FILE).read_text(encoding="utf-8")

    code, _, err = run_cli(capsys, "init", str(tmp_path))
    assert code == 1
    assert "--force" in err
    assert "Traceback" not in err
    assert "# my edit" in config.read_text(encoding="utf-8")

    code, out, _ = run_cli(capsys, "init", "--if-missing", str(tmp_path))
    assert code == 0
    assert "nothing to do" in out
    assert "# my edit" in config.read_text(encoding="utf-8")

    config.unlink()
    code, out, _ = run_cli(capsys, "init", str(tmp_path))
    assert code == 0
    assert readme.read_text(encoding="utf-8") == "our own rules\n"
    assert "local edits kept" in out
    assert "exists; its password is unchanged" in out
    login_file = tmp_path / "data" / bootstrap.INITIAL_LOGIN_FILE
    assert login_file.read_text(encoding="utf-8") == password

    code, out, _ = run_cli(capsys, "init", "--force", str(tmp_path))
    assert code == 0
    assert readme.read_bytes() == defaults.files("rules")["README.md"]
    assert "# my edit" not in config.read_text(encoding="utf-8")


def test_invalid_configuration_names_the_key(tmp_path: Path, capsys: Capsys) -> None:
    bad = tmp_path / "omnihub.toml"
    bad.write_text('[web]\nport = "eighty"\n', encoding="utf-8")
    for command in (["stats"], ["run"], ["db", "upgrade"], ["user", "list"]):
        code, _, err = run_cli(capsys, "--config", str(bad), *command)
        assert code == 2, command
        assert "web.port" in err
        assert "Traceback" not in err

    bad.write_text('[[channels]]\nname = "shop"\nkind = "api"\n', encoding="utf-8")
    code, _, err = run_cli(capsys, "--config", str(bad), "run")
    assert code == 2
    assert "channels[0].secret" in err

    code, _, err = run_cli(capsys, "--config", str(tmp_path / "missing.toml"), "stats")
    assert code == 2
    assert "omnihub init" in err


def test_config_defaults_to_the_current_folder(
    tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "stats")
    assert code == 2
    assert "omnihub.toml" in err
    assert run_cli(capsys, "init")[0] == 0
    code, out, _ = run_cli(capsys, "stats", "--json")
    assert code == 0
    assert json.loads(out)["conversations"]["total"] == 0


def test_run_hands_the_configuration_to_the_runtime(
    config_file: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Config, bool]] = []

    def fake_main(config: Config, verbose: bool = False) -> int:
        calls.append((config, verbose))
        return 3

    monkeypatch.setattr(hub_runtime, "main", fake_main)
    code, _, _ = run_cli(capsys, "--config", str(config_file), "-v", "run")
    assert code == 3
    [(config, verbose)] = calls
    assert verbose
    assert [c.name for c in config.channels] == ["demo-email"]
    assert config.base_dir == config_file.parent.resolve()


def test_db_upgrade_twice(config_file: Path, capsys: Capsys) -> None:
    code, out, _ = run_cli(capsys, "--config", str(config_file), "db", "upgrade")
    assert code == 0
    assert "upgraded from empty to revision" in out
    code, out, _ = run_cli(capsys, "--config", str(config_file), "db", "upgrade")
    assert code == 0
    assert "already at revision" in out


def test_users_teams_and_tokens(config_file: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = ["--config", str(config_file)]
    code, out, _ = run_cli(capsys, *cfg, "user", "add", "ana", "--role", "agent")
    assert code == 0
    generated = out.split("password: ")[1].strip()

    monkeypatch.setattr(sys, "stdin", io.StringIO("a long enough secret\n"))
    code, _, _ = run_cli(
        capsys,
        *cfg,
        "user",
        "add",
        "li",
        "--role",
        "supervisor",
        "--password-stdin",
        "--display-name",
        "李娜",
        "--language",
        "zh",
    )
    assert code == 0

    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    code, _, err = run_cli(capsys, *cfg, "user", "add", "bo", "--role", "agent", "--password-stdin")
    assert code == 1
    assert "at least 10 characters" in err

    code, _, err = run_cli(capsys, *cfg, "user", "add", "ana", "--role", "admin")
    assert code == 1
    assert "already exists" in err

    assert run_cli(capsys, *cfg, "team", "add", "Billing", "--department", "财务部")[0] == 0
    assert run_cli(capsys, *cfg, "team", "member", "Billing", "li")[0] == 0
    code, _, err = run_cli(capsys, *cfg, "team", "member", "Nobody", "li")
    assert code == 1
    assert "no team named" in err

    code, out, _ = run_cli(capsys, *cfg, "user", "token", "li", "--name", "reports")
    assert code == 0
    token = out.strip()
    assert token.startswith("ohk_")
    code, _, err = run_cli(capsys, *cfg, "user", "token", "nobody")
    assert code == 1
    assert "no user named" in err

    code, out, _ = run_cli(capsys, *cfg, "user", "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["id", "user", "name", "role"]
    assert any("李娜" in line and "supervisor" in line and "Billing" in line for line in lines)

    async def check() -> tuple[bool, bool, str | None]:
        services = await open_services(load(config_file))
        try:
            ana = await services.directory.authenticate("ana", generated)
            li = await services.directory.authenticate("li", "a long enough secret")
            holder = await services.directory.token_agent(token)
        finally:
            await services.close()
        return ana is not None, li is not None, holder.username if holder else None

    assert asyncio.run(check()) == (True, True, "li")


def test_stats_counts_what_was_ingested(config_file: Path, capsys: Capsys) -> None:
    async def ingest() -> None:
        services = await open_services(load(config_file))
        try:
            await services.inbox.ingest_many(
                [
                    inbound("<1@x>", "ana@example.com", subject="Late parcel", own_refs=("<1@x>",)),
                    inbound("<2@x>", "bo@example.com", subject="Refund"),
                    inbound("<3@x>", "ana@example.com", subject="Re: Late parcel", reply_refs=("<1@x>",)),
                ]
            )
        finally:
            await services.close()

    asyncio.run(ingest())
    code, out, _ = run_cli(capsys, "--config", str(config_file), "stats", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["contacts"] == 2
    assert data["conversations"]["total"] == 2
    assert data["conversations"]["open"] == 2
    assert data["messages"]["total"] == 3
    assert data["messages"]["by_channel"] == {"email": {"in": 3}}

    code, out, _ = run_cli(capsys, "--config", str(config_file), "stats")
    assert code == 0
    assert "conversations   2 (open 2" in out


def test_demo_command_prints_a_summary(config_file: Path, capsys: Capsys) -> None:
    cfg = ["--config", str(config_file)]
    code, out, _ = run_cli(capsys, *cfg, "demo", "--if-empty")
    assert code == 0
    assert "demo: " in out
    assert "agent emma.clarke: password " in out
    code, out, _ = run_cli(capsys, *cfg, "demo", "--if-empty")
    assert code == 0
    assert "already holds conversations" in out
    code, out, _ = run_cli(capsys, *cfg, "demo")
    assert code == 0
    assert "nothing added" in out


def test_real_subprocess(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def omnihub(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hub", *argv],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    done = omnihub("init", "site")
    assert done.returncode == 0, done.stderr
    password = (tmp_path / "site" / "data" / bootstrap.INITIAL_LOGIN_FILE).read_text().strip()
    assert password in done.stdout

    done = omnihub("--config", "site/omnihub.toml", "stats", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["conversations"]["total"] == 0

    (tmp_path / "bad.toml").write_text("[store]\nurl = 42\n", encoding="utf-8")
    done = omnihub("--config", "bad.toml", "run")
    assert done.returncode == 2
    assert "store.url" in done.stderr
    assert "Traceback" not in done.stderr
