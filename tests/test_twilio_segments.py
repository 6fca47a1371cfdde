"""SMS segment counting (GSM-7 and UCS-2) and the audio preparation for local transcription."""

from __future__ import annotations

import array
import io
import wave

import pytest

from channels.twilio import segments
from channels.twilio.transcribe import RATE, pcm16k


@pytest.mark.parametrize(
    ("text", "encoding", "units", "count"),
    [
        ("", "GSM-7", 0, 0),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),
        ("a" * 152 + "€", "GSM-7", 154, 1),
        ("a" * 153 + "€" + "a" * 10, "GSM-7", 165, 2),
        ("a" * 152 + "€" + "a" * 152, "GSM-7", 306, 3),
        ("你" * 70, "UCS-2", 70, 1),
        ("你" * 71, "UCS-2", 71, 2),
        ("a" * 100 + "你", "UCS-2", 101, 2),
        ("😀" * 35, "UCS-2", 70, 1),
        ("a" * 66 + "😀", "UCS-2", 68, 1),
        ("a" * 66 + "😀" + "a" * 66, "UCS-2", 134, 3),
    ],
)
def test_segments(text: str, encoding: str, units: int, count: int) -> None:
    assert segments.count(text) == segments.Segments(encoding, units, count)  # type: ignore[arg-type]


def _wav(rate: int, samples: list[int], channels: int = 1) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(array.array("h", samples).tobytes())
    return buffer.getvalue()


def test_telephone_audio_is_resampled_to_the_models_rate() -> None:
    out = array.array("h", pcm16k(_wav(8000, [0, 1000, 2000, 3000])))
    assert list(out) == [0, 500, 1000, 1500, 2000, 2500, 3000, 3000]
    assert len(pcm16k(_wav(RATE, [5] * 100))) == 200
    stereo = array.array("h", pcm16k(_wav(RATE, [1, -1, 2, -2], channels=2)))
    assert list(stereo) == [1, 2]


def test_audio_that_is_not_pcm_wav_is_refused() -> None:
    with pytest.raises(ValueError, match="not a usable WAV"):
        pcm16k(b"ID3 not a wav")
