"""The schema of `rules/etiquette.yaml` and `rules/phrases/*.yaml` (rule IDs from etiquette.md)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from hub.models import ChannelKind
from hub.rules.durations import Duration

Severity = Literal["error", "warning"]
Language = Literal["en", "zh"]
PhraseRule = Literal["L1", "L2", "L3", "L4", "L5", "L6", "L7"]
SignatureField = Literal["name", "title", "address", "phone"]
FileType = Literal["pdf", "png", "jpeg", "gif", "tiff", "zip", "docx", "xlsx", "text"]

FORBIDDEN_RULES: frozenset[str] = frozenset({"L1", "L2", "L5", "L6"})


def _as_list(value: object) -> object:
    return [value] if isinstance(value, str) else value


class Strict(BaseModel):
    """A rule-file mapping: unknown keys are errors and the loaded value never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Rule(Strict):
    """Switches every rule has."""

    enabled: bool = True
    severity: Severity = "error"


class SubjectRule(Rule):
    """E3: an accurate, concise subject that keeps the conversation reference on replies."""

    channels: tuple[ChannelKind, ...] = (ChannelKind.EMAIL, ChannelKind.FAX)
    warn_length: int = Field(50, gt=0)
    max_length: int = Field(78, gt=0)
    reply_prefix: str = "Re: "
    token_format: str = "[#{id}]"  # noqa: S105
    token_required_on_replies: bool = True
    generic_severity: Severity = "warning"
    generic_subjects: dict[Language, tuple[str, ...]] = {
        "en": ("question", "questions", "hello", "hi", "help", "info", "information", "request",
               "issue", "problem", "inquiry", "enquiry", "update", "follow up", "follow-up",
               "your email", "your message", "your request", "reply", "response", "no subject",
               "urgent", "important", "fyi"),
        "zh": ("问题", "你好", "您好", "咨询", "回复", "答复", "请求", "帮助", "求助", "通知",
               "信息", "事情", "急", "紧急", "重要", "无主题", "关于您的问题", "您的邮件"),
    }  # fmt: skip

    @field_validator("token_format")
    @classmethod
    def _has_id(cls, value: str) -> str:
        if value.count("{id}") != 1:
            raise ValueError("must contain {id} exactly once, e.g. [#{id}]")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> SubjectRule:
        if self.warn_length > self.max_length:
            raise ValueError("warn_length must not be greater than max_length")
        return self


class BodyRule(Rule):
    """E4: one mail, one issue, one page; a long body states its main point first."""

    channels: tuple[ChannelKind, ...] = (ChannelKind.EMAIL, ChannelKind.FAX)
    max_lines: int = Field(50, gt=0)
    max_chars: int = Field(3000, gt=0)
    summary_first_over_lines: int = Field(20, gt=0)
    summary_max_chars: int = Field(300, gt=0)
    summary_severity: Severity = "warning"
    summary_markers: dict[Language, tuple[str, ...]] = {
        "en": ("in short", "summary", "tl;dr", "short answer", "in brief", "to sum up"),
        "zh": ("简而言之", "总之", "摘要", "概要", "简要说明", "结论"),
    }


class FormattingRule(Rule):
    """E5: no emoticons or repeated punctuation on formal channels; HTML carries a text part."""

    severity: Severity = "warning"
    formal_channels: tuple[ChannelKind, ...] = (ChannelKind.EMAIL, ChannelKind.FAX)
    emoticons: bool = True
    repeated_punctuation: bool = True
    plain_text_required_with_html: bool = True
    plain_text_severity: Severity = "error"
    plain_text_min_coverage: float = Field(0.8, ge=0, le=1)


