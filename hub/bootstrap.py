"""`omnihub init`: a new hub folder with a commented configuration, defaults, store and admin."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pydantic import BaseModel

from hub import defaults
from hub.config import CONFIG_NAME, Config, load
from hub.errors import HubError, NotFound
from hub.models import Availability, Role
from hub.services import open_services
from hub.store.migrate import current_revision

ADMIN_USERNAME = "admin"
INITIAL_LOGIN_FILE = "initial-admin-password"
DEMO_CHANNELS = ("email", "sms", "whatsapp", "voice", "fax", "chat")
SECTIONS = ("hub", "store", "web", "inbox", "outbox", "runtime")

CONFIG_TEMPLATE = """\
# omnihub configuration, written by `omnihub init`.
#
# Every key below is shown with its default value. Relative paths are relative to the
# folder of this file. Secrets (passwords, API keys, shared secrets) can be written as
# "env:VARIABLE" to take them from the environment; they are masked in logs and the API.
# An invalid file stops the hub with a message that names the key.

# Folders with the rule files (YAML) and the templates (Jinja2) of this hub.
rules_dir = {top.rules_dir}
templates_dir = {top.templates_dir}
{top.undocumented}
[hub]
# Where the hub keeps its database (with SQLite), attachments and generated files.
data_dir = {hub.data_dir}
# The address people and providers reach the hub on (behind a proxy: the proxy's).
public_url = {hub.public_url}
# The language of customers whose language is not known: "en" or "zh".
default_language = {hub.default_language}
{hub.undocumented}
[store]
# The database. SQLite is embedded and fine for one process and a small team:
url = {store.url}
# For several `omnihub run` processes, use PostgreSQL (asyncpg) instead:
# url = "postgresql+asyncpg://omnihub:secret@127.0.0.1:5432/omnihub"
# A PostgreSQL schema to keep the tables in (default: the connection's search_path).
# schema_name = "omnihub"
# Size limits of what is stored out of line, in bytes.
max_attachment_bytes = {store.max_attachment_bytes}
max_raw_bytes = {store.max_raw_bytes}
{store.undocumented}
[web]
# The HTTP listener of the agent UI, the REST API, webhooks, /healthz and /metrics.
host = {web.host}
port = {web.port}
# How long a login lasts.
session_hours = {web.session_hours}
# Mark cookies Secure: set to true when the hub is served over HTTPS.
secure_cookies = {web.secure_cookies}
{web.undocumented}
[inbox]
# SMS, WhatsApp, voice and chat messages join the contact's open conversation if it had
# a message within this many hours; otherwise they start a new one.
thread_window_hours = {inbox.thread_window_hours}
# At most this many inbound messages are stored in one transaction.
max_batch = {inbox.max_batch}
{inbox.undocumented}
[outbox]
# Sending is retried with exponential backoff and jitter, up to max_attempts tries.
max_attempts = {outbox.max_attempts}
base_delay_seconds = {outbox.base_delay_seconds}
max_delay_seconds = {outbox.max_delay_seconds}
# Messages sent at the same time.
concurrency = {outbox.concurrency}
# How long one process may hold a message it is sending before another may take it.
lease_seconds = {outbox.lease_seconds}
# How often the dispatcher looks for due messages when nothing woke it.
poll_seconds = {outbox.poll_seconds}
{outbox.undocumented}
[runtime]
# On SIGTERM, everything stops within this many seconds.
shutdown_seconds = {runtime.shutdown_seconds}
# A failing channel is restarted with backoff, waiting at most this long between tries.
channel_restart_max_seconds = {runtime.channel_restart_max_seconds}
{runtime.undocumented}
[company]
# Who the hub answers for: signatures (E6), fax cover pages (F2) and greetings show these.
# Signatures need an address and a phone number, or the pre-send check blocks replies.
name = "Example Trading Ltd"
department = "Customer Support"
address = "1 Example Street, London EC1A 1AA"
phone = "+44 20 7946 0000"
email = "support@example.com"
website = "https://example.com"
# Channel accounts: one [[channels]] table per mailbox, number, line or chat widget.
# `name` is the account's name (lower case, digits, - and _); `kind` picks the channel
# type; the other keys belong to that kind. `enabled = false` keeps an entry but skips it.
#
# The demo accounts below are in-memory channels: `omnihub demo` files sample
# conversations under them, and replies sent on them count as delivered at once.
# Remove them when you connect real channels.
{demo_channels}
# An e-mail account. Out of the box it receives mail over SMTP on 127.0.0.1:2525 for
# support@hub.localhost: send it a test mail with any client (see the README). Replies
# need an outgoing server: fill in [channels.smtp]. To pull a mailbox, add [channels.imap].
[[channels]]
name = "mail"
kind = "email"
address = "support@hub.localhost"
display_name = "Support"
# Signs the hub's Message-IDs so replies find their conversation and cannot be forged.
id_secret = "{mail_id_secret}"
# Further addresses of ours (never answered automatically), and fax-to-mail senders.
# aliases = ["info@example.com"]
# fax_senders = ["*@fax.example.com"]

