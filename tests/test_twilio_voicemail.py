"""Voicemail through the fake Twilio: greeting and Record TwiML, recordings stored with audio,
duration and transcript (Twilio's, or pocketsphinx on real speech from espeak-ng), the callback SLA."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from hub import quarantine
from hub.inbox import ConversationFilter
from hub.models import CallOutcome, ChannelKind, Message
from hub.services import Services
from hub.store import schema
from hub.web.app import create_app
from tests.fakes.twilio import FakeTwilio, WebhookSender, sid
from tests.fakes.twilio_messaging import FakeMessaging
from tests.fakes.twilio_voicemail import leave_voicemail
from tests.twilio_helpers import ACCOUNT, LINE, PUBLIC, TOKEN, twilio_channel
from tests.twilio_phone import BASE, phone_hub

CALLER = "+447911123456"
ZH_LINE = "+861088880000"
PREFIX = f"{PUBLIC}/webhooks/twilio_voice/main"
ENGLISH = "I would like to order a new phone. Please call me back today."
CHINESE = "您好，请明天上午给我回电话，谢谢。"


def speak(folder: Path, name: str, voice: str, text: str) -> bytes:
    """A recording of speech: 16 kHz 16-bit mono WAV made with espeak-ng and sox (repeatable dither)."""
    raw, wav = folder / f"{name}.raw.wav", folder / f"{name}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", "120", "-w", str(raw), text], check=True)
    subprocess.run(["sox", "-R", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(wav)], check=True)
    return wav.read_bytes()


@pytest.fixture(scope="session")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("speech")
    return {"en": speak(folder, "en", "en-us", ENGLISH), "zh": speak(folder, "zh", "cmn", CHINESE)}


@dataclass
class Hub:
    services: Services
    fake: FakeTwilio
    files: FakeMessaging
    twilio: WebhookSender
    client: TestClient[Any, Any]

    async def greet(self, to: str = LINE, **query: str) -> ET.Element:
        tail = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
        params = {"CallSid": sid("CA"), "From": CALLER, "To": to, "CallStatus": "in-progress"}
        answer = await self.twilio.post(f"{PREFIX}/voicemail{tail}", params)
        assert answer.status == 200 and answer.content_type == "text/xml", answer
        return ET.fromstring(answer.text)

    async def leave(self, audio: bytes, seconds: int, *, to: str = LINE) -> tuple[str, str]:
        """Greet, then deliver the recording callback Twilio would send; return the sid and its URL."""
        record = (await self.greet(to)).find("Record")
        assert record is not None
        recording, url = self.files.add_recording(audio)
        params = {
            "AccountSid": ACCOUNT, "CallSid": sid("CA"), "RecordingSid": recording, "RecordingUrl": url,
            "RecordingStatus": "completed", "RecordingDuration": str(seconds), "RecordingChannels": "1",
            "RecordingSource": "RecordVerb",
        }  # fmt: skip
        answer = await self.twilio.post(record.attrib["recordingStatusCallback"], params)
        assert answer.status == 204, answer
        return recording, url

    async def voicemails(self) -> list[Message]:
        conversations, _ = await self.services.inbox.list(ConversationFilter())
        found = []
        for conversation in conversations:
            timeline = await self.services.inbox.timeline(conversation.id)
            found += [m for m in timeline.messages if m.channel is ChannelKind.VOICEMAIL]
        return found


CALLBACK_TRIGGER = """
triggers:
  - name: callback-after-voicemail
    when: voicemail.received
    then: [{tag: callback}]
