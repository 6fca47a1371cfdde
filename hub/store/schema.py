"""The database schema, as SQLAlchemy Core tables (migrations under `migrations/` create it).

Conversations, agents and teams are never deleted (a conversation is resolved, an agent
deactivated, a team left). The event log, the scheduler's timers and the SLA clock's tables
(`sla_cycles`, `sla_inputs`) refer to them without foreign keys: they are written in bulk, an
SLA recomputation writes several rows per conversation, and PostgreSQL's check locks the
referenced row for each one (38% of the server's work when every conversation's SLA is first computed).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Id = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back time-zone aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Stamp = UTCDateTime()

contacts = Table(
    "contacts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(255)),
    Column("language", String(16)),
    Column("timezone", String(64)),
    Column("merged_into", Id, ForeignKey("contacts.id")),
    Column("created_at", Stamp, nullable=False),
)

identities = Table(
    "identities",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("contact_id", Id, ForeignKey("contacts.id"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("address", String(320), nullable=False),
    UniqueConstraint("address", "kind", name="uq_identities_address_kind"),
)

teams = Table(
    "teams",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("department", String(100)),
    Column("assign_seq", BigInteger, nullable=False, server_default="0"),
)

agents = Table(
    "agents",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("username", String(100), nullable=False, unique=True),
    Column("display_name", String(255), nullable=False),
    Column("role", Integer, nullable=False),
    Column("password_hash", String(255)),
    Column("availability", String(16), nullable=False, server_default="away"),
    Column("language", String(16), nullable=False, server_default="en"),
    Column("active", Boolean, nullable=False, server_default="1"),
    Column("created_at", Stamp, nullable=False),
)

team_members = Table(
    "team_members",
    metadata,
    Column("team_id", Id, ForeignKey("teams.id"), primary_key=True),
    Column("agent_id", Id, ForeignKey("agents.id"), primary_key=True),
    Column("last_assigned_seq", BigInteger),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("agent_id", Id, ForeignKey("agents.id"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", Stamp, nullable=False),
    Column("last_used_at", Stamp),
)

sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("agent_id", Id, ForeignKey("agents.id"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", Stamp, nullable=False),
    Column("expires_at", Stamp, nullable=False),
)

conversations = Table(
    "conversations",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("contact_id", Id, ForeignKey("contacts.id"), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("channel_account", String(100), nullable=False),
    Column("subject", String(998)),
    Column("status", String(16), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("assignee_id", Id, ForeignKey("agents.id"), index=True),
    Column("team_id", Id, ForeignKey("teams.id"), index=True),
    Column("snoozed_until", Stamp),
    Column("due_at", Stamp),
    Column("promise_due_at", Stamp),
    Column("created_at", Stamp, nullable=False),
    Column("updated_at", Stamp, nullable=False),
    Column("last_message_at", Stamp),
    Column("last_inbound_at", Stamp),
    Index("ix_conversations_status_due", "status", "due_at", "id"),
    Index("ix_conversations_status_channel_due", "status", "channel", "due_at", "id"),
    Index("ix_conversations_status_assignee_due", "status", "assignee_id", "due_at", "id"),
    Index("ix_conversations_status_updated", "status", "updated_at"),
    Index("ix_conversations_updated", "updated_at", "id"),
    Index("ix_conversations_due", "due_at"),
    Index("ix_conversations_promise_due", "promise_due_at"),
    Index("ix_conversations_contact_channel", "contact_id", "channel", "status"),
)

conversation_tags = Table(
    "conversation_tags",
    metadata,
    Column("conversation_id", Id, ForeignKey("conversations.id"), primary_key=True),
    Column("tag", String(64), primary_key=True),
    Index("ix_conversation_tags_tag", "tag"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("conversation_id", Id, ForeignKey("conversations.id"), nullable=False),
    Column("direction", String(8), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("channel_account", String(100), nullable=False),
    Column("external_id", String(998)),
    Column("sender", String(320)),
    Column("author_id", Id, ForeignKey("agents.id")),
    Column("subject", String(998)),
    Column("text", Text, nullable=False),
    Column("html", Text),
    Column("raw_sha256", String(64)),
    Column("automatic", Boolean, nullable=False, server_default="0"),
    Column("meta", JSON, nullable=False),
    Column("created_at", Stamp, nullable=False),
    UniqueConstraint("external_id", "channel_account", name="uq_messages_external_account"),
    Index("ix_messages_conversation", "conversation_id", "id"),
)

message_refs = Table(
    "message_refs",
    metadata,
    Column("ref", String(998), primary_key=True),
    Column("conversation_id", Id, ForeignKey("conversations.id"), nullable=False),
    Column("message_id", Id, ForeignKey("messages.id"), nullable=False),
)

message_raw = Table(
    "message_raw",
    metadata,
    Column("message_id", Id, ForeignKey("messages.id"), primary_key=True),
    Column("data", LargeBinary, nullable=False),
)
"""The raw bytes of mail read from a mailbox, kept with the message in its storing transaction."""

attachments = Table(
    "attachments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("message_id", Id, ForeignKey("messages.id"), nullable=False, index=True),
    Column("filename", String(255), nullable=False),
    Column("content_type", String(255), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
)

calls = Table(
    "calls",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("conversation_id", Id, ForeignKey("conversations.id"), nullable=False, index=True),
    Column("contact_id", Id, ForeignKey("contacts.id"), nullable=False),
    Column("channel_account", String(100), nullable=False),
    Column("external_id", String(64), nullable=False),
    Column("direction", String(8), nullable=False),
    Column("started_at", Stamp, nullable=False),
    Column("ringing_at", Stamp),
    Column("answered_at", Stamp),
    Column("ended_at", Stamp),
    Column("answered_by", Id, ForeignKey("agents.id")),
    Column("outcome", String(32), nullable=False),
    Column("rings_to_answer", Float),
    Column("line", String(100)),
    Column("team_id", Id, ForeignKey("teams.id")),
    Column("route", String(16)),
    Column("time_to_answer_seconds", Float),
    Column("duration_seconds", Float),
    Column("wrapped_up_at", Stamp),
    Column("summary_note_id", Id, ForeignKey("messages.id")),
    Column("queue_prompted_at", Stamp),
    UniqueConstraint("channel_account", "external_id", name="uq_calls_account_external"),
)

call_legs = Table(
    "call_legs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("channel_account", String(100), nullable=False),
    Column("call_sid", String(64), nullable=False),
    Column("parent_sid", String(64)),
    Column("call_id", Id, ForeignKey("calls.id")),
    Column("status", String(32), nullable=False),
    Column("at", Stamp, nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("agent_id", Id, ForeignKey("agents.id")),
    Column("received_at", Stamp, nullable=False),
    Column("data", JSON, nullable=False),
    UniqueConstraint("channel_account", "call_sid", "status", "sequence", name="uq_call_legs_event"),
    Index("ix_call_legs_call", "call_id", "at"),
    Index("ix_call_legs_parent", "channel_account", "parent_sid"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("message_id", Id, ForeignKey("messages.id"), nullable=False, unique=True),
    Column("conversation_id", Id, ForeignKey("conversations.id"), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("channel_account", String(100), nullable=False),
    Column("recipient_kind", String(16), nullable=False),
    Column("recipient", String(320), nullable=False),
    Column("idempotency_key", String(128), nullable=False, unique=True),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", Stamp, nullable=False),
    Column("claimed_by", String(64)),
    Column("claimed_until", Stamp),
    Column("last_error", Text),
    Column("provider_id", String(255)),
    Column("refused", JSON),
    Column("created_at", Stamp, nullable=False),
    Column("finished_at", Stamp),
    Index("ix_outbox_status_next", "status", "next_attempt_at"),
    Index("ix_outbox_provider", "channel_account", "provider_id"),
)

early_statuses = Table(
    "early_statuses",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("channel_account", String(100), nullable=False),
    Column("provider_id", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("error", Text),
    Column("received_at", Stamp, nullable=False),
    Index("ix_early_statuses_ref", "channel_account", "provider_id"),
)

STATUS_CHANGES = text("kind IN ('conversation.status_changed', 'conversation.reopened')")
"""The events that change a conversation's status, as SQL with its values written out, so that
both databases see that a query with this condition may use the index limited to them."""

events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", Stamp, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("conversation_id", Id),
    Column("agent_id", Id),
    Column("data", JSON, nullable=False),
    Index("ix_events_conversation", "conversation_id", "id"),
    Index(
        "ix_events_status_changes",
        "conversation_id",
        "id",
        sqlite_where=STATUS_CHANGES,
        postgresql_where=STATUS_CHANGES,
    ),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("channel_account", String(100), nullable=False),
    Column("external_id", String(998)),
    Column("reason", Text, nullable=False),
    Column("raw_sha256", String(64)),
    Column("size", BigInteger),
    Column("created_at", Stamp, nullable=False),
    Column("resolved_at", Stamp),
    Column("resolution", Text),
    Column("resolved_by", Id, ForeignKey("agents.id")),
    Column("message_id", Id, ForeignKey("messages.id")),
)

pending_content = Table(
    "pending_content",
    metadata,
    Column("message_id", Id, ForeignKey("messages.id"), primary_key=True),
    Column("channel_account", String(100), nullable=False),
    Column("event_at", Stamp, nullable=False),
    Column("new_conversation", Boolean, nullable=False),
    Index("ix_pending_content_account", "channel_account", "message_id"),
)

timers = Table(
    "timers",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(64), nullable=False),
    Column("key", String(255), nullable=False, unique=True),
    Column("due_at", Stamp, nullable=False),
    Column("conversation_id", Id),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("claimed_by", String(64)),
    Column("claimed_until", Stamp),
    Column("fired_at", Stamp),
    Column("last_error", Text),
    Column("created_at", Stamp, nullable=False),
    Index("ix_timers_status_due", "status", "due_at"),
    Index("ix_timers_conversation_kind", "conversation_id", "kind"),
)

sla_cycles = Table(
    "sla_cycles",
    metadata,
    Column("conversation_id", Id, primary_key=True),
    Column("metric", String(32), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("policy", String(100), nullable=False),
    Column("team_id", Id),
    Column("assignee_id", Id),
    Column("started_at", Stamp, nullable=False),
    Column("due_at", Stamp),
    Column("warn_at", Stamp),
    Column("fulfilled_at", Stamp),
    Column("breached_at", Stamp),
    Column("paused", Boolean, nullable=False, server_default="0"),
    Column("business_seconds", BigInteger),
    Column("digest", String(16), nullable=False),
    Column("warned_event_at", Stamp),
    Column("breached_event_at", Stamp),
    Column("fulfilled_event_at", Stamp),
    Column("updated_at", Stamp, nullable=False),
    Index("ix_sla_cycles_started", "started_at"),
)

sla_inputs = Table(
    "sla_inputs",
    metadata,
    Column("conversation_id", Id, primary_key=True),
    Column("digest", String(32), nullable=False),
    Column("computed_at", Stamp, nullable=False),
    Column("recheck_at", Stamp),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("conversation_id", Id, ForeignKey("conversations.id"), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("key", String(255), nullable=False, unique=True),
    Column("status", String(16), nullable=False),
    Column("due_at", Stamp, nullable=False),
    Column("not_before", Stamp),
    Column("assignee_id", Id, ForeignKey("agents.id")),
    Column("payload", JSON, nullable=False),
    Column("created_at", Stamp, nullable=False),
    Column("done_at", Stamp),
    Column("done_by", Id, ForeignKey("agents.id")),
    Column("overdue_event_at", Stamp),
    Index("ix_tasks_status_due", "status", "due_at"),
)

imap_cursors = Table(
    "imap_cursors",
    metadata,
    Column("channel_account", String(100), primary_key=True),
    Column("mailbox", String(255), primary_key=True),
    Column("uidvalidity", BigInteger, nullable=False),
    Column("last_uid", BigInteger, nullable=False),
    Column("highest_modseq", BigInteger),
    Column("updated_at", Stamp, nullable=False),
)

uploads = Table(
    "uploads",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("agent_id", Id, ForeignKey("agents.id"), nullable=False, index=True),
    Column("filename", String(255), nullable=False),
    Column("content_type", String(255), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("created_at", Stamp, nullable=False),
)
