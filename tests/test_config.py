"""Configuration: key paths in errors, secrets from the environment, masking."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from hub import config as hub_config
from hub.errors import ConfigError
from hub.logs import MaskingFormatter


def test_errors_name_every_key_path(tmp_path: Path) -> None:
    path = tmp_path / "omnihub.toml"
    path.write_text('[web]\nport = "eighty"\n[hub]\npublic_url = "ftp://x"\n[outbox]\nretries = 3\n')
    with pytest.raises(ConfigError) as err:
        hub_config.load(path)
    message = str(err.value)
    for key in ("web.port", "hub.public_url", "outbox.retries"):
        assert f"{path}: {key}:" in message


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "omnihub.toml"
    path.write_text("[web]\nport = \n")
    with pytest.raises(ConfigError, match=r"line 2"):
        hub_config.load(path)


def test_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="omnihub init"):
        hub_config.load(tmp_path / "omnihub.toml")


def test_secrets_come_from_the_environment_and_are_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMNIHUB_DB_URL", "postgresql+asyncpg://hub:pa55word-xyz@db/omnihub")
    config = hub_config.parse({"store": {"url": "env:OMNIHUB_DB_URL"}}, tmp_path)
    assert config.store.url.endswith("@db/omnihub")
    assert "pa55word-xyz" in hub_config.secrets(config)
    formatter = MaskingFormatter("%(message)s", hub_config.secrets(config))
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "connecting to %s", (config.store.url,), None)
    assert formatter.format(record) == "connecting to postgresql+asyncpg://hub:***@db/omnihub"


def test_unset_environment_variable_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="OMNIHUB_NOT_SET is not set"):
        hub_config.parse({"store": {"url": "env:OMNIHUB_NOT_SET"}}, tmp_path)


def test_relative_sqlite_path_resolves_against_the_config_folder(tmp_path: Path) -> None:
    config = hub_config.parse({}, tmp_path)
    assert config.store_url == f"sqlite+aiosqlite:///{tmp_path}/data/omnihub.db"
    assert config.data_dir == tmp_path / "data"
