"""StreamingRecognize with the real tiny.en weights over gRPC: accuracy, formats, endpointing, interims."""

from __future__ import annotations

import asyncio

import grpc
import numpy as np
import pytest

from mesh import audio
from tests.stt_svc import speech
from tests.stt_svc.conftest import CALL_TIMEOUT_S, Running, events, finals, interims, recognize
from voicebot.v1 import stt_service_pb2 as pb

pytestmark = pytest.mark.asyncio(loop_scope="session")

STARTED = pb.SPEECH_EVENT_TYPE_SPEECH_STARTED
ENDED = pb.SPEECH_EVENT_TYPE_SPEECH_ENDED


def conversation(sentences: list[str], gap_s: float = 1.0) -> np.ndarray:
    parts = [speech.silence(0.5)]
    for text in sentences:
        parts += [speech.speak(text), speech.silence(gap_s)]
    return np.concatenate(parts)


async def transcribe(
    stt: Running, samples: np.ndarray, rate: int, encoding: int = audio.LINEAR16, channels: int = 1, **config: object
) -> list[pb.StreamingRecognizeResponse]:
    fmt = audio.PcmFormat(encoding, rate, channels)
    data = speech.to_wire(samples, rate, encoding, channels)
    requests = [speech.config_request(rate, encoding, channels, **config), *speech.audio_requests(data, fmt)]  # type: ignore[arg-type]
    return await recognize(stt.stub, requests)


def wer(references: list[str], results: list[pb.RecognitionResult]) -> float:
    errors, words = speech.word_errors(" ".join(references), " ".join(r.transcript for r in results))
    return errors / words


def check_stream_order(responses: list[pb.StreamingRecognizeResponse]) -> None:
    """Per utterance: STARTED, interims, ENDED, one final; indices count up from 0."""
    expected_index = 0
    state = "idle"
    for response in responses:
        if response.HasField("speech_event"):
            event = response.speech_event
            assert event.utterance_index == expected_index
            if event.type == STARTED:
                assert state == "idle"
                state = "speech"
            else:
                assert event.type == ENDED
                assert state == "speech"
                state = "ended"
        else:
            result = response.result
            assert result.utterance_index == expected_index
            if result.is_final:
                assert state == "ended"
                state = "idle"
                expected_index += 1
            else:
                assert state == "speech"
    assert state == "idle"


async def test_banking_sentences_meet_the_wer_target(stt: Running) -> None:
    sentences = [spoken for spoken, _ in speech.BANKING]
    responses = await transcribe(stt, conversation(sentences), 16000)
    check_stream_order(responses)
    results = finals(responses)
    assert len(results) == len(speech.BANKING)
    assert wer([ref for _, ref in speech.BANKING], results) <= 0.15
    for result in results:
        assert 0.0 < result.confidence <= 1.0
        assert result.words
        assert result.transcript.split()[0].strip(",.?") == result.words[0].word.strip(",.?")
        starts = [w.start_offset_ms for w in result.words]
        assert starts == sorted(starts)
        for word in result.words:
            assert result.start_offset_ms <= word.start_offset_ms <= word.end_offset_ms <= result.end_offset_ms
            assert 0.0 <= word.confidence <= 1.0


async def test_telephony_mulaw_8khz_transcribes(stt: Running) -> None:
    picked = speech.BANKING[:4]
    responses = await transcribe(stt, conversation([s for s, _ in picked]), 8000, audio.MULAW)
    check_stream_order(responses)
    results = finals(responses)
    assert len(results) == len(picked)
    assert wer([ref for _, ref in picked], results) <= 0.15


@pytest.mark.parametrize(("rate", "channels"), [(8000, 1), (44100, 1), (48000, 1), (48000, 2)])
async def test_linear16_rates_and_stereo_transcribe(stt: Running, rate: int, channels: int) -> None:
    picked = speech.BANKING[4:7]
    responses = await transcribe(stt, conversation([s for s, _ in picked]), rate, channels=channels)
    results = finals(responses)
    assert len(results) == len(picked)
    assert wer([ref for _, ref in picked], results) <= 0.15


@pytest.mark.parametrize("silence_ms", [300, 800])
async def test_endpoint_is_decided_within_silence_plus_300_ms_of_audio(stt: Running, silence_ms: int) -> None:
    """Audio stops at true end + silence + 300 ms: SPEECH_ENDED and the final must come without more audio."""
    rate = 16000
    lead_s = 0.6
    spoken = speech.speak(speech.BANKING[8][0])
    true_end_ms = round(1000 * (lead_s + len(spoken) / speech.PIPER_RATE))
    samples = np.concatenate([speech.silence(lead_s), spoken, speech.silence(3.0)])
    fmt = audio.PcmFormat(audio.LINEAR16, rate)
    data = speech.to_wire(samples, rate)
    cut = fmt.bytes_for_ms(true_end_ms + silence_ms + 300)
    call = stt.stub.StreamingRecognize(timeout=CALL_TIMEOUT_S)
    await call.write(speech.config_request(rate, endpointing_ms=silence_ms))
    for chunk in audio.split_chunks(data[:cut], fmt, 20):
        await call.write(pb.StreamingRecognizeRequest(audio=chunk))
    before: list[pb.StreamingRecognizeResponse] = []
    while not finals(before):  # no more audio is sent until the final is here
        before.append(await asyncio.wait_for(call.read(), CALL_TIMEOUT_S))
    for chunk in audio.split_chunks(data[cut:], fmt, 20):
        await call.write(pb.StreamingRecognizeRequest(audio=chunk))
    await call.done_writing()
    after = []
    while (response := await call.read()) is not grpc.aio.EOF:
        after.append(response)
    assert after == []  # the trailing silence holds no speech
    check_stream_order(before)
    started, ended = events(before)
    assert started.type == STARTED
    assert ended.type == ENDED
    assert abs(started.offset_ms - lead_s * 1000) <= 200
    assert true_end_ms - 250 <= ended.offset_ms <= true_end_ms + 300
    (final,) = finals(before)
    assert final.end_offset_ms == ended.offset_ms
    assert final.start_offset_ms == started.offset_ms
    assert "balance" in final.transcript.lower()


