"""`omnihub.toml`: loading, validation with key paths, secrets from the environment."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from sqlalchemy.engine import make_url

from hub.errors import ConfigError

CONFIG_NAME = "omnihub.toml"
ENV_PREFIX = "env:"


def _from_env(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(ENV_PREFIX):
        name = value[len(ENV_PREFIX) :]
        if name not in os.environ:
            raise ValueError(f"environment variable {name} is not set")
        return os.environ[name]
    return value


Secret = Annotated[SecretStr, BeforeValidator(_from_env)]
"""A secret: written in the file as is or as `env:VARIABLE`; never shown in logs or APIs."""


class Section(BaseModel):
    """A configuration table: unknown keys are errors, so typos do not pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class HubSection(Section):
    """[hub]: where the hub keeps its files and how it is reached."""

    data_dir: Path = Path("data")
    public_url: str = "http://127.0.0.1:8080"
    default_language: Literal["en", "zh"] = "en"

    @field_validator("public_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class StoreSection(Section):
    """[store]: the database and the size limits of what is stored out of line."""

    url: Annotated[str, BeforeValidator(_from_env)] = "sqlite+aiosqlite:///data/omnihub.db"
    schema_name: str | None = Field(None, pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    max_attachment_bytes: int = Field(25 * 1024 * 1024, gt=0)
    max_raw_bytes: int = Field(35 * 1024 * 1024, gt=0)

    @field_validator("url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:// or postgresql:// URL")
        return value


class WebSection(Section):
    """[web]: the HTTP listener and sessions."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    session_hours: float = Field(12, gt=0)
    secure_cookies: bool = False


class InboxSection(Section):
    """[inbox]: threading and ingest batching."""

    thread_window_hours: float = Field(24, gt=0)
    max_batch: int = Field(2000, ge=1, le=10000)


class OutboxSection(Section):
    """[outbox]: how sending is retried."""

    max_attempts: int = Field(10, ge=1)
    base_delay_seconds: float = Field(2, gt=0)
    max_delay_seconds: float = Field(900, gt=0)
    concurrency: int = Field(8, ge=1, le=256)
    lease_seconds: float = Field(120, gt=1)
    poll_seconds: float = Field(1, gt=0)


class RuntimeSection(Section):
    """[runtime]: shutdown and channel restart timing."""

    shutdown_seconds: float = Field(10, gt=0, le=60)
    channel_restart_max_seconds: float = Field(300, gt=0)


class CompanySection(Section):
    """[company]: who the hub answers for, as signatures (E6), cover pages (F2) and greetings show it."""

    name: str = Field("Customer Service", max_length=200)
    department: str = Field("Customer Support", max_length=200)
    address: str = Field("", max_length=500)
    phone: str = Field("", max_length=50)
    email: str = Field("", max_length=320)
    website: str = Field("", max_length=500)


class ChannelEntry(BaseModel):
    """One [[channels]] entry; its other keys are checked by the channel kind's own model."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    kind: str
    enabled: bool = True

    def settings(self) -> dict[str, Any]:
        """The kind-specific keys."""
        return dict(self.model_extra or {})


class Config(Section):
    """The whole configuration; relative paths are relative to the file's folder."""

    hub: HubSection = HubSection()
    store: StoreSection = StoreSection()
    web: WebSection = WebSection()
    inbox: InboxSection = InboxSection()
    outbox: OutboxSection = OutboxSection()
    runtime: RuntimeSection = RuntimeSection()
    company: CompanySection = CompanySection()
    rules_dir: Path = Path("rules")
    templates_dir: Path = Path("templates")
    channels: list[ChannelEntry] = []
    base_dir: Path = Path(".")

    @field_validator("channels")
    @classmethod
    def _unique_names(cls, value: list[ChannelEntry]) -> list[ChannelEntry]:
        names = [c.name for c in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"channel names must be unique; repeated: {', '.join(dupes)}")
        return value

    def path(self, value: Path) -> Path:
        """Resolve a configured path against the configuration's folder."""
        return value if value.is_absolute() else self.base_dir / value

    @property
    def data_dir(self) -> Path:
        """The folder for the database (by default), blobs and generated files."""
        return self.path(self.hub.data_dir)

    @property
    def store_url(self) -> str:
        """The store URL with a relative SQLite path resolved against the configuration's folder."""
        url = self.store.url
        prefix, sep, rest = url.partition(":///")
        if url.startswith("sqlite") and sep and not rest.startswith("/") and rest != ":memory:":
            return f"{prefix}:///{self.path(Path(rest))}"
        return url


def format_validation_error(source: str, err: ValidationError, prefix: str = "") -> str:
    """One line per problem: `file: key.path: reason`."""
    lines = []
    for problem in err.errors():
        path = prefix
        for part in problem["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        lines.append(f"{source}: {path or '(top level)'}: {problem['msg']}")
    return "\n".join(lines)


def parse(data: dict[str, Any], base_dir: Path, source: str = CONFIG_NAME) -> Config:
    """Validate configuration data; raise ConfigError naming every bad key."""
    try:
        return Config.model_validate({**data, "base_dir": base_dir})
    except ValidationError as err:
        raise ConfigError(format_validation_error(source, err)) from None


def load(path: Path | None = None) -> Config:
    """Load `path`, or `omnihub.toml` in the current folder; raise ConfigError if invalid."""
    path = path or Path.cwd() / CONFIG_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (run `omnihub init` to create one)") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    return parse(data, path.resolve().parent, str(path))


def secrets(value: Any) -> set[str]:
    """Every secret value inside a configuration object, for masking."""
    found: set[str] = set()
    if isinstance(value, StoreSection):
        password = make_url(value.url).password
        if password:
            found.add(str(password))
    if isinstance(value, SecretStr):
        secret = value.get_secret_value()
        if secret:
            found.add(secret)
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            found |= secrets(getattr(value, name))
        for extra in (value.model_extra or {}).values():
            found |= secrets(extra)
    elif isinstance(value, list | tuple):
        for item in value:
            found |= secrets(item)
    elif isinstance(value, dict):
        for item in value.values():
            found |= secrets(item)
    return found