[channels.receiver]
# Accepted recipients (an address, or "@domain" for all of it), each with its inbox label.
recipients = {{ "support@hub.localhost" = "support" }}
host = "127.0.0.1"
port = 2525
# max_bytes = 36700160
# users = {{ relay = "env:OMNIHUB_SMTP_RELAY_PASSWORD" }}   # require AUTH
# tls_cert = "tls/cert.pem"                                  # offer STARTTLS
# tls_key = "tls/key.pem"

# [channels.smtp]
# host = "smtp.example.com"
# port = 587
# security = "starttls"
# username = "support@example.com"
# password = "env:OMNIHUB_SMTP_PASSWORD"

# The web-chat widget: put this tag on your site's pages to let visitors chat with the team
#   <script src="{public_url}/webhooks/webchat/website/widget.js" async></script>
# Outside the opening hours (per weekday, in `timezone`) it shows an offline form instead.
[[channels]]
name = "website"
kind = "webchat"
timezone = "UTC"
# allowed_origins = ["https://www.example.com"]
# max_messages_per_minute = 20
# [channels.hours]
# mon = ["09:00-12:30", "13:30-17:30"]
# fri = ["09:00-16:00"]

# An API account: any system can post customer messages to
# POST /webhooks/api/<name>/messages and receive the replies on outbound_url; both ways
# are signed with the shared secret (header X-Omnihub-Signature: sha256=<HMAC-SHA256>).
# [[channels]]
# name = "shop"
# kind = "api"
# secret = "env:OMNIHUB_API_SECRET"
# outbound_url = "https://shop.example.com/omnihub/replies"
# timeout_seconds = 15

# Phone lines on a Twilio account. Point each number's voice webhook at
# {public_url}/webhooks/twilio_voice/phones/incoming and its status callback at .../status.
# A call rings the line team's available agents (on their `devices`) for the three-ring
# window of rules/sla.yaml, then tries each `fallback` step: team:<name>, queue, voicemail.
# [[channels]]
# name = "phones"
# kind = "twilio_voice"
# account_sid = "AC00000000000000000000000000000000"
# auth_token = "env:TWILIO_AUTH_TOKEN"
# devices = {{ alice = "client:alice", bob = "+441134960001" }}
# lines = [{{ number = "+442079460000", team = "Support", fallback = ["queue", "voicemail"] }}]
# SMS and WhatsApp: point the messaging webhook at .../twilio_voice/phones/messages.
# messaging = {{ sms_from = "+442079460000", max_segments = 4 }}
# Voicemail: transcripts by Twilio (English), pocketsphinx (on this machine) or none, and a
# greeting per team or agent with the reply time and another contact (V1-V3).
# [channels.voicemail]
# transcription = {{ engine = "twilio" }}
# [[channels.voicemail.greetings]]
# team = "Support"
# language = "en"
# updated = 2026-11-20
# alternative_contact = {{ name = "Front desk", phone = "+442079460001" }}
# A fax line (F1-F4): replies go out as PDF with a cover page, received faxes arrive as
# messages with the PDF. One provider: Telnyx (webhooks to /webhooks/fax/<name>/events),
# Sinch (callbacks to /webhooks/fax/<name>/callback) or a fax-to-mail gateway through an
# e-mail account above (whose fax_senders / fax_mailboxes mark the fax mail).
# [[channels]]
# name = "fax"
# kind = "fax"
# number = "+44 20 7946 0001"           # our fax number
# provider = "telnyx"                   # or "sinch", or "email"
# default_region = "GB"                 # numbers written without + are read in this country
# language = "en"                       # cover page language when the contact's is unknown
# timezone = "Europe/London"
# confidential = false                  # the confidentiality notice on the cover page
# pre_notice = false                    # F1: tell the contact by e-mail or SMS first
# font_path = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"   # must cover Chinese
# [channels.telnyx]
# api_key = "env:OMNIHUB_TELNYX_API_KEY"
# connection_id = "1234567890"
# public_key = "base64 Ed25519 public key from the Telnyx portal"
# [channels.sinch]
# project_id = "..."
# key_id = "..."
# key_secret = "env:OMNIHUB_SINCH_KEY_SECRET"
# callback_username = "omnihub"
# callback_password = "env:OMNIHUB_SINCH_CALLBACK_PASSWORD"
# [channels.email]
# account = "mail"
# address = "{{digits}}@fax.example.net"   # or {{e164}} to keep the +
"""


def config_text() -> str:
    """The commented omnihub.toml that `omnihub init` writes, with the model's defaults."""
    model = Config()
    values: dict[str, SimpleNamespace] = {}
    top_keys = [
        k
        for k, f in Config.model_fields.items()
        if k not in SECTIONS and k not in ("channels", "base_dir", "company")
    ]
    values["top"] = _section_values(model, top_keys, "top")
    for name in SECTIONS:
        section = getattr(model, name)
        values[name] = _section_values(section, list(type(section).model_fields), name)
    demo = "".join(f'[[channels]]\nname = "demo-{kind}"\nkind = "memory"\n\n' for kind in DEMO_CHANNELS)
    return CONFIG_TEMPLATE.format(
        demo_channels=demo,
        mail_id_secret=secrets.token_urlsafe(24),
        public_url=model.hub.public_url,
        **values,
    )