async def test_interim_results_come_during_speech_and_their_stable_prefix_only_grows(stt: Running) -> None:
    rate = 16000
    samples = conversation([speech.BANKING[2][0], speech.BANKING[5][0]])
    fmt = audio.PcmFormat(audio.LINEAR16, rate)
    requests = [
        speech.config_request(rate, interim=True),
        *speech.audio_requests(speech.to_wire(samples, rate), fmt, 100),
    ]
    # Real-time pacing gives the service audio at the rate interim results are made for.
    responses = await recognize(stt.stub, speech.paced(requests, 0.1))
    check_stream_order(responses)
    partial = interims(responses)
    assert {r.utterance_index for r in partial} == {0, 1}
    for index in (0, 1):
        stable: list[str] = []
        for result in (r for r in partial if r.utterance_index == index):
            words = result.stable_text.split()
            assert words[: len(stable)] == stable, "a stable prefix changed"
            stable = words
            assert result.transcript == " ".join(p for p in (result.stable_text, result.unstable_text) if p)
            assert 0.0 <= result.stability <= 1.0
            assert result.start_offset_ms < result.end_offset_ms
        assert stable, "no word ever became stable"
    assert any(len(r.stable_text.split()) >= 3 for r in partial)


async def test_no_interim_results_unless_asked(stt: Running) -> None:
    samples = conversation([speech.BANKING[6][0]])
    fmt = audio.PcmFormat(audio.LINEAR16, 16000)
    requests = [speech.config_request(16000), *speech.audio_requests(speech.to_wire(samples, 16000), fmt, 100)]
    responses = await recognize(stt.stub, speech.paced(requests, 0.05))
    assert interims(responses) == []
    assert len(finals(responses)) == 1


async def test_long_speech_is_finalised_at_max_utterance_ms(stt: Running) -> None:
    spoken = speech.BANKING[0][0]
    responses = await transcribe(stt, conversation([spoken]), 16000, max_utterance_ms=1500)
    check_stream_order(responses)
    results = finals(responses)
    assert len(results) >= 2
    ordered = events(responses)
    for ended, started in zip(ordered[1::2], ordered[2::2], strict=False):
        assert started.offset_ms == ended.offset_ms  # speech went on: the next utterance starts where one was cut
    for result in results:
        assert result.end_offset_ms - result.start_offset_ms <= 1500
    assert "savings" in " ".join(r.transcript for r in results).lower()


async def test_end_of_stream_finalises_the_open_utterance(stt: Running) -> None:
    samples = np.concatenate([speech.silence(0.4), speech.speak(speech.BANKING[6][0])])
    responses = await transcribe(stt, samples, 16000)
    check_stream_order(responses)
    (final,) = finals(responses)
    assert "debit card" in final.transcript.lower()


async def test_silence_and_quiet_noise_give_no_events(stt: Running) -> None:
    noise = np.random.default_rng(7).normal(0, 0.003, speech.PIPER_RATE * 3).astype(np.float32)
    assert await transcribe(stt, noise, 16000) == []


async def test_concurrent_streams_share_the_model_without_crosstalk(stt: Running) -> None:
    picked = speech.BANKING[5:9]
    calls = [transcribe(stt, conversation([spoken]), 16000, interim=True) for spoken, _ in picked]
    for (_, reference), responses in zip(picked, await asyncio.gather(*calls), strict=True):
        (final,) = finals(responses)
        errors, words = speech.word_errors(reference, final.transcript)
        assert errors / words <= 0.25


async def test_phrase_hints_and_language_are_accepted(stt: Running) -> None:
    responses = await transcribe(
        stt, conversation([speech.BANKING[3][0]]), 16000, hints=["personal loan", "overdraft"], language="en-GB"
    )
    (final,) = finals(responses)
    assert "loan" in final.transcript.lower()


async def test_a_stalled_stream_does_not_hold_up_another(stt: Running) -> None:
    """One caller sends speech, then neither reads nor closes; another call is served meanwhile."""
    fmt = audio.PcmFormat(audio.LINEAR16, 16000)
    stalled = stt.stub.StreamingRecognize(timeout=CALL_TIMEOUT_S)
    await stalled.write(speech.config_request(16000, interim=True))
    for request in speech.audio_requests(speech.to_wire(conversation([speech.BANKING[0][0]]), 16000), fmt):
        await stalled.write(request)
    assert (await stalled.read()).speech_event.type == STARTED  # it is being served; now it stops reading
    responses = await transcribe(stt, conversation([speech.BANKING[8][0]]), 16000)
    (final,) = finals(responses)
    assert "balance" in final.transcript.lower()
    stalled.cancel()
