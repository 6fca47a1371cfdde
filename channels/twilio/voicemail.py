"""Voicemail on a Twilio account: the greeting and `<Record>`, then the recording as a message.

Routes (signed, under the account's prefix): `voicemail` answers with the team's or agent's
greeting (`<Play>` of a recording or `<Say>` of the rendered template) and a `<Record>` whose
length comes from the V5 rule; `voicemail/done` ends the call; `voicemail/recording` is the
recording status callback: the recording is downloaded with the account's credentials and
stored once per RecordingSid as an inbound voicemail on the caller's contact and
conversation, with its duration. `voicemail/transcription` receives Twilio's transcript
(English only); a local transcriber, when configured for the language, transcribes in the
background instead. The caller's number, the line and the language travel in the callback
URLs, which Twilio signs with them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiDictProxy
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from twilio.twiml.voice_response import VoiceResponse

from channels.twilio import transcribe
from channels.twilio import twiml as T
from channels.twilio.part import AccountPart
from channels.twilio.signature import SignedRequest
from channels.twilio.voice import twiml
from channels.twilio.voicemail_settings import Greeting, VoicemailSettings
from hub.errors import ChannelError
from hub.ingest import TRANSIENT
from hub.models import ChannelKind, Identity, IdentityKind, InboundAttachment, InboundMessage, IngestResult
from hub.store import Database, schema
from hub.voicemail import GreetingFacts

if TYPE_CHECKING:
    from channels.twilio.voice import TwilioVoiceChannel

log = logging.getLogger(__name__)

LABEL = {
    "en": (
        "Voicemail, {seconds} s",
        "{label}: {text}",
        "{label} ({note})",
        "transcript pending",
        "no transcript",
    ),
    "zh": ("语音留言，{seconds} 秒", "{label}：{text}", "{label}（{note}）", "转写中", "无转写"),
}
TWILIO_TRANSCRIPTION = (2, 120)
"""Twilio transcribes English recordings of 2 to 120 seconds."""


def voicemail_text(language: str, seconds: int, transcript: str | None, *, pending: bool) -> str:
    """What agents read: the length and the transcript, or that there is none (yet)."""
    head, with_text, with_note, waiting, none = LABEL.get(language, LABEL["en"])
    label = head.format(seconds=seconds)
    if transcript:
        return with_text.format(label=label, text=transcript)
    return with_note.format(label=label, note=waiting if pending else none)


class Voicemail(AccountPart):
    """Voicemail of one Twilio account."""

    def __init__(self, channel: TwilioVoiceChannel) -> None:
        super().__init__(channel)
        self.settings: VoicemailSettings = channel.settings.voicemail
        self.media = self.fetcher()
        self.transcriber = transcribe.build(self.settings.transcription)

    def routes(self) -> list[web.RouteDef]:
        """The greeting and recording, the end of the call, and the two callbacks."""
        return [
            self.channel.signed("voicemail", self._greet),
            self.channel.signed("voicemail/done", self._done),
            self.channel.signed("voicemail/recording", self._recording),
            self.channel.signed("voicemail/transcription", self._transcription),
        ]

    # The call

    def twilio_transcribes(self, language: str) -> bool:
        """Whether Twilio is asked for the transcript (English, unless a local model covers it)."""
        engine = self.settings.transcription.engine
        return engine == "twilio" and language == "en" and language not in self.transcriber.languages()

    async def _greet(self, request: web.Request, signed: SignedRequest) -> web.StreamResponse:
        form = signed.form
        line = self.channel.settings.line_for(form.get("To", ""))
        team = request.query.get("team") or (line.team if line else "")
        language = request.query.get("lang") or (line.language if line else "en")
        language = "zh" if language == "zh" else "en"
        agent = request.query.get("agent")
        greeting = self.settings.greeting_for(language, agent=agent, team=team)
        response = VoiceResponse()
        if greeting is not None and greeting.audio_url:
            response.play(greeting.audio_url)
        else:
            T.say(response, await self._greeting_text(greeting, team, agent, language), language)
        callback = {"from": form.get("From", ""), "line": line.number if line else "", "lang": language}
        desk = self.channel.context.voicemail
        max_length = desk.max_length_seconds() if desk is not None else 120
        options: dict[str, Any] = {}
        if self.twilio_transcribes(language):
            options = {
                "transcribe": True,
                "transcribe_callback": self.channel.url("voicemail/transcription", **callback),
            }
        response.record(
            max_length=max_length,
            timeout=self.settings.silence_timeout_seconds,
            finish_on_key=self.settings.finish_on_key,
            play_beep=True,
            trim="trim-silence",
            action=self.channel.url("voicemail/done", lang=language),
            method="POST",
            recording_status_callback=self.channel.url("voicemail/recording", **callback),
            recording_status_callback_event="completed absent",
            recording_status_callback_method="POST",
            **options,
        )
        return twiml(str(response))

    async def _greeting_text(
        self, greeting: Greeting | None, team: str, agent: str | None, language: str
    ) -> str:
        desk = self.channel.context.voicemail
        contact = greeting.alternative_contact if greeting else None
        facts = GreetingFacts(
            team=team,
            language=language,
            agent_name=agent,
            business_hours=greeting.business_hours if greeting else None,
            contact_name=contact.name if contact else None,
            contact_phone=contact.phone if contact else None,
            contact_email=contact.email if contact else None,
        )
        if desk is None:
            return T.phrase(language, "voicemail_goodbye")
        return await desk.greeting(facts)

    async def _done(self, request: web.Request, signed: SignedRequest) -> web.StreamResponse:
        language = "zh" if request.query.get("lang") == "zh" else "en"
        return twiml(T.goodbye(T.phrase(language, "voicemail_goodbye"), language))

    # The callbacks

    async def _recording(self, request: web.Request, signed: SignedRequest) -> web.StreamResponse:
        form = signed.form
        status = form.get("RecordingStatus", "completed")
        if status != "completed":
            log.info(
                "%s: recording %s is %s: no message to store",
                self.channel.name,
                form.get("RecordingSid"),
                status,
            )
            desk = self.channel.context.voicemail
            if status == "absent" and desk is not None and form.get("CallSid"):
                await desk.no_message(self.channel.name, form.get("CallSid", ""))
            return web.Response(status=204)
        try:
            duration = int(form.get("RecordingDuration") or 0)
        except ValueError:
            duration = 0
        return await self._store(request, form, duration=duration, transcript=None)

    async def _transcription(self, request: web.Request, signed: SignedRequest) -> web.StreamResponse:
        form = signed.form
        text = (form.get("TranscriptionText") or "").strip()
        completed = form.get("TranscriptionStatus", "completed") == "completed"
        return await self._store(
            request, form, duration=None, transcript=text if completed and text else None
        )

    async def _store(
        self, request: web.Request, form: MultiDictProxy[str], *, duration: int | None, transcript: str | None
    ) -> web.StreamResponse:
        sid, url = form.get("RecordingSid", ""), form.get("RecordingUrl", "")
        language = "zh" if request.query.get("lang") == "zh" else "en"
        try:
            caller = Identity.of(IdentityKind.PHONE, request.query.get("from") or form.get("From") or "")
        except ValueError as err:
            await self.quarantine(form, f"voicemail without a usable caller number: {err}", sid or None)
            return web.Response(status=204)
        if not sid or not url:
            await self.quarantine(
                form, "voicemail callback without RecordingSid or RecordingUrl", sid or None
            )
            return web.Response(status=204)
        found = await _stored(self.db, self.channel.name, sid)
        if found is not None:
            await _amend(self.db, found, language, duration=duration, transcript=transcript, source="twilio")
            return web.Response(status=204)
        try:
            audio = await self.media.fetch(url + ".wav")
        except ChannelError as err:
            await self.quarantine(form, f"voicemail recording not downloaded: {err}", sid)
            return web.Response(status=503, text="recording not downloaded; kept in quarantine")
        local = language in self.transcriber.languages() and transcript is None
        seconds = duration or 0
        pending = local or (
            self.twilio_transcribes(language) and transcript is None and _twilio_length(seconds)
        )
        line = request.query.get("line") or None
        message = InboundMessage(
            channel=ChannelKind.VOICEMAIL,
            channel_account=self.channel.name,
            external_id=sid,
            sender=caller,
            text=voicemail_text(language, seconds, transcript, pending=pending),
            received_at=self.channel.now(),
            attachments=(InboundAttachment(f"{sid}.wav", audio.content_type or "audio/x-wav", audio.data),),
            raw=urlencode(list(form.items())).encode(),
            language=language,
            meta={
                "voicemail": {
                    "recording_sid": sid,
                    "call_sid": form.get("CallSid"),
                    "line": line,
                    "duration_seconds": duration,
                    "transcript": transcript,
                    "transcript_source": "twilio" if transcript else None,
                    "transcript_pending": pending,
                }
            },
        )
        result = await self._ingest(message, form, line=line)
        if result is not None and not result.duplicate and local:
            desk = self.channel.context.voicemail
            work = self._transcribe_later(result.message_id, audio.data, language)
            if desk is not None:
                desk.spawn(work, f"transcribe-{sid}")
            else:
                await work
        return web.Response(status=204)

    async def _ingest(
        self, message: InboundMessage, form: MultiDictProxy[str], *, line: str | None
    ) -> IngestResult | None:
        inbox, desk = self.channel.context.inbox, self.channel.context.voicemail
        if inbox is None:
            raise web.HTTPServiceUnavailable(text="channel is not running")

        async def after(conn: AsyncConnection, results: list[IngestResult]) -> None:
            if desk is not None and not results[0].duplicate:
                await desk.received(conn, results[0], line=line, caller=message.sender.address)

        try:
            return (await inbox.ingest_many([message], in_transaction=after))[0]
        except TRANSIENT:
            raise
        except Exception as err:  # noqa: BLE001
            await self.quarantine(
                form, f"voicemail not stored: {type(err).__name__}: {err}", message.external_id
            )
            return None

    async def _transcribe_later(self, message_id: int, audio: bytes, language: str) -> None:
        try:
            text = await self.transcriber.transcribe(audio, language)
        except ValueError as err:
            log.warning("voicemail %s not transcribed: %s", message_id, err)
            text = None
        await _amend(self.db, message_id, language, duration=None, transcript=text, source="local", done=True)


def _twilio_length(seconds: int) -> bool:
    low, high = TWILIO_TRANSCRIPTION
    return low <= seconds <= high


async def _stored(db: Database, account: str, recording_sid: str) -> int | None:
    m = schema.messages
    async with db.read() as conn:
        found = await conn.execute(
            select(m.c.id).where(m.c.channel_account == account, m.c.external_id == recording_sid)
        )
        value = found.scalar()
    return int(value) if value is not None else None


async def _amend(
    db: Database,
    message_id: int,
    language: str,
    *,
    duration: int | None,
    transcript: str | None,
    source: str,
    done: bool = False,
) -> None:
    """Add a later duration or transcript to a stored voicemail; a transcript already there stays."""
    m = schema.messages
    async with db.write() as conn:
        row = (await conn.execute(select(m.c.meta).where(m.c.id == message_id))).one()
        meta = dict(row.meta or {})
        facts = dict(meta.get("voicemail") or {})
        if duration is not None and not facts.get("duration_seconds"):
            facts["duration_seconds"] = duration
        if transcript and not facts.get("transcript"):
            facts.update(transcript=transcript, transcript_source=source)
        if transcript or done:
            facts["transcript_pending"] = False
        if facts == meta.get("voicemail"):
            return
        meta["voicemail"] = facts
        seconds = int(facts.get("duration_seconds") or 0)
        pending = bool(facts.get("transcript_pending"))
        text = voicemail_text(language, seconds, facts.get("transcript"), pending=pending)
        await conn.execute(update(m).where(m.c.id == message_id).values(meta=meta, text=text))


def routes(channel: TwilioVoiceChannel) -> Sequence[web.RouteDef]:
    """The voicemail routes of a channel (an extension of the Twilio channel)."""
    return Voicemail.of(channel).routes()