class SignatureRule(Rule):
    """E6: a signature after the `-- ` delimiter with the required fields."""

    channels: tuple[ChannelKind, ...] = (ChannelKind.EMAIL, ChannelKind.FAX)
    delimiter: str = "-- "
    required_fields: tuple[SignatureField, ...] = ("name", "title", "address", "phone")
    title_words: dict[Language, tuple[str, ...]] = {
        "en": ("agent", "advisor", "adviser", "assistant", "consultant", "coordinator", "director",
               "engineer", "executive", "head", "lead", "manager", "officer", "representative",
               "specialist", "supervisor", "support", "team leader", "technician", "associate"),
        "zh": ("客服", "专员", "经理", "主管", "代表", "顾问", "工程师", "组长", "助理", "总监",
               "主任", "负责人", "技术支持", "售后"),
    }  # fmt: skip
    address_words: dict[Language, tuple[str, ...]] = {
        "en": ("street", "st.", "road", "rd.", "avenue", "ave", "boulevard", "blvd", "lane",
               "suite", "floor", "building", "drive", "way", "square", "plaza", "park", "po box", "unit",
               "address"),
        "zh": ("省", "市", "区", "县", "路", "街", "号", "楼", "室", "大厦", "大道", "地址"),
    }  # fmt: skip
    phone_labels: tuple[str, ...] = ("tel", "phone", "mobile", "fax", "电话", "手机", "座机", "传真")

    @field_validator("delimiter")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if not value.strip() or "\n" in value:
            raise ValueError("must be a non-empty single line, e.g. '-- '")
        return value


