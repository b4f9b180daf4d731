"""What tts_svc says can be understood: real voices over gRPC, transcribed by faster-whisper tiny.en."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tests.tts_svc.conftest import Config, TtsServer, audio_of, linear16, mulaw, synthesize, transcribe, wer
from voicebot.v1 import tts_service_pb2

pytestmark = pytest.mark.asyncio(loop_scope="module")

BANKING = [
    "Your current balance is $1,234.56.",
    "Your next payment of $350 is due on March 15, 2025.",
    "The interest rate on your savings account is 4.5%.",
    "Can I apply for a personal loan of $10,000 over 36 months?",
    "Your card ending in 4321 was charged $89.99 on 03/02/2025.",
    "Dr. Smith from our U.S. branch will call you on the 3rd of June.",
    "Sure, I can send a new debit card to your home address today.",
]


async def speak_and_score(
    server: TtsServer, whisper: object, config: Config, sentences: list[str], label: str
) -> tuple[list[tts_service_pb2.StreamingSynthesizeResponse], float, str]:
    """Speak the sentences in one delta over gRPC; return the responses and the WER of their transcript."""
    responses = await synthesize(server.stub, config, [" ".join(sentences)])
    assert [r.segment_text for r in responses if r.segment_end] == sentences
    hypothesis = transcribe(whisper, *audio_of(responses))
    score = wer(" ".join(sentences), hypothesis)
    print(f"\n{label} WER {score:.3f}: {hypothesis}")
    return responses, score, hypothesis


async def test_piper_banking_sentences_are_understood(piper: TtsServer, whisper: object) -> None:
    # 16 kHz LINEAR16: resampled by the service from Piper's 22,050 Hz, as STT wants it.
    config = Config(output_format=linear16(16000))
    responses, score, hypothesis = await speak_and_score(piper, whisper, config, BANKING, "piper")
    assert responses[0].audio_format.sample_rate_hertz == 16000
    assert score <= 0.15, hypothesis


async def test_piper_mulaw_8k_round_trips(piper: TtsServer, whisper: object) -> None:
    config = Config(output_format=mulaw(8000))
    responses, score, hypothesis = await speak_and_score(piper, whisper, config, BANKING[:2], "piper mu-law 8 kHz")
    assert all(len(r.audio) <= 800 for r in responses)  # 100 ms of 8-bit samples
    assert score <= 0.3, hypothesis


async def test_masked_digits_are_not_spoken(piper: TtsServer, whisper: object) -> None:
    responses = await synthesize(
        piper.stub, Config(output_format=linear16(16000)), ["Card 4111 1111 1111 9876 is blocked."]
    )
    hypothesis = transcribe(whisper, *audio_of(responses)).lower()
    assert "ending in" in hypothesis, hypothesis
    assert "".join(re.findall(r"\d", hypothesis)) in ("9876", ""), hypothesis
    assert "one one" not in hypothesis, hypothesis
    assert "blocked" in hypothesis, hypothesis


async def test_kokoro_lists_its_voices(kokoro: TtsServer) -> None:
    voices = (await kokoro.stub.ListVoices(tts_service_pb2.ListVoicesRequest())).voices
    assert [v.name for v in voices][0] == "jf_alpha"
    assert {v.name for v in voices} == {"jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"}
    assert all(v.engine == "kokoro" and v.sample_rate_hertz == 24000 and v.language_code == "en-US" for v in voices)
    assert all("Apache-2.0" in v.description for v in voices)


async def test_kokoro_streams_chunked_24k_audio_that_is_understood(kokoro: TtsServer, whisper: object) -> None:
    label = "kokoro (jf_alpha, espeak-ng phonemes)"
    responses, score, hypothesis = await speak_and_score(kokoro, whisper, Config(max_chunk_ms=50), BANKING[:4], label)
    assert {r.audio_format.sample_rate_hertz for r in responses} == {24000}
    assert all(len(r.audio) <= 2 * 1200 and r.duration_ms <= 50 for r in responses)
    assert all(r.compute_ms > 0 for r in responses if r.chunk_index == 0)
    assert score <= 0.35, hypothesis


async def test_kokoro_speed_and_mulaw(kokoro: TtsServer) -> None:
    durations = {}
    for speed in (1.0, 2.0):
        responses = await synthesize(
            kokoro.stub, Config(speed=speed, output_format=mulaw()), ["Thank you for calling."]
        )
        samples, rate = audio_of(responses)
        assert rate == 8000
        assert np.abs(samples).max() > 0.05
        durations[speed] = len(samples) / rate
    assert durations[2.0] < 0.8 * durations[1.0]


async def test_kokoro_cancel_stops_work(kokoro: TtsServer) -> None:
    import asyncio

    from tests.tts_svc.conftest import Request
    from tests.tts_svc.test_service import wait_until_idle

    before = kokoro.app.engine.stats().runs_started
    call = kokoro.stub.StreamingSynthesize(timeout=60)
    await call.write(Request(config=Config()))
    await call.write(Request(text="Sentence one is short. " * 10))
    await call.read()
    call.cancel()
    await wait_until_idle(kokoro)
    runs = kokoro.app.engine.stats().runs_started
    await asyncio.sleep(1.0)
    assert kokoro.app.engine.stats().runs_started == runs
    assert runs - before < 10
