"""SMS and WhatsApp through a Twilio account: inbound webhooks, status callbacks and sending.

Routes (signed, under the account's prefix): `messages` receives SMS and WhatsApp messages
(form fields `MessageSid, From, To, Body, NumMedia, MediaUrl{N}, MediaContentType{N}`;
WhatsApp addresses are `whatsapp:+E164` with `ProfileName` and `WaId`); `messages/status`
receives status callbacks (`MessageSid, MessageStatus, ErrorCode`).

Inbound messages are stored once per MessageSid on the sender's contact (E.164), with their
media downloaded with the account's credentials. Replies go out through the async REST
client; before that, and already while the agent composes, a reply is checked against the
SMS segment limit and WhatsApp's 24-hour window (outside it, only an approved template).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiDictProxy
from sqlalchemy import func, select
from twilio.rest.api.v2010.account.message import MessageInstance

from channels.twilio import rest, segments
from channels.twilio.earlier_sends import accepted_before
from channels.twilio.media import filename
from channels.twilio.messaging_settings import MessagingSettings, WhatsAppTemplate
from channels.twilio.part import AccountPart
from channels.twilio.signature import SignedRequest
from hub import records
from hub.errors import ChannelError, DeliveryRejected
from hub.etiquette import Draft, Finding
from hub.ingest import Quarantined
from hub.models import (
    ChannelKind,
    Conversation,
    DeliveryResult,
    Direction,
    Identity,
    IdentityKind,
    InboundAttachment,
    InboundMessage,
    OutboundMessage,
    OutboundStatus,
)
from hub.store import Database, schema

if TYPE_CHECKING:
    from channels.twilio.voice import TwilioVoiceChannel

log = logging.getLogger(__name__)

WHATSAPP = "whatsapp:"
WHATSAPP_WINDOW = timedelta(hours=24)
WHATSAPP_MAX_CHARS = 4096
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
TEMPLATE_META = "whatsapp_template"
"""The reply meta key naming the approved WhatsApp template to send."""
RULE = "channel"
"""The `rule_id` of findings about what the channel can carry (not an etiquette rule)."""

STATUSES: Mapping[str, OutboundStatus] = {
    "sent": OutboundStatus.SENT,
    "delivered": OutboundStatus.DELIVERED,
    "read": OutboundStatus.DELIVERED,
    "undelivered": OutboundStatus.FAILED,
    "failed": OutboundStatus.FAILED,
}
"""Twilio's message statuses that move a message on; queued, accepted, sending and scheduled do not."""

TEXTS: Mapping[str, Mapping[str, str]] = {
    "segments": {
        "en": "This SMS would go out as {count} segments ({encoding}, {units} characters); the limit is "
        "{max} segments, about {max_chars} characters. Shorten it or split it into several replies.",
        "zh": "这条短信将分成 {count} 段发送（{encoding}，{units} 个字符），上限为 {max} 段，"
        "约 {max_chars} 个字符。请缩短内容或分成几条回复。",
    },
    "whatsapp_length": {
        "en": "A WhatsApp message can be at most {max} characters; this one has {length}.",
        "zh": "WhatsApp 消息最多 {max} 个字符，这条有 {length} 个。",
    },
    "window": {
        "en": "WhatsApp allows free-form replies only within 24 hours of the customer's last message "
        "({last}). Send an approved template instead: {templates}.",
        "zh": "WhatsApp 只允许在客户最后一条消息后的 24 小时内发送自由格式回复（{last}）。"
        "请改用已批准的模板：{templates}。",
    },
    "never": {"en": "the customer has not written on WhatsApp yet", "zh": "客户尚未通过 WhatsApp 发来消息"},
    "last": {"en": "last message {at} UTC", "zh": "最后一条消息于 UTC {at}"},
    "no_templates": {
        "en": "none is configured for this account; ask an administrator to add one",
        "zh": "此账户尚未配置模板，请联系管理员添加",
    },
    "unknown_template": {
        "en": "There is no approved WhatsApp template named {name!r}; configured: {templates}.",
        "zh": "没有名为 {name!r} 的已批准 WhatsApp 模板；已配置：{templates}。",
    },
    "template_not_whatsapp": {
        "en": "Templates are for WhatsApp replies only; this conversation is on {channel}.",
        "zh": "模板只用于 WhatsApp 回复；此会话的渠道是 {channel}。",
    },
    "attachments": {
        "en": "Attachments cannot be sent by SMS or WhatsApp from the hub yet; send a link instead.",
        "zh": "暂不支持通过短信或 WhatsApp 发送附件，请改为发送链接。",
    },
}