class AttachmentLimits(Strict):
    """E7 limits for one channel."""

    allowed_types: tuple[FileType, ...]
    max_file_bytes: int = Field(gt=0)
    max_total_bytes: int = Field(gt=0)
    max_count: int = Field(10, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> AttachmentLimits:
        if self.max_file_bytes > self.max_total_bytes:
            raise ValueError("max_file_bytes must not be greater than max_total_bytes")
        return self


MIB = 1024 * 1024
_ALL_TYPES: tuple[FileType, ...] = ("pdf", "png", "jpeg", "gif", "tiff", "zip", "docx", "xlsx", "text")


class AttachmentRule(Rule):
    """E7: the recipient can open the attachments and receive their size."""

    channels: dict[ChannelKind, AttachmentLimits] = {
        ChannelKind.EMAIL: AttachmentLimits(
            allowed_types=_ALL_TYPES, max_file_bytes=10 * MIB, max_total_bytes=20 * MIB
        ),
        ChannelKind.FAX: AttachmentLimits(
            allowed_types=("pdf", "tiff"), max_file_bytes=5 * MIB, max_total_bytes=10 * MIB
        ),
        ChannelKind.CHAT: AttachmentLimits(
            allowed_types=("pdf", "png", "jpeg", "gif", "text"),
            max_file_bytes=5 * MIB,
            max_total_bytes=10 * MIB,
        ),
        ChannelKind.WHATSAPP: AttachmentLimits(
            allowed_types=("pdf", "png", "jpeg"), max_file_bytes=5 * MIB, max_total_bytes=5 * MIB, max_count=1
        ),
        ChannelKind.SMS: AttachmentLimits(
            allowed_types=("png", "jpeg", "gif"), max_file_bytes=MIB, max_total_bytes=3 * MIB, max_count=3
        ),
    }
    verify_content: bool = True


class SpellingRule(Rule):
    """E8: spelling before sending (English only; Chinese has no spell checker here)."""

    severity: Severity = "warning"
    languages: dict[Language, bool] = {"en": True, "zh": False}
    custom_words: tuple[str, ...] = ()
    max_findings: int = Field(20, gt=0)

    @field_validator("languages")
    @classmethod
    def _checkable(cls, value: dict[Language, bool]) -> dict[Language, bool]:
        if value.get("zh"):
            raise ValueError("there is no Chinese spell checker; zh must be false")
        return value


class PhraseRuleSwitch(Rule):
    """Switches for one phrase rule (L1…L7); an entry's own severity wins over this one."""


class NegativeWordingRule(Rule):
    """L3: negative wording is flagged unless an alternative follows within a few sentences."""

    severity: Severity = "warning"
    alternative_within_sentences: int = Field(2, ge=0)


class PolicyRule(Rule):
    """L7: a refusal that cites policy must give the reason nearby."""

    severity: Severity = "warning"
    reason_within_sentences: int = Field(1, ge=0)


class HoldRule(Rule):
    """P3: don't keep people waiting; after `max_hold_seconds` without an answer, the hold
    message (template `chat_hold`) apologises and asks the chat visitor to hold."""

    max_hold_seconds: int = Field(60, ge=1, le=3600)


class PhraseRules(Strict):
    """The language rules checked with the phrase lists."""

    L1: PhraseRuleSwitch = PhraseRuleSwitch()
    L2: PhraseRuleSwitch = PhraseRuleSwitch()
    L3: NegativeWordingRule = NegativeWordingRule()
    L4: PhraseRuleSwitch = PhraseRuleSwitch(severity="warning")
    L5: PhraseRuleSwitch = PhraseRuleSwitch()
    L6: PhraseRuleSwitch = PhraseRuleSwitch(severity="warning")
    L7: PolicyRule = PolicyRule()


class GreetingRule(Rule):
    """V1: a personal voicemail greeting, refreshed often; older than `greeting_max_age` is a warning."""

    severity: Severity = "warning"
    greeting_max_age: Duration = timedelta(days=30)


class MessageLengthRule(Rule):
    """V5: short messages: scripts within `script_max_words`, recordings within `max_length_seconds`."""

    script_max_words: int = Field(75, gt=0)
    max_length_seconds: int = Field(120, ge=5, le=14400)


class EtiquetteConfig(Strict):
    """`rules/etiquette.yaml`: limits and switches of the pre-send checks, by rule ID."""

    E3: SubjectRule = SubjectRule()
    E4: BodyRule = BodyRule()
    E5: FormattingRule = FormattingRule()
    E6: SignatureRule = SignatureRule()
    E7: AttachmentRule = AttachmentRule()
    E8: SpellingRule = SpellingRule()
    V1: GreetingRule = GreetingRule()
    V5: MessageLengthRule = MessageLengthRule()
    P3: HoldRule = HoldRule()
    phrases: PhraseRules = PhraseRules()


Phrases = Annotated[tuple[Annotated[str, Field(min_length=1)], ...], BeforeValidator(_as_list)]


class PhraseEntry(Strict):
    """One phrase-list entry: a phrase and its variants, the rule it breaks, and the advice.

    `rewrite` is the suggested constructive wording (L3), `explanation` the plain words for a
    jargon term (L4), `suggestion` optional advice for the other rules. `except` lists longer
    phrases in which an overlapping hit is not a violation (e.g. 不知道您是否方便 for 我不知道);
    an exception does not apply across clause punctuation it does not contain itself. For L7 `role`
    says whether the phrase cites policy, refuses, or gives a reason; an L3 entry with role
    `alternative` marks wording that offers the customer another way (negative wording
    followed by an alternative is constructive).
    """

    rule: PhraseRule
    phrases: Phrases = Field(min_length=1)
    language: Language | None = None
    severity: Severity | None = None
    suggestion: str | None = None
    rewrite: str | None = None
    explanation: str | None = None
    exceptions: Phrases = Field((), alias="except")
    role: Literal["policy", "refusal", "reason", "alternative"] | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _fields_fit_rule(self) -> PhraseEntry:
        if self.rule == "L4" and not self.explanation:
            raise ValueError("an L4 entry needs an explanation (what to say instead of the jargon)")
        if self.rule == "L7" and self.role not in ("policy", "refusal", "reason"):
            raise ValueError("an L7 entry needs a role: policy, refusal or reason")
        if self.rule == "L3" and self.role not in (None, "alternative"):
            raise ValueError("the only role of an L3 entry is alternative")
        if self.rule not in ("L3", "L7") and self.role is not None:
            raise ValueError("role is only for L3 (alternative) and L7 (policy, refusal, reason) entries")
        if self.rule == "L3" and not self.rewrite and self.role is None:
            raise ValueError("an L3 entry needs a rewrite (the constructive wording to suggest)")
        if self.rewrite and self.rule != "L3":
            raise ValueError("rewrite is only for L3 entries (use suggestion)")
        if self.explanation and self.rule != "L4":
            raise ValueError("explanation is only for L4 entries (use suggestion)")
        return self


class PhraseFile(Strict):
    """One `rules/phrases/*.yaml` file: a language and its entries."""

    language: Language
    entries: tuple[PhraseEntry, ...] = ()
