"""The hub's normalised domain model: plain data shared by channels, store and services.

Nothing here does I/O. Channels convert provider data into `InboundMessage` at their edge;
the store turns rows into the records below; the web API serialises them with `to_dict`.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import phonenumbers

from hub.pickling import quick_pickle


class ChannelKind(enum.StrEnum):
    """The kinds of channel a message can travel on."""

    EMAIL = "email"
    SMS = "sms"
    WHATSAPP = "whatsapp"
    VOICE = "voice"
    VOICEMAIL = "voicemail"
    FAX = "fax"
    CHAT = "chat"
    API = "api"

    @property
    def is_conversational(self) -> bool:
        """Whether messages thread by the contact's open conversation rather than by reference."""
        return self in _CONVERSATIONAL

    @property
    def identity_kind(self) -> IdentityKind | None:
        """The kind of address a customer has on this channel; None where any kind may come
        (the API channel carries whatever identity the posting system sends)."""
        return _IDENTITY_KIND.get(self)


_CONVERSATIONAL = frozenset(
    {
        ChannelKind.SMS,
        ChannelKind.WHATSAPP,
        ChannelKind.VOICE,
        ChannelKind.VOICEMAIL,
        ChannelKind.CHAT,
        ChannelKind.API,
    }
)


class IdentityKind(enum.StrEnum):
    """How a contact can be reached or recognised."""

    EMAIL = "email"
    PHONE = "phone"
    FAX = "fax"
    CHAT = "chat"
    EXTERNAL = "external"


_IDENTITY_KIND = {
    ChannelKind.EMAIL: IdentityKind.EMAIL,
    ChannelKind.SMS: IdentityKind.PHONE,
    ChannelKind.WHATSAPP: IdentityKind.PHONE,
    ChannelKind.VOICE: IdentityKind.PHONE,
    ChannelKind.VOICEMAIL: IdentityKind.PHONE,
    ChannelKind.FAX: IdentityKind.FAX,
    ChannelKind.CHAT: IdentityKind.CHAT,
}


class Direction(enum.StrEnum):
    """Which way a timeline entry went."""

    INBOUND = "in"
    OUTBOUND = "out"
    NOTE = "note"


class ConversationStatus(enum.StrEnum):
    """Where a conversation stands in its life."""

    OPEN = "open"
    PENDING = "pending"
    SNOOZED = "snoozed"
    RESOLVED = "resolved"


class Priority(enum.IntEnum):
    """How urgent a conversation is; higher is more urgent."""

    LOW = 0
    NORMAL = 1
    HIGH = 2
    URGENT = 3


class Role(enum.IntEnum):
    """What a user may do; each role includes the ones below it."""

    AGENT = 1
    SUPERVISOR = 2
    ADMIN = 3


class Availability(enum.StrEnum):
    """Whether an agent can take new work now."""

    AVAILABLE = "available"
    BUSY = "busy"
    AWAY = "away"