def _text(key: str, language: str, **values: Any) -> str:
    texts = TEXTS[key]
    return texts.get(language, texts["en"]).format(**values)


@dataclass(frozen=True, slots=True)
class Media:
    """One media item of an inbound message: where Twilio keeps it and its declared type."""

    url: str
    content_type: str


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """An inbound webhook turned into the hub's message, with the media still to fetch."""

    message: InboundMessage
    media: tuple[Media, ...]


def parse_message(account: str, form: MultiDictProxy[str], received_at: datetime) -> ParsedMessage:
    """An SMS/WhatsApp webhook as an inbound message; ValueError if a required field is bad."""
    sid = form.get("MessageSid") or form.get("SmsMessageSid") or ""
    if not sid:
        raise ValueError("the webhook has no MessageSid")
    sender = form.get("From", "")
    whatsapp = sender.startswith(WHATSAPP)
    identity = Identity.of(IdentityKind.PHONE, sender.removeprefix(WHATSAPP))
    try:
        count = int(form.get("NumMedia", "0") or 0)
    except ValueError:
        raise ValueError(f"NumMedia is not a number: {form.get('NumMedia')!r}") from None
    media = tuple(
        Media(form[f"MediaUrl{n}"], form.get(f"MediaContentType{n}", "application/octet-stream"))
        for n in range(max(0, min(count, 10)))
        if form.get(f"MediaUrl{n}")
    )
    meta = {
        key: form[field]
        for key, field in (("to", "To"), ("wa_id", "WaId"), ("segments", "NumSegments"))
        if form.get(field)
    }
    message = InboundMessage(
        channel=ChannelKind.WHATSAPP if whatsapp else ChannelKind.SMS,
        channel_account=account,
        external_id=sid,
        sender=identity,
        sender_name=(form.get("ProfileName") or None) if whatsapp else None,
        text=form.get("Body", ""),
        received_at=received_at,
        raw=urlencode(list(form.items())).encode(),
        meta=meta,
    )
    return ParsedMessage(message, media)


def delivery_result(form: MultiDictProxy[str]) -> tuple[str, DeliveryResult | None]:
    """A status callback's MessageSid and what it says; None for statuses that change nothing."""
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    status = (form.get("MessageStatus") or form.get("SmsStatus") or "").lower()
    mapped = STATUSES.get(status)
    if mapped is None:
        return sid, None
    error = None
    if mapped is OutboundStatus.FAILED:
        code = form.get("ErrorCode") or "unknown"
        detail = form.get("ErrorMessage")
        error = f"Twilio reports {status} (error {code}{': ' + detail if detail else ''})"
    return sid, DeliveryResult(mapped, provider_id=sid, error=error)


async def last_whatsapp_inbound(db: Database, account: str, conversation_id: int) -> datetime | None:
    """When the conversation's contact last wrote on WhatsApp to this account."""
    m, c = schema.messages, schema.conversations
    contact = select(c.c.contact_id).where(c.c.id == conversation_id).scalar_subquery()
    stmt = (
        select(func.max(m.c.created_at))
        .join(c, c.c.id == m.c.conversation_id)
        .where(
            c.c.contact_id == contact,
            m.c.channel == ChannelKind.WHATSAPP.value,
            m.c.channel_account == account,
            m.c.direction == Direction.INBOUND.value,
        )
    )
    async with db.read() as conn:
        value = (await conn.execute(stmt)).scalar()
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def reply_channel(db: Database, conversation_id: int, default: ChannelKind) -> ChannelKind:
    """WhatsApp if the customer last wrote on WhatsApp, else SMS (also after a call or voicemail)."""
    async with db.read() as conn:
        latest = await records.latest_inbound(conn, conversation_id, schema.messages.c.channel)
    channel = ChannelKind(latest) if latest else default
    return ChannelKind.WHATSAPP if channel is ChannelKind.WHATSAPP else ChannelKind.SMS


