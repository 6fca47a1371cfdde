"""E7: attachments the recipient can open and receive, and that are what their names say."""

from __future__ import annotations

import codecs
from pathlib import PurePosixPath

from hub.etiquette.config import AttachmentRule
from hub.etiquette.findings import Draft, DraftAttachment, Finding
from hub.etiquette.messages import channel_name, file_kind, say, size_text

EXTENSIONS = {
    ".pdf": "pdf",
    ".png": "png",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".gif": "gif",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".zip": "zip",
    ".docx": "docx",
    ".xlsx": "xlsx",
    ".txt": "text",
    ".csv": "text",
    ".log": "text",
    ".md": "text",
}
_CONTAINERS = {"zip": "zip", "docx": "zip", "xlsx": "zip"}
_SIGNATURES = (
    (b"%PDF-", "pdf"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),
    (b"MZ", "exe"),
    (b"\x7fELF", "elf"),
    (b"\xcf\xfa\xed\xfe", "macho"),
    (b"#!", "script"),
    (b"Rar!", "rar"),
    (b"7z\xbc\xaf", "7z"),
    (b"\xd0\xcf\x11\xe0", "ole"),
)


def sniff(head: bytes) -> str | None:
    """What the first bytes of a file say it is: a file type, a program or archive kind
    ("exe", "elf", "macho", "script", "rar", "7z", "ole"), or None if unknown."""
    for magic, kind in _SIGNATURES:
        if head.startswith(magic):
            return kind
    if head.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")) or _is_text(head):
        return "text"
    return None


def _is_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return all(b >= 0x20 or b in b"\t\r\n\f" for b in head)


def declared_type(filename: str) -> str | None:
    """The file type a name claims by its extension (None when the extension is unknown)."""
    return EXTENSIONS.get(PurePosixPath(filename).suffix.casefold())


def check_attachments(draft: Draft, rule: AttachmentRule, language: str) -> list[Finding]:
    """E7 findings, one per problem, each naming its attachment."""
    if not rule.enabled or not draft.attachments:
        return []
    channel = channel_name(language, draft.channel.value)
    limits = rule.channels.get(draft.channel)
    if limits is None:
        return [
            _finding(rule, say(language, "attachment_channel", channel=channel, name=a.filename), a.filename)
            for a in draft.attachments
        ]
    findings = []
    if len(draft.attachments) > limits.max_count:
        message = say(language, "attachment_count", count=len(draft.attachments), channel=channel,
                      limit=limits.max_count)  # fmt: skip
        findings.append(_finding(rule, message, None))
    for attachment in draft.attachments:
        findings.extend(
            _one(attachment, rule, limits.allowed_types, limits.max_file_bytes, channel, language)
        )
    total = sum(a.size for a in draft.attachments)
    if total > limits.max_total_bytes:
        message = say(language, "attachment_total_size", size=size_text(total), channel=channel,
                      limit=size_text(limits.max_total_bytes))  # fmt: skip
        findings.append(_finding(rule, message, None))
    return findings


def _one(
    attachment: DraftAttachment,
    rule: AttachmentRule,
    allowed: tuple[str, ...],
    max_bytes: int,
    channel: str,
    language: str,
) -> list[Finding]:
    name = attachment.filename
    declared = declared_type(name)
    findings = []
    if declared not in allowed:
        message = say(language, "attachment_type", name=name, channel=channel, allowed=", ".join(allowed))
        findings.append(_finding(rule, message, name))
    if attachment.size == 0:
        return [*findings, _finding(rule, say(language, "attachment_empty", name=name), name)]
    if attachment.size > max_bytes:
        message = say(language, "attachment_file_size", name=name, size=size_text(attachment.size),
                      channel=channel, limit=size_text(max_bytes))  # fmt: skip
        findings.append(_finding(rule, message, name))
    if rule.verify_content and declared is not None:
        actual = sniff(attachment.head)
        expected = _CONTAINERS.get(declared, declared)
        if actual is None:
            findings.append(
                _finding(rule, say(language, "attachment_unreadable", name=name, declared=declared), name)
            )
        elif actual != expected:
            message = say(language, "attachment_mismatch", name=name, declared=declared,
                          actual=file_kind(language, actual))  # fmt: skip
            findings.append(_finding(rule, message, name))
    return findings


def _finding(rule: AttachmentRule, message: str, name: str | None) -> Finding:
    return Finding("E7", rule.severity, message, None, "attachments", attachment=name)
