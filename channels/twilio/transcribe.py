"""Turning voicemail recordings into text on this machine, without downloading anything.

`Transcriber` is the interface; `PocketsphinxTranscriber` implements it with the English
model that ships inside the pocketsphinx wheel, plus any model an operator puts on disk for
another language. Recognition runs in a worker thread. Engines that would fetch models at
run time are not offered.
"""

from __future__ import annotations

import array
import asyncio
import io
import sys
import threading
import wave
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

RATE = 16_000
"""The sample rate of the acoustic models: recordings are resampled to it."""

Engine = Literal["none", "twilio", "pocketsphinx"]


class LocalModel(BaseModel):
    """A pocketsphinx model an operator installed: acoustic model folder, dictionary, language model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hmm: Path
    dictionary: Path
    lm: Path


class TranscriptionSettings(BaseModel):
    """How voicemails get their transcript.

    `engine`: `twilio` asks Twilio (English only), `pocketsphinx` recognises locally
    (English built in), `none` stores recordings without text. `models` adds local
    pocketsphinx models by language (e.g. `zh`); with them a `twilio` engine also
    transcribes those languages locally.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    engine: Engine = "twilio"
    models: dict[str, LocalModel] = Field(default_factory=dict)


class Transcriber(Protocol):
    """Recognises speech in a recording (WAV bytes) in one of the languages it has a model for."""

    def languages(self) -> frozenset[str]:
        """The languages it can transcribe."""

    async def transcribe(self, wav: bytes, language: str) -> str | None:
        """The text, or None if nothing was recognised; ValueError if the audio is not usable WAV."""


class NoTranscriber:
    """Transcribes nothing."""

    def languages(self) -> frozenset[str]:
        """None at all."""
        return frozenset()

    async def transcribe(self, wav: bytes, language: str) -> str | None:
        """Nothing."""
        return None


class PocketsphinxTranscriber:
    """pocketsphinx: the wheel's English model, and operator-supplied models for other languages."""

    def __init__(self, models: dict[str, LocalModel] | None = None, *, builtin_english: bool = True) -> None:
        self.models = dict(models or {})
        self.builtin_english = builtin_english
        self._decoders: dict[str, Any] = {}
        self._lock = threading.Lock()

    def languages(self) -> frozenset[str]:
        """English (built in) and the configured models' languages."""
        return frozenset(self.models) | ({"en"} if self.builtin_english else frozenset())

    async def transcribe(self, wav: bytes, language: str) -> str | None:
        """Recognise in a worker thread."""
        if language not in self.languages():
            return None
        return await asyncio.to_thread(self._recognise, wav, language)

    def _recognise(self, wav: bytes, language: str) -> str | None:
        pcm = pcm16k(wav)
        with self._lock:
            decoder = self._decoder(language)
            decoder.start_utt()
            decoder.process_raw(pcm, full_utt=True)
            decoder.end_utt()
            hypothesis = decoder.hyp()
        text = hypothesis.hypstr.strip() if hypothesis is not None else ""
        return text or None

    def _decoder(self, language: str) -> Any:
        decoder = self._decoders.get(language)
        if decoder is None:
            from pocketsphinx import Decoder

            options: dict[str, Any] = {"samprate": RATE, "loglevel": "FATAL"}
            model = self.models.get(language)
            if model is not None:
                options |= {"hmm": str(model.hmm), "dict": str(model.dictionary), "lm": str(model.lm)}
            decoder = self._decoders[language] = Decoder(**options)
        return decoder


def build(settings: TranscriptionSettings) -> Transcriber:
    """The local transcriber the settings ask for (Twilio's own transcription is not local)."""
    if settings.engine == "none":
        return NoTranscriber()
    if settings.engine == "pocketsphinx" or settings.models:
        return PocketsphinxTranscriber(settings.models, builtin_english=settings.engine == "pocketsphinx")
    return NoTranscriber()


def pcm16k(wav: bytes) -> bytes:
    """16-bit mono PCM at 16 kHz from a 16-bit PCM WAV file (first channel, linearly resampled)."""
    try:
        with wave.open(io.BytesIO(wav)) as reader:
            width, channels, rate = reader.getsampwidth(), reader.getnchannels(), reader.getframerate()
            frames = reader.readframes(reader.getnframes())
    except (wave.Error, EOFError) as err:
        raise ValueError(f"not a usable WAV recording: {err}") from err
    if width != 2:
        raise ValueError(f"WAV samples are {8 * width}-bit; 16-bit PCM is needed")
    samples = array.array("h", frames)
    if sys.byteorder == "big":
        samples.byteswap()
    if channels > 1:
        samples = samples[::channels]
    if rate != RATE and len(samples) > 1:
        samples = _resample(samples, rate)
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


def _resample(samples: array.array[int], rate: int) -> array.array[int]:
    step = rate / RATE
    last = len(samples) - 1
    out = array.array("h", bytes(2 * int(len(samples) / step)))
    for i in range(len(out)):
        position = i * step
        left = int(position)
        right = min(left + 1, last)
        fraction = position - left
        out[i] = int(samples[left] + (samples[right] - samples[left]) * fraction)
    return out