class Messaging(AccountPart):
    """SMS and WhatsApp of one Twilio account."""

    def __init__(self, channel: TwilioVoiceChannel) -> None:
        super().__init__(channel)
        self.settings: MessagingSettings = channel.settings.messaging
        self.media = self.fetcher(self.settings.max_media_bytes)

    def routes(self) -> list[web.RouteDef]:
        """The inbound message webhook and the status callback."""
        return [
            self.channel.signed("messages", self._inbound),
            self.channel.signed("messages/status", self._status),
        ]

    # Receiving

    async def _inbound(self, request: web.Request, signed: SignedRequest) -> web.StreamResponse:
        try:
            parsed = parse_message(self.channel.name, signed.form, self.channel.now())
        except ValueError as err:
            await self.quarantine(signed.form, f"unusable message webhook: {err}")
            return _twiml(EMPTY_TWIML)
        message = await self._with_media(parsed)
        sink = self.channel.sink
        if sink is None:
            raise web.HTTPServiceUnavailable(text="channel is not running")
        try:
            await sink(message)
        except Quarantined as err:
            log.warning("message %s quarantined: %s", message.external_id, err.reason)
        return _twiml(EMPTY_TWIML)

    async def _with_media(self, parsed: ParsedMessage) -> InboundMessage:
        attachments: list[InboundAttachment] = []
        failed: list[dict[str, str]] = []
        for n, item in enumerate(parsed.media):
            try:
                got = await self.media.fetch(item.url)
            except ChannelError as err:
                log.warning("media %d of %s not downloaded: %s", n, parsed.message.external_id, err)
                failed.append({"url": item.url.split("?", 1)[0], "error": str(err)})
                continue
            content_type = item.content_type or got.content_type
            stem = f"{parsed.message.external_id}-{n}"
            attachments.append(InboundAttachment(filename(stem, content_type), content_type, got.data))
        meta = dict(parsed.message.meta)
        if failed:
            meta["media_errors"] = failed
        return replace(parsed.message, attachments=tuple(attachments), meta=meta)

    async def _status(self, request: web.Request, signed: SignedRequest) -> web.StreamResponse:
        sid, result = delivery_result(signed.form)
        if not sid:
            await self.quarantine(signed.form, "status callback without MessageSid")
            return web.Response(status=204)
        if result is None:
            return web.Response(status=204)
        report = self.channel.context.report_status
        known = await report(self.channel.name, sid, result, hold=True) if report is not None else False
        if not known:
            await self.quarantine(signed.form, f"status callback for unknown message {sid}", sid)
        return web.Response(status=204)

    # Sending

    async def problems(
        self,
        conversation_id: int,
        channel: ChannelKind,
        text: str,
        template: str | None,
        language: str = "en",
        *,
        attachments: int = 0,
    ) -> list[str]:
        """Why this reply cannot go out on the conversation's channel, in the agent's language."""
        channel = await reply_channel(self.db, conversation_id, channel)
        names = ", ".join(sorted(self.settings.whatsapp_templates)) or _text("no_templates", language)
        found: list[str] = []
        if attachments:
            found.append(_text("attachments", language))
        if template is not None:
            if channel is not ChannelKind.WHATSAPP:
                found.append(_text("template_not_whatsapp", language, channel=channel.value))
            elif template not in self.settings.whatsapp_templates:
                found.append(_text("unknown_template", language, name=template, templates=names))
            return found
        if channel is ChannelKind.SMS:
            parts = segments.count(text)
            if parts.count > self.settings.max_segments:
                max_chars = segments.PART[parts.encoding] * self.settings.max_segments
                found.append(
                    _text(
                        "segments",
                        language,
                        count=parts.count,
                        encoding=parts.encoding,
                        units=parts.units,
                        max=self.settings.max_segments,
                        max_chars=max_chars,
                    )
                )
            return found
        if len(text) > WHATSAPP_MAX_CHARS:
            found.append(_text("whatsapp_length", language, max=WHATSAPP_MAX_CHARS, length=len(text)))
        last = await last_whatsapp_inbound(self.db, self.channel.name, conversation_id)
        if last is None or self.channel.now() - last > WHATSAPP_WINDOW:
            when = (
                _text("last", language, at=last.strftime("%Y-%m-%d %H:%M"))
                if last
                else _text("never", language)
            )
            found.append(_text("window", language, last=when, templates=names))
        return found

    async def draft_findings(
        self, conversation: Conversation, draft: Draft, language: str, meta: Mapping[str, Any]
    ) -> list[Finding]:
        """The reasons a draft cannot be sent, as blocking findings for the composer."""
        template = meta.get(TEMPLATE_META)
        problems = await self.problems(
            conversation.id,
            conversation.channel,
            draft.text,
            template if isinstance(template, str) else None,
            language,
            attachments=len(draft.attachments),
        )
        return [Finding(RULE, "error", problem, None, "body") for problem in problems]

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """Send by SMS or WhatsApp (by the conversation's channel); DeliveryRejected if it cannot go."""
        if message.recipient.kind is not IdentityKind.PHONE:
            raise DeliveryRejected(f"{self.channel.name}: SMS and WhatsApp need a phone number")
        whatsapp = (
            await reply_channel(self.db, message.conversation_id, message.channel) is ChannelKind.WHATSAPP
        )
        name = message.meta.get(TEMPLATE_META)
        name = name if isinstance(name, str) else None
        problems = await self.problems(
            message.conversation_id,
            message.channel,
            message.text,
            name,
            attachments=len(message.attachments),
        )
        if problems:
            raise DeliveryRejected(f"{self.channel.name}: {' '.join(problems)}")
        params = self._params(message.recipient.address, whatsapp)
        if name is not None:
            template = self.settings.whatsapp_templates[name]
            params |= _template_params(template)
        else:
            params["body"] = message.text
        created = await self._create(message, params)
        if created.status in ("failed", "undelivered"):
            error = f"Twilio refused the message (error {created.error_code}): {created.error_message}"
            return DeliveryResult(OutboundStatus.FAILED, provider_id=created.sid, error=error)
        return DeliveryResult(OutboundStatus.SENT, provider_id=created.sid)

    async def _create(self, message: OutboundMessage, params: dict[str, Any]) -> MessageInstance:
        """Have Twilio create the message, unless an earlier attempt did and lost the answer."""
        client = self.channel.client()
        if message.attempt > 1:
            earlier = await accepted_before(
                client, self.db, self.channel.name, params, self.channel.now(), message.queued_at
            )
            if earlier is not None:
                log.info(
                    "%s: outbound %s was accepted earlier as %s", self.channel.name, message.id, earlier.sid
                )
                return earlier
        created: MessageInstance = await rest.call(
            client.messages.create_async(**params), f"{self.channel.name}: sending a message"
        )
        return created

    def _params(self, number: str, whatsapp: bool) -> dict[str, Any]:
        s = self.settings
        sender = s.whatsapp_from if whatsapp else s.sms_from
        if sender is None and not s.messaging_service_sid:
            lines = self.channel.settings.lines
            if whatsapp or not lines:
                kind = "whatsapp_from" if whatsapp else "sms_from"
                raise DeliveryRejected(f"{self.channel.name}: configure messaging.{kind} to send from")
            sender = lines[0].number
        params: dict[str, Any] = {
            "to": f"{WHATSAPP}{number}" if whatsapp else number,
            "status_callback": self.channel.url("messages/status"),
        }
        if sender is not None:
            params["from_"] = f"{WHATSAPP}{sender}" if whatsapp else sender
        if s.messaging_service_sid:
            params["messaging_service_sid"] = s.messaging_service_sid
        return params


def _template_params(template: WhatsAppTemplate) -> dict[str, Any]:
    params: dict[str, Any] = {"content_sid": template.content_sid}
    if template.variables:
        params["content_variables"] = json.dumps(template.variables)
    return params


def _twiml(body: str) -> web.Response:
    return web.Response(text=body, content_type="text/xml", charset="utf-8")


def routes(channel: TwilioVoiceChannel) -> Sequence[web.RouteDef]:
    """The messaging routes of a channel (an extension of the Twilio channel)."""
    return Messaging.of(channel).routes()