def _section_values(obj: BaseModel, keys: list[str], placeholder: str) -> SimpleNamespace:
    """TOML literals of an object's defaults, and lines for keys the template does not explain."""
    literals = {key: _toml(getattr(obj, key)) for key in keys}
    missing = [
        key
        for key in keys
        if f"{{{placeholder}.{key}}}" not in CONFIG_TEMPLATE and f"# {key} =" not in CONFIG_TEMPLATE
    ]
    lines = "".join(f"{key} = {literals[key]}\n" for key in missing if getattr(obj, key) is not None)
    return SimpleNamespace(**literals, undocumented=lines)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(int(value)) if float(value).is_integer() else repr(value)
    return json.dumps(str(value), ensure_ascii=False)


@dataclass(slots=True)
class InitResult:
    """What `init` did."""

    config_path: Path
    config: Config
    copied: dict[str, defaults.CopyReport] = field(default_factory=dict)


def write_files(folder: Path, *, force: bool = False) -> InitResult:
    """Write omnihub.toml, copy the default rules and templates, and create the data folder."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CONFIG_NAME
    if path.exists() and not force:
        raise HubError(
            f"{path} exists; use --force to overwrite it (or --if-missing to keep it and do nothing)"
        )
    path.write_text(config_text(), encoding="utf-8")
    config = load(path)
    result = InitResult(path, config)
    result.copied["rules"] = defaults.copy_defaults("rules", config.path(config.rules_dir), force=force)
    result.copied["templates"] = defaults.copy_defaults(
        "templates", config.path(config.templates_dir), force=force
    )
    config.data_dir.mkdir(parents=True, exist_ok=True)
    return result


async def prepare_store(config: Config, admin_password: str) -> tuple[bool, str | None]:
    """Migrate the store and create the admin user if missing; return (created, revision)."""
    services = await open_services(config)
    try:
        try:
            await services.directory.agent_by_name(ADMIN_USERNAME)
        except NotFound:
            await services.directory.add_agent(
                ADMIN_USERNAME,
                admin_password,
                Role.ADMIN,
                display_name="Administrator",
                language=config.hub.default_language,
                availability=Availability.AWAY,
            )
            created = True
        else:
            created = False
        return created, await current_revision(services.db)
    finally:
        await services.close()


def new_password() -> str:
    """A random password for a new user."""
    return secrets.token_urlsafe(15)


def write_secret(path: Path, value: str) -> None:
    """Write a secret to a file only its owner can read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(value + "\n")
    os.chmod(path, 0o600)
