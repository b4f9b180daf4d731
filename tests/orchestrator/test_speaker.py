"""Speaker: what barge-in reads from it (is the bot audible, where did playback get to)."""

from __future__ import annotations

import numpy as np

from mesh import audio
from orchestrator.prompts import Clip
from orchestrator.speaker import Speaker
from voicebot.v1 import orchestrator_service_pb2 as pb

FMT = audio.PcmFormat(audio.LINEAR16, 16000)


def speaker(sent: list[pb.ConverseResponse]) -> Speaker:
    """A speaker with no synthesis stream (clips only) that records what it sends."""

    async def emit(response: pb.ConverseResponse) -> None:
        sent.append(response)

    return Speaker(tts=None, emit=emit, turn_index=3, voice="", fmt=FMT, timeout_s=1.0)  # type: ignore[arg-type]


def clip(ms: float) -> Clip:
    """A clip of ``ms`` milliseconds at 22.05 kHz (so its length in 16 kHz audio is not a whole ms)."""
    return Clip("hello", np.full(int(22050 * ms / 1000), 0.1, dtype=np.float32), 22050)


async def test_a_speaker_plays_once_it_sent_audio_until_the_caller_reports_the_end() -> None:
    sent: list[pb.ConverseResponse] = []
    voice = speaker(sent)
    assert not voice.playing()
    await voice.play(clip(1234.5))
    assert voice.playing()  # sent just now: real time says it is still playing
    assert [r.turn_index for r in sent] == [3] * len(sent)
    voice.report_playback(600)
    assert voice.playing()
    assert voice.playback_ms() == 600
    voice.report_playback(10**6)  # beyond what was sent: clamped, and the clip has been played
    assert voice.playback_ms() == int(voice.audio_ms)
    assert not voice.playing()


async def test_a_report_before_the_first_audio_is_about_earlier_audio_and_is_ignored() -> None:
    voice = speaker([])
    voice.report_playback(5000)
    await voice.play(clip(500))
    assert voice.reported_ms is None
    assert voice.playing()


async def test_a_stopped_speaker_sends_nothing_more_and_is_not_playing() -> None:
    sent: list[pb.ConverseResponse] = []
    voice = speaker(sent)
    await voice.play(clip(300))
    count = len(sent)
    await voice.cancel()
    assert not voice.playing()
    await voice.play(clip(300))
    assert len(sent) == count