class OutboundStatus(enum.StrEnum):
    """The delivery state of an outgoing message."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"


class CallOutcome(enum.StrEnum):
    """How a call ended, as the SLA reports count it; a callback call the hub placed is `reached` or not."""

    RINGING = "ringing"
    ANSWERED_IN_TIME = "answered_in_time"
    ANSWERED_LATE = "answered_late"
    VOICEMAIL = "voicemail"
    ABANDONED = "abandoned"
    MISSED = "missed"
    REACHED = "reached"
    NOT_REACHED = "not_reached"


def normalise_address(kind: IdentityKind, address: str, region: str | None = None) -> str:
    """Return the canonical form of an identity address; raise ValueError if it is not valid.

    E-mail addresses are lower-cased; phone and fax numbers become E.164 (a number without a
    leading `+` is read in `region`); chat and external ids are kept as they are.
    """
    address = address.strip()
    if not address:
        raise ValueError("empty address")
    if kind is IdentityKind.EMAIL:
        if "@" not in address or address.startswith("@") or address.endswith("@"):
            raise ValueError(f"not an e-mail address: {address!r}")
        return address.lower()
    if kind in (IdentityKind.PHONE, IdentityKind.FAX):
        try:
            parsed = phonenumbers.parse(address, region)
        except phonenumbers.NumberParseException as err:
            raise ValueError(f"not a phone number: {address!r} ({err})") from err
        if not phonenumbers.is_valid_number(parsed):
            raise ValueError(f"not a valid phone number: {address!r}")
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return address


@quick_pickle
@dataclass(frozen=True, slots=True)
class Identity:
    """One way to recognise a contact: an e-mail address, an E.164 number, a chat visitor id.

    `address` is always in canonical form (see `normalise_address`); build with `Identity.of`.
    """

    kind: IdentityKind
    address: str

    @classmethod
    def of(cls, kind: IdentityKind | str, address: str, region: str | None = None) -> Identity:
        """Build an identity, normalising the address; raise ValueError if it is invalid."""
        kind = IdentityKind(kind)
        return cls(kind, normalise_address(kind, address, region))


@dataclass(frozen=True, slots=True)
class Contact:
    """A customer. Several identities may belong to one contact; merged contacts point on.

    `merged_into` is set on a contact that was merged into another: lookups follow it.
    """

    id: int
    name: str | None
    language: str | None
    timezone: str | None
    created_at: datetime
    identities: tuple[Identity, ...] = ()
    merged_into: int | None = None


@dataclass(frozen=True, slots=True)
class Team:
    """A group of agents that conversations and calls are routed to."""

    id: int
    name: str
    department: str | None = None


@dataclass(frozen=True, slots=True)
class Agent:
    """A person who logs in: agent, supervisor or admin.

    `availability` drives round-robin assignment and call ringing; `language` picks the UI
    and the language of etiquette findings.
    """

    id: int
    username: str
    display_name: str
    role: Role
    availability: Availability
    language: str
    active: bool
    teams: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Conversation:
    """A thread with one contact, on the channel it started on, across its whole life.

    `snoozed_until` is set while `status` is SNOOZED. `due_at` is the earliest SLA deadline
    (filled by the SLA clock); `promise_due_at` is the reply-time promise made to the
    customer, if any.
    """

    id: int
    contact_id: int
    channel: ChannelKind
    channel_account: str
    subject: str | None
    status: ConversationStatus
    priority: Priority
    assignee_id: int | None
    team_id: int | None
    created_at: datetime
    updated_at: datetime
    last_message_at: datetime | None
    last_inbound_at: datetime | None
    snoozed_until: datetime | None = None
    due_at: datetime | None = None
    promise_due_at: datetime | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file that came with or goes out with a message, stored out of line by its hash."""

    id: int
    message_id: int
    filename: str
    content_type: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Message:
    """One entry of a conversation's timeline: inbound, outbound or an internal note.

    `text` is what agents read; `html` is the sanitised HTML, if the channel had any.
    `external_id` is the provider's id (unique per channel account). `delivery` is the
    outbound status for outgoing messages. `meta` keeps channel details for debugging.
    """

    id: int
    conversation_id: int
    direction: Direction
    channel: ChannelKind
    channel_account: str
    external_id: str | None
    sender: str | None
    author_id: int | None
    subject: str | None
    text: str
    html: str | None
    created_at: datetime
    delivery: OutboundStatus | None = None
    automatic: bool = False
    meta: dict[str, Any] = field(default_factory=dict)
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True, slots=True)
class Call:
    """A phone call on a conversation, with the timings the three-ring SLA is measured on.

    `route` is where the caller is now or ended up (`agents`, `team`, `queue`, `voicemail`,
    `callback`), or `callback_call` for an outbound call the hub placed to call a customer
    back (P6: its answer is the customer's); `time_to_answer_seconds` runs from arrival to
    the first agent answering;
    `wrapped_up_at` and `summary_note_id` are set when the agent closes the call (P5);
    `queue_prompted_at` when the caller's wait in the queue passed the line's limit and the
    team was prompted (P3).
    """

    id: int
    conversation_id: int
    contact_id: int
    external_id: str
    direction: Direction
    started_at: datetime
    ringing_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    answered_by: int | None
    outcome: CallOutcome
    rings_to_answer: float | None = None
    line: str | None = None
    team_id: int | None = None
    route: str | None = None
    time_to_answer_seconds: float | None = None
    duration_seconds: float | None = None
    wrapped_up_at: datetime | None = None
    summary_note_id: int | None = None
    queue_prompted_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """An audit record: who did what to which conversation, and when."""

    id: int
    at: datetime
    kind: str
    conversation_id: int | None
    agent_id: int | None
    data: dict[str, Any]


