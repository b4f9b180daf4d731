"""Timed: a test engine with no model, for load tests of the mesh.

Each part of a segment starts to come out ``timed_synthesis_ms`` after it is asked for, as a
quiet 220 Hz tone as long as a voice would take to say it (65 ms a character at speed 1.0, about
Piper's pace), in pieces of at most 100 ms. The wait is ``asyncio.sleep`` and the tone is sliced
from one buffer made at start: the engine spends no CPU, so a load test measures the mesh.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence

import numpy as np

from mesh.settings import SettingsError
from tts_svc.config import TtsSettings
from tts_svc.engine import AudioPiece, EngineStats, SpeechRequest, Voice

SECONDS_PER_CHAR = 0.065
PIECE_S = 0.1
TONE_HZ = 220
AMPLITUDE = 0.1
# Silence after each part, as the neural engines leave one.
TAIL_S = 0.2


class TimedEngine:
    """One voice that speaks a tone of the text's duration; see the module docstring."""

    name = "timed"

    def __init__(self, settings: TtsSettings) -> None:
        """Take the latency and sample rate from ``settings``.

        Raises:
            SettingsError: a sample rate or latency out of range.
        """
        rate = settings.timed_sample_rate_hertz
        if not 8000 <= rate <= 48000:
            raise SettingsError(f"VOICEBOT_TTS_TIMED_SAMPLE_RATE_HERTZ={rate}: must be 8000-48000")
        if not 0 <= settings.timed_synthesis_ms <= 10000:
            raise SettingsError(f"VOICEBOT_TTS_TIMED_SYNTHESIS_MS={settings.timed_synthesis_ms}: must be 0-10000")
        self.rate = rate
        self.delay_s = settings.timed_synthesis_ms / 1000
        self._voices = [Voice("timed", "en-US", rate, self.name, f"a {TONE_HZ} Hz tone at {rate} Hz (load tests)")]
        piece = round(rate * PIECE_S)
        # Whole seconds of tone, so that any piece sliced from the start is continuous at 220 Hz.
        self._tone = (AMPLITUDE * np.sin(2 * np.pi * TONE_HZ * np.arange(rate) / rate)).astype(np.float32)
        self._silence = np.zeros(piece, dtype=np.float32)
        self._piece = piece
        self._started = 0
        self._cancelled = 0

    @property
    def voices(self) -> Sequence[Voice]:
        """The one voice, ``timed``."""
        return self._voices

    async def start(self) -> None:
        """Nothing to load."""

    def stats(self) -> EngineStats:
        """Parts begun and parts cut short by a closed stream."""
        return EngineStats(self._started, self._cancelled)

    async def stop(self) -> None:
        """Nothing to release."""

    async def run_tts(self, request: SpeechRequest) -> AsyncGenerator[AudioPiece, None]:
        """Speak each part as a tone of its duration, after the configured delay per part."""
        for part, text in enumerate(request.parts):
            self._started += 1
            done = False
            try:
                await asyncio.sleep(self.delay_s)
                total = round(len(text) * SECONDS_PER_CHAR / request.speed * self.rate)
                tail = round(TAIL_S * self.rate)
                compute_ms = self.delay_s * 1000
                at = 0
                while at < total:
                    size = min(self._piece, total - at, len(self._tone))
                    yield AudioPiece(self._tone[:size], self.rate, compute_ms, part)
                    compute_ms = 0.0
                    at += size
                while tail > 0:
                    size = min(self._piece, tail)
                    yield AudioPiece(self._silence[:size], self.rate, 0.0, part)
                    tail -= size
                done = True
            finally:
                if not done:
                    self._cancelled += 1