"""


@pytest.fixture
async def make_hub(make_config: Any, clock: Any, aiohttp_client: Any) -> Any:
    fakes: list[FakeTwilio] = []

    async def build(**voicemail: Any) -> AsyncIterator[Hub]:
        fake = FakeTwilio(ACCOUNT, TOKEN)
        files = FakeMessaging(fake)
        await fake.start()
        fakes.append(fake)
        lines = [
            {"number": LINE, "team": "Support"},
            {"number": ZH_LINE, "team": "Support", "language": "zh"},
        ]
        settings = {"api_base_url": fake.base_url, "lines": lines, "voicemail": voicemail}
        async with twilio_channel(make_config, clock, **settings) as services:
            rules = services.config.path(services.config.rules_dir)
            rules.mkdir(exist_ok=True)
            (rules / "triggers.yaml").write_text(CALLBACK_TRIGGER, encoding="utf-8")
            await services.rules.load()
            client = await aiohttp_client(create_app(services))
            async with aiohttp.ClientSession() as session:
                local = str(client.make_url(""))
                yield Hub(
                    services,
                    fake,
                    files,
                    WebhookSender(TOKEN, session, public_base=PUBLIC, local_base=local),
                    client,
                )

    yield build
    for fake in fakes:
        await fake.stop()


GREETINGS = [
    {
        "team": "Support", "language": "en", "updated": "2026-11-20", "business_hours": "weekdays 9 to 5",
        "alternative_contact": {"name": "Dana Lee", "phone": "+44 20 7946 0999", "email": "dana@example.com"},
    },
    {
        "team": "Support", "language": "zh", "updated": "2026-11-20", "audio_url": "https://cdn.example.com/zh.mp3",
        "reply_time": "下一个工作日", "alternative_contact": {"name": "李娜", "phone": "+86 10 8888 0001"},
    },
]  # fmt: skip


async def test_the_greeting_says_when_and_whom_else_then_records_within_the_v5_limit(make_hub: Any) -> None:
    async for hub in make_hub(greetings=GREETINGS):
        twiml = await hub.greet()
        say = twiml.find("Say")
        assert say is not None and say.attrib["language"] == "en-GB"
        text = say.text or ""
        assert "weekdays 9 to 5" in text and "Dana Lee" in text and "+44 20 7946 0999" in text
        record = twiml.find("Record")
        assert record is not None
        assert record.attrib["maxLength"] == "120" and record.attrib["trim"] == "trim-silence"
        assert record.attrib["playBeep"] == "true" and record.attrib["transcribe"] == "true"
        callback = urlsplit(record.attrib["recordingStatusCallback"])
        assert callback.path.endswith("/voicemail/recording")
        assert parse_qs(callback.query) == {"from": [CALLER], "line": [LINE], "lang": ["en"]}
        assert record.attrib["action"].startswith(f"{PREFIX}/voicemail/done")
        chinese = await hub.greet(ZH_LINE)
        play = chinese.find("Play")
        assert play is not None and play.text == "https://cdn.example.com/zh.mp3"
        zh_record = chinese.find("Record")
        assert zh_record is not None and "transcribe" not in zh_record.attrib


async def test_after_the_recording_the_caller_is_thanked_in_their_language_and_the_call_ends(
    make_hub: Any,
) -> None:
    async for hub in make_hub():
        params = {"CallSid": sid("CA"), "From": CALLER, "To": LINE, "CallStatus": "in-progress"}
        for lang, voice, text in [
            ("en", "en-GB", "Thank you for your message. Goodbye."),
            ("zh", "cmn-CN", "谢谢您的留言，再见。"),
        ]:
            answer = await hub.twilio.post(f"{PREFIX}/voicemail/done?lang={lang}", params)
            assert answer.status == 200, answer
            done = ET.fromstring(answer.text)
            say = done.find("Say")
            assert say is not None and say.text == text and say.attrib["language"] == voice
            assert done.find("Hangup") is not None


async def test_max_length_comes_from_the_rules(make_hub: Any, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir(exist_ok=True)
    (rules / "etiquette.yaml").write_text("V5:\n  max_length_seconds: 45\n", encoding="utf-8")
    async for hub in make_hub():
        assert hub.services.voicemail.max_length_seconds() == 45
        record = (await hub.greet()).find("Record")
        assert record is not None and record.attrib["maxLength"] == "45"


async def test_a_recording_becomes_a_voicemail_with_audio_duration_transcript_and_callback(
    make_hub: Any, recordings: dict[str, bytes]
) -> None:
    async for hub in make_hub():
        recording, url = await hub.leave(recordings["en"], 8)
        again = await hub.twilio.post(
            (await hub.greet()).find("Record").attrib["recordingStatusCallback"],  # type: ignore[union-attr]
            {"RecordingSid": recording, "RecordingUrl": url, "RecordingStatus": "completed",
             "RecordingDuration": "8", "CallSid": sid("CA")},
        )  # fmt: skip
        assert again.status == 204
        [voicemail] = await hub.voicemails()
        assert voicemail.external_id == recording and voicemail.sender == CALLER
        assert voicemail.text == "Voicemail, 8 s (transcript pending)"
        assert voicemail.meta["voicemail"]["duration_seconds"] == 8
        [audio] = voicemail.attachments
        assert audio.filename == f"{recording}.wav" and audio.content_type == "audio/x-wav"
        assert await hub.services.blobs.get(audio.sha256) == recordings["en"]
        assert len([p for p in hub.files.downloads if recording in p]) == 1
        transcription = {
            "RecordingSid": recording, "RecordingUrl": url, "TranscriptionStatus": "completed",
            "TranscriptionText": "Please call me back tomorrow morning.", "CallSid": sid("CA"),
        }  # fmt: skip
        callback = f"{PREFIX}/voicemail/transcription?from=%2B447911123456&line=%2B442079460000&lang=en"
        assert (await hub.twilio.post(callback, transcription)).status == 204
        [voicemail] = await hub.voicemails()
        assert voicemail.text == "Voicemail, 8 s: Please call me back tomorrow morning."
        assert voicemail.meta["voicemail"]["transcript_source"] == "twilio"
        async with hub.services.db.read() as conn:
            tasks = (await conn.execute(select(schema.tasks))).mappings().all()
            timers = (await conn.execute(select(schema.timers.c.payload))).scalars().all()
        [task] = tasks
        assert task["kind"] == "callback" and task["key"] == f"callback:voicemail:{voicemail.id}"
        assert task["conversation_id"] == voicemail.conversation_id
        assert any(t.get("event") == "voicemail.received" for t in timers)


async def test_a_transcript_before_the_recording_callback_is_kept(
    make_hub: Any, recordings: dict[str, bytes]
) -> None:
    async for hub in make_hub():
        recording, url = hub.files.add_recording(recordings["en"])
        callback = f"{PREFIX}/voicemail/transcription?from=%2B447911123456&line=&lang=en"
        params = {"RecordingSid": recording, "RecordingUrl": url, "TranscriptionStatus": "completed",
                  "TranscriptionText": "Call me back.", "CallSid": sid("CA")}  # fmt: skip
        assert (await hub.twilio.post(callback, params)).status == 204
        late = f"{PREFIX}/voicemail/recording?from=%2B447911123456&line=&lang=en"
        done = {"RecordingSid": recording, "RecordingUrl": url, "RecordingStatus": "completed",
                "RecordingDuration": "6", "CallSid": sid("CA")}  # fmt: skip
        assert (await hub.twilio.post(late, done)).status == 204
        [voicemail] = await hub.voicemails()
        assert voicemail.text == "Voicemail, 6 s: Call me back."


async def test_pocketsphinx_transcribes_english_speech_locally(
    make_hub: Any, recordings: dict[str, bytes]
) -> None:
    async for hub in make_hub(transcription={"engine": "pocketsphinx"}):
        record = (await hub.greet()).find("Record")
        assert record is not None and "transcribe" not in record.attrib
        await hub.leave(recordings["en"], 4)
        await hub.services.voicemail.drain()
        [voicemail] = await hub.voicemails()
        facts = voicemail.meta["voicemail"]
        assert facts["transcript_source"] == "local" and not facts["transcript_pending"]
        words = set(facts["transcript"].split())
        assert {"order", "new", "phone"} <= words
        assert voicemail.text.startswith("Voicemail, 4 s: ")


async def test_a_chinese_voicemail_is_stored_without_a_transcript(
    make_hub: Any, recordings: dict[str, bytes]
) -> None:
    async for hub in make_hub(transcription={"engine": "pocketsphinx"}):
        await hub.leave(recordings["zh"], 6, to=ZH_LINE)
        await hub.services.voicemail.drain()
        [voicemail] = await hub.voicemails()
        assert voicemail.text == "语音留言，6 秒（无转写）"
        assert voicemail.meta["voicemail"]["transcript"] is None
        [audio] = voicemail.attachments
        assert await hub.services.blobs.get(audio.sha256) == recordings["zh"]


async def test_voicemail_joins_the_callers_sms_conversation(
    make_hub: Any, recordings: dict[str, bytes]
) -> None:
    async for hub in make_hub():
        _, params = hub.files.inbound_params(CALLER, LINE, "I tried to call you")
        assert (await hub.twilio.post(f"{PREFIX}/messages", params)).status == 200
        await hub.leave(recordings["en"], 3)
        conversations, total = await hub.services.inbox.list(ConversationFilter())
        assert total == 1
        timeline = await hub.services.inbox.timeline(conversations[0].id)
        assert [m.channel for m in timeline.messages] == [ChannelKind.SMS, ChannelKind.VOICEMAIL]


async def test_a_recording_that_cannot_be_downloaded_is_quarantined(make_hub: Any) -> None:
    async for hub in make_hub():
        url = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/RE{'0' * 32}"
        callback = f"{PREFIX}/voicemail/recording?from=%2B447911123456&line=&lang=en"
        params = {"RecordingSid": "RE" + "0" * 32, "RecordingUrl": url, "RecordingStatus": "completed",
                  "RecordingDuration": "5"}  # fmt: skip
        assert (await hub.twilio.post(callback, params)).status == 503
        [item] = await quarantine.entries(hub.services.db)
        assert "not downloaded" in item.reason and await hub.voicemails() == []
        async with (
            aiohttp.ClientSession() as session,
            session.get(hub.fake.base_url + urlsplit(url).path + ".wav") as r,
        ):
            assert r.status == 401


async def test_unsigned_voicemail_callbacks_are_refused(make_hub: Any) -> None:
    async for hub in make_hub():
        params = {
            "RecordingSid": "RE1",
            "RecordingUrl": "https://api.twilio.com/x",
            "RecordingStatus": "completed",
        }
        answer = await hub.twilio.post(
            f"{PREFIX}/voicemail/recording?from=%2B447911123456", params, sign=False
        )
        assert answer.status == 403
        assert (
            await hub.twilio.post(f"{PREFIX}/voicemail", {"From": CALLER, "To": LINE}, sign=False)
        ).status == 403


async def test_an_unanswered_call_leaves_a_voicemail_on_its_conversation(
    make_config: Any, clock: Any, aiohttp_client: Any, recordings: dict[str, bytes]
) -> None:
    made: list[FakeMessaging] = []
    async with phone_hub(
        make_config, clock, aiohttp_client, prepare=lambda f: made.append(FakeMessaging(f))
    ) as phone:
        call = await phone.sim.call(CALLER, LINE)
        assert call.visited[-1] == f"{BASE}/voicemail"
        params = {**phone.sim._params(call), "CallStatus": "in-progress"}
        visit = await leave_voicemail(
            phone.sender, made[0], f"{BASE}/voicemail", params, audio=recordings["en"], seconds=7,
            transcript="I would like to order a new phone.",
        )  # fmt: skip
        assert any("Customer Care" in said for said in visit.heard)
        assert visit.answers["recording"].status == 204 and visit.answers["transcription"].status == 204
        assert "Hangup" in visit.answers["action"].text
        row = await phone.call_row(call.sid)
        assert row.outcome is CallOutcome.VOICEMAIL
        timeline = await phone.services.inbox.timeline(row.conversation_id)
        [voicemail] = [m for m in timeline.messages if m.channel is ChannelKind.VOICEMAIL]
        assert voicemail.external_id == visit.recording_sid
        assert voicemail.text == "Voicemail, 7 s: I would like to order a new phone."
        async with phone.services.db.read() as conn:
            keys = (await conn.execute(select(schema.tasks.c.key))).scalars().all()
        assert keys == [f"callback:voicemail:{voicemail.id}"]


async def test_hanging_up_at_the_greeting_still_gets_a_callback(
    make_config: Any, clock: Any, aiohttp_client: Any
) -> None:
    made: list[FakeMessaging] = []
    async with phone_hub(
        make_config, clock, aiohttp_client, prepare=lambda f: made.append(FakeMessaging(f))
    ) as phone:
        call = await phone.sim.call(CALLER, LINE)
        params = {**phone.sim._params(call), "CallStatus": "in-progress"}
        visit = await leave_voicemail(
            phone.sender, made[0], f"{BASE}/voicemail", params, audio=None, seconds=0
        )
        assert visit.answers["recording"].status == 204
        row = await phone.call_row(call.sid)
        async with phone.services.db.read() as conn:
            tasks = (await conn.execute(select(schema.tasks))).mappings().all()
        [task] = tasks
        assert task["key"] == f"callback:call:{row.id}" and task["conversation_id"] == row.conversation_id
        assert await phone.events("voicemail.empty") == [{"call_id": row.id}]