@quick_pickle
@dataclass(frozen=True, slots=True)
class InboundAttachment:
    """An attachment as a channel received it, before it is stored."""

    filename: str
    content_type: str
    data: bytes


@quick_pickle
@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A customer message as a channel hands it to `Inbox.ingest`.

    `(channel_account, external_id)` identifies it: ingesting the same pair twice stores it
    once. `reply_refs` are the channel's references to earlier messages (e-mail In-Reply-To
    and References); `own_refs` are this message's own references that later replies may
    cite (its Message-ID). `raw` is the provider payload, kept out of line for debugging.
    `content_pending` marks a message stored from its envelope alone (e.g. mail read from its
    headers): the channel fills in text, HTML and attachments later (`hub.content`), and rules
    see the message only then.
    """

    channel: ChannelKind
    channel_account: str
    external_id: str
    sender: Identity
    text: str
    received_at: datetime
    sender_name: str | None = None
    subject: str | None = None
    html: str | None = None
    attachments: tuple[InboundAttachment, ...] = ()
    reply_refs: tuple[str, ...] = ()
    own_refs: tuple[str, ...] = ()
    raw: bytes | None = None
    language: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    content_pending: bool = False


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What `Inbox.ingest` did with one inbound message."""

    message_id: int
    conversation_id: int
    contact_id: int
    duplicate: bool
    new_conversation: bool
    reopened: bool = False


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """An outgoing message as the dispatcher hands it to `Channel.send`.

    `idempotency_key` is stable across retries: a channel passes it to its provider (or
    derives its Message-ID from it) so that a retry after a crash never delivers twice.
    `recipient` is the contact identity to send to; `reply_refs` the references a threaded
    channel needs (e-mail In-Reply-To/References); `queued_at` when the reply entered the
    outbox (nothing it caused at a provider can be older).
    """

    id: int
    message_id: int
    conversation_id: int
    channel: ChannelKind
    channel_account: str
    recipient: Identity
    text: str
    idempotency_key: str
    attempt: int
    subject: str | None = None
    html: str | None = None
    attachments: tuple[Attachment, ...] = ()
    reply_refs: tuple[str, ...] = ()
    automatic: bool = False
    meta: dict[str, Any] = field(default_factory=dict)
    queued_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What a channel reports after sending.

    `status` is SENT when the provider accepted it, DELIVERED when delivery is confirmed at
    once, FAILED for a permanent refusal (`error` says why). `provider_id` is the provider's
    id for later status callbacks; `refused` lists recipients refused individually.
    """

    status: OutboundStatus
    provider_id: str | None = None
    error: str | None = None
    refused: dict[str, str] = field(default_factory=dict)


def to_dict(record: Any) -> dict[str, Any]:
    """Turn a model record into JSON-ready data (enums as values, datetimes as ISO 8601)."""
    return {f.name: _jsonable(getattr(record, f.name)) for f in dataclasses.fields(record)}


def _jsonable(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value if not isinstance(value, enum.IntEnum) else value.name.lower()
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value
