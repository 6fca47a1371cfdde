"""What the pre-send checks look at (`Draft`) and what they report (`Finding`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from hub.models import ChannelKind

Severity = Literal["error", "warning"]
FieldName = Literal["subject", "body", "html", "attachments", "signature"]


@dataclass(frozen=True)
class DraftAttachment:
    """An attachment about to be sent: its name, declared type, size, and first bytes.

    `head` is the start of the content (a few hundred bytes are enough) so that the check can
    tell whether the content really is what the name says.
    """

    filename: str
    content_type: str
    size: int
    head: bytes


@dataclass(frozen=True)
class Draft:
    """An outgoing message as the checks see it.

    `text` is the plain-text body (the text/plain part of a mail), `html` the HTML part if the
    message has one. `conversation_id` gives the `[#id]` reference a reply's subject must keep;
    `automatic` marks messages sent by triggers and acknowledgements rather than typed by an agent.
    """

    channel: ChannelKind
    subject: str | None
    text: str
    html: str | None = None
    attachments: Sequence[DraftAttachment] = field(default_factory=tuple)
    is_reply: bool = False
    conversation_id: int | None = None
    automatic: bool = False


@dataclass(frozen=True)
class Finding:
    """One broken rule: its ID (etiquette.md), how bad, what to tell the agent, and where.

    `span` holds offsets [start, end) into the checked field (`subject`, `body` = `Draft.text`,
    `html`, `signature` = also offsets into `Draft.text`); `None` when the finding is about the
    whole field. `attachment` names the file for E7 findings. `message` and `suggestion` are in
    the agent's language.
    """

    rule_id: str
    severity: Severity
    message: str
    span: tuple[int, int] | None
    field: FieldName
    suggestion: str | None = None
    attachment: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The finding as JSON-ready data, for the API and for storing with the message."""
        return {
            "rule_id": self.rule_id,
            "severity": self.severity,
            "message": self.message,
            "field": self.field,
            "span": list(self.span) if self.span is not None else None,
            "suggestion": self.suggestion,
            "attachment": self.attachment,
        }


def has_errors(findings: Iterable[Finding]) -> bool:
    """Whether any finding blocks sending."""
    return any(f.severity == "error" for f in findings)
