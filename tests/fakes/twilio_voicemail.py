"""Twilio's side of voicemail for the call simulator: after a call reaches the hub's voicemail
URL, play the greeting, take the caller's message with `<Record>` and send what Twilio sends
then: the recording status callback (`completed` with the recording, or `absent` when the
caller hung up first), the transcription callback when `transcribe` was asked for, and the
Record `action` request.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from tests.fakes.twilio import Answer, WebhookSender
from tests.fakes.twilio_messaging import FakeMessaging


@dataclass
class VoicemailVisit:
    """What a caller heard at voicemail and what the hub answered to Twilio's callbacks."""

    heard: list[str] = field(default_factory=list)
    played: list[str] = field(default_factory=list)
    record: dict[str, str] = field(default_factory=dict)
    recording_sid: str | None = None
    answers: dict[str, Answer] = field(default_factory=dict)


async def leave_voicemail(
    sender: WebhookSender,
    files: FakeMessaging,
    url: str,
    call: dict[str, str],
    *,
    audio: bytes | None,
    seconds: int,
    transcript: str | None = None,
) -> VoicemailVisit:
    """Request the voicemail TwiML as Twilio does for `call` and follow it; `audio=None` hangs up silently."""
    visit = VoicemailVisit()
    answer = await sender.post(url, call)
    assert answer.status == 200, answer
    for verb in ET.fromstring(answer.text):
        if verb.tag == "Say":
            visit.heard.append(verb.text or "")
        elif verb.tag == "Play":
            visit.played.append(verb.text or "")
        elif verb.tag == "Record":
            visit.record = dict(verb.attrib)
            await _record(sender, files, call, visit, audio, seconds, transcript)
            return visit
    raise AssertionError("the voicemail TwiML has no <Record>")


async def _record(
    sender: WebhookSender,
    files: FakeMessaging,
    call: dict[str, str],
    visit: VoicemailVisit,
    audio: bytes | None,
    seconds: int,
    transcript: str | None,
) -> None:
    record = visit.record
    base = {"AccountSid": call["AccountSid"], "CallSid": call["CallSid"]}
    if audio is None:
        params = {**base, "RecordingStatus": "absent", "RecordingSid": "RE" + "0" * 32}
        visit.answers["recording"] = await sender.post(record["recordingStatusCallback"], params)
        return
    seconds = min(seconds, int(record.get("maxLength", "3600")))
    recording, recording_url = files.add_recording(audio)
    visit.recording_sid = recording
    visit.answers["action"] = await sender.post(
        record["action"],
        {**call, "RecordingSid": recording, "RecordingUrl": recording_url, "RecordingDuration": str(seconds)},
    )
    done = {
        **base, "RecordingSid": recording, "RecordingUrl": recording_url, "RecordingStatus": "completed",
        "RecordingDuration": str(seconds), "RecordingChannels": "1", "RecordingSource": "RecordVerb",
    }  # fmt: skip
    visit.answers["recording"] = await sender.post(record["recordingStatusCallback"], done)
    if record.get("transcribe") == "true" and transcript is not None:
        text = {
            **call, "RecordingSid": recording, "RecordingUrl": recording_url,
            "TranscriptionSid": "TR" + "1" * 32, "TranscriptionStatus": "completed",
            "TranscriptionText": transcript,
        }  # fmt: skip
        visit.answers["transcription"] = await sender.post(record["transcribeCallback"], text)
