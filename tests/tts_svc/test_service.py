"""TtsService over real gRPC on the embedded Piper voice: streaming, formats, chunking, barge-in, bad input."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import grpc
import pytest

from mesh.audio import LINEAR16, MULAW
from tests.tts_svc.conftest import Config, Request, TtsServer, audio_of, linear16, mulaw, synthesize
from tts_svc.normalize import normalize
from tts_svc.stream import MAX_BUFFER_CHARS, MAX_TEXT_CHARS, Synthesizer
from voicebot.v1 import audio_pb2, tts_service_pb2

pytestmark = pytest.mark.asyncio(loop_scope="module")

Response = tts_service_pb2.StreamingSynthesizeResponse


def segments(responses: Sequence[Response]) -> dict[int, list[Response]]:
    by_id: dict[int, list[Response]] = {}
    for r in responses:
        by_id.setdefault(r.segment_id, []).append(r)
    return by_id


def check_chunking(responses: Sequence[Response], rate: int, bytes_per_sample: int, max_ms: int) -> None:
    """Chunks are whole samples, at most max_ms, in order, offsets add up, one segment_end per segment."""
    assert responses
    for seg_id, chunks in segments(responses).items():
        assert [c.chunk_index for c in chunks] == list(range(len(chunks)))
        assert [c.segment_end for c in chunks] == [False] * (len(chunks) - 1) + [True]
        assert chunks[0].compute_ms > 0
        assert all(c.compute_ms == 0 for c in chunks[1:])
        assert len({c.segment_text for c in chunks}) == 1
        samples = 0
        for c in chunks:
            assert len(c.audio) % bytes_per_sample == 0
            n = len(c.audio) // bytes_per_sample
            assert n <= rate * max_ms // 1000
            assert c.offset_ms == round(samples * 1000 / rate)
            assert c.duration_ms == round(n * 1000 / rate) <= max_ms
            samples += n
        assert samples > rate * 0.2, f"segment {seg_id} is too short to be speech"
    ids = [r.segment_id for r in responses]
    assert ids == sorted(ids)
    assert sorted(set(ids)) == list(range(len(set(ids))))


async def test_list_voices(piper: TtsServer) -> None:
    voices = (await piper.stub.ListVoices(tts_service_pb2.ListVoicesRequest())).voices
    assert [(v.name, v.language_code, v.sample_rate_hertz, v.engine) for v in voices] == [
        ("en_US-joe-medium", "en-US", 22050, "piper")
    ]
    assert "CC0" in voices[0].description
    english = await piper.stub.ListVoices(tts_service_pb2.ListVoicesRequest(language_code="en"))
    assert len(english.voices) == 1
    french = await piper.stub.ListVoices(tts_service_pb2.ListVoicesRequest(language_code="fr"))
    assert list(french.voices) == []


async def test_sentences_stream_as_segments_at_the_native_rate(piper: TtsServer) -> None:
    responses = await synthesize(
        piper.stub,
        Config(),
        ["Your balance is $1,2", "34.56. Dr. Smith", " will call you", " today. Anything", " else?"],
    )
    check_chunking(responses, 22050, 2, 100)
    assert responses[0].audio_format == audio_pb2.AudioFormat(encoding=LINEAR16, sample_rate_hertz=22050, channels=1)
    texts = [chunks[0].segment_text for chunks in segments(responses).values()]
    assert texts == ["Your balance is $1,234.56.", "Dr. Smith will call you today.", "Anything else?"]


async def test_a_long_sentence_split_at_its_first_clause_is_still_one_segment(piper: TtsServer) -> None:
    sentence = "Sure, I can send a new debit card to your home address today."
    parts = piper.app.synthesizer._parts(normalize(sentence), 1.0)  # split or not, by the engine's measured pace
    before = piper.app.engine.stats().runs_started
    responses = await synthesize(piper.stub, Config(), [sentence])
    assert piper.app.engine.stats().runs_started - before == len(parts)
    check_chunking(responses, 22050, 2, 100)
    assert {r.segment_text for r in responses} == {sentence}


async def test_the_first_clause_goes_alone_only_when_the_rest_will_be_ready_in_time(piper: TtsServer) -> None:
    synthesizer = Synthesizer(piper.app.engine, max_streams=4, workers=2)
    spoken = "Sure, I can send a new debit card to your home address today."
    synthesizer.real_time_factor = 0.05  # the rest (about 3.5 s of speech) is made in 0.18 s
    assert synthesizer._parts(spoken, 1.0) == ["Sure,", "I can send a new debit card to your home address today."]
    synthesizer.real_time_factor = 0.1  # 0.37 s: more than 2/3 of the 0.5 s that "Sure," and its pause play
    assert synthesizer._parts(spoken, 1.0) == [spoken]
    synthesizer.real_time_factor = 0.05
    synthesizer.active = 3  # more streams than workers: queueing would delay the rest
    assert synthesizer._parts(spoken, 1.0) == [spoken]
    assert Synthesizer(piper.app.engine, 4, first_clause_alone=False)._parts(spoken, 1.0) == [spoken]


async def test_flush_speaks_the_buffer_and_half_close_speaks_the_rest(piper: TtsServer) -> None:
    responses = await synthesize(piper.stub, Config(), ["Please hold", True, "One moment", " ", True, True, "Thanks"])
    texts = [chunks[0].segment_text for chunks in segments(responses).values()]
    assert texts == ["Please hold", "One moment", "Thanks"]


async def test_text_without_letters_makes_no_segment(piper: TtsServer) -> None:
    responses = await synthesize(piper.stub, Config(), ["... ", True, "Okay."])
    assert [r.segment_text for r in responses if r.segment_end] == ["Okay."]
    assert {r.segment_id for r in responses} == {0}


@pytest.mark.parametrize(
    ("fmt", "rate", "width"),
    [
        (linear16(8000), 8000, 2),
        (linear16(16000), 16000, 2),
        (linear16(22050), 22050, 2),
        (linear16(24000), 24000, 2),
        (linear16(0), 22050, 2),
        (mulaw(8000), 8000, 1),
        (mulaw(0), 8000, 1),
    ],
)
async def test_output_formats(piper: TtsServer, fmt: audio_pb2.AudioFormat, rate: int, width: int) -> None:
    responses = await synthesize(piper.stub, Config(output_format=fmt, max_chunk_ms=40), ["Thank you for calling."])
    check_chunking(responses, rate, width, 40)
    assert responses[0].audio_format.sample_rate_hertz == rate
    assert responses[0].audio_format.encoding == (MULAW if width == 1 else LINEAR16)
    samples, _ = audio_of(responses)
    duration = len(samples) / rate
    assert 0.8 < duration < 3.0
    assert float(abs(samples).max()) > 0.1


@pytest.mark.parametrize("max_chunk_ms", [20, 55, 100])
async def test_chunks_never_exceed_max_chunk_ms(piper: TtsServer, max_chunk_ms: int) -> None:
    responses = await synthesize(piper.stub, Config(max_chunk_ms=max_chunk_ms), ["Your payment was received."])
    check_chunking(responses, 22050, 2, max_chunk_ms)


async def test_speed_changes_the_duration(piper: TtsServer) -> None:
    text = ["Your transfer of $250 was completed on March 3rd."]
    durations = {}
    for speed in (0.5, 1.0, 2.0):
        samples, rate = audio_of(await synthesize(piper.stub, Config(speed=speed), text))
        durations[speed] = len(samples) / rate
    assert durations[0.5] > 1.5 * durations[1.0]
    assert durations[2.0] < 0.7 * durations[1.0]


async def test_streams_run_concurrently(piper: TtsServer) -> None:
    texts = ["Your card is active.", "Your loan is approved.", "Your address was updated."]
    results = await asyncio.gather(*(synthesize(piper.stub, Config(), [t]) for t in texts))
    for text, responses in zip(texts, results, strict=True):
        assert {r.segment_text for r in responses} == {text}


async def wait_until_idle(server: TtsServer) -> None:
    for _ in range(400):
        if server.app.synthesizer.active == 0:
            return
        await asyncio.sleep(0.025)
    raise AssertionError("the cancelled stream is still active on the server")


async def test_cancel_stops_synthesis_at_once(piper: TtsServer) -> None:
    sentences = [f"This is sentence number {i} of a long answer about your mortgage options." for i in range(30)]
    before = piper.app.engine.stats().runs_started
    call = piper.stub.StreamingSynthesize(timeout=60)
    await call.write(Request(config=Config()))
    await call.write(Request(text=" ".join(sentences) + " "))
    while (await call.read()).segment_id < 1:
        pass
    call.cancel()
    await wait_until_idle(piper)
    after_cancel = piper.app.engine.stats().runs_started
    await asyncio.sleep(1.0)
    assert piper.app.engine.stats().runs_started == after_cancel, "work continued for a dead stream"
    assert after_cancel - before < len(sentences)
    assert piper.app.engine._bridge.pending == 0
    # The service keeps serving.
    responses = await synthesize(piper.stub, Config(), ["Still here."])
    assert responses[-1].segment_end


async def test_deadline_stops_synthesis(piper: TtsServer) -> None:
    sentences = [f"Sentence {i} explains the fees of your checking account in detail." for i in range(30)]
    call = piper.stub.StreamingSynthesize(timeout=0.5)
    await call.write(Request(config=Config()))
    await call.write(Request(text=" ".join(sentences) + " "))

    async def read_slowly() -> None:
        async for _ in call:
            await asyncio.sleep(0.05)  # a slow reader: the deadline passes mid-stream

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await read_slowly()
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await wait_until_idle(piper)
    runs = piper.app.engine.stats().runs_started
    await asyncio.sleep(0.5)
    assert piper.app.engine.stats().runs_started == runs


async def expect_rejected(server: TtsServer, requests: Sequence[Request], code: grpc.StatusCode, *needles: str) -> None:
    """The bad stream fails with ``code`` and a message naming the problem, while a good stream goes on."""
    good = server.stub.StreamingSynthesize(timeout=60)
    await good.write(Request(config=Config()))
    await good.write(Request(text="Okay, one moment"))

    async def bad_requests():  # type: ignore[no-untyped-def]
        for request in requests:
            yield request

    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in server.stub.StreamingSynthesize(bad_requests(), timeout=60):
            pass
    assert err.value.code() == code
    for needle in needles:
        assert needle in err.value.details(), err.value.details()

    await good.write(Request(text=" please."))
    await good.done_writing()
    responses = [r async for r in good]
    assert [r.segment_text for r in responses if r.segment_end] == ["Okay, one moment please."]


async def test_text_before_config(piper: TtsServer) -> None:
    await expect_rejected(piper, [Request(text="Hello.")], grpc.StatusCode.INVALID_ARGUMENT, "first request", "config")


async def test_config_twice(piper: TtsServer) -> None:
    requests = [Request(config=Config()), Request(text="Hi. "), Request(config=Config())]
    await expect_rejected(piper, requests, grpc.StatusCode.INVALID_ARGUMENT, "config", "once")


async def test_empty_text(piper: TtsServer) -> None:
    requests = [Request(config=Config()), Request(text="")]
    await expect_rejected(piper, requests, grpc.StatusCode.INVALID_ARGUMENT, "text", "1-4096", "empty")


async def test_oversized_text(piper: TtsServer) -> None:
    requests = [Request(config=Config()), Request(text="a" * (MAX_TEXT_CHARS + 1))]
    await expect_rejected(piper, requests, grpc.StatusCode.INVALID_ARGUMENT, "text", "4097 characters")


async def test_buffer_without_sentence_end(piper: TtsServer) -> None:
    words = "and so on " * 400  # 4000 characters, no sentence end
    requests = [Request(config=Config())] + [Request(text=words)] * 5
    await expect_rejected(piper, requests, grpc.StatusCode.RESOURCE_EXHAUSTED, "buffer", str(MAX_BUFFER_CHARS), "flush")


async def test_flush_false(piper: TtsServer) -> None:
    requests = [Request(config=Config()), Request(flush=False)]
    await expect_rejected(piper, requests, grpc.StatusCode.INVALID_ARGUMENT, "flush must be true")


@pytest.mark.parametrize(
    ("fmt", "needles"),
    [
        (linear16(44100), ("config.output_format.sample_rate_hertz", "44100", "8000, 16000, 22050, 24000")),
        (mulaw(16000), ("config.output_format.sample_rate_hertz", "16000", "MULAW")),
        (
            audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_UNSPECIFIED, sample_rate_hertz=16000),
            ("config.output_format.encoding", "LINEAR16 or MULAW"),
        ),
        (
            audio_pb2.AudioFormat(encoding=LINEAR16, sample_rate_hertz=16000, channels=2),
            ("config.output_format.channels", "1..1"),
        ),
    ],
)
async def test_unsupported_output_format(
    piper: TtsServer, fmt: audio_pb2.AudioFormat, needles: tuple[str, ...]
) -> None:
    requests = [Request(config=Config(output_format=fmt)), Request(text="Hi.")]
    await expect_rejected(piper, requests, grpc.StatusCode.INVALID_ARGUMENT, *needles)


@pytest.mark.parametrize("speed", [0.4, 2.5, -1.0, float("nan")])
async def test_speed_out_of_range(piper: TtsServer, speed: float) -> None:
    requests = [Request(config=Config(speed=speed)), Request(text="Hi.")]
    await expect_rejected(piper, requests, grpc.StatusCode.INVALID_ARGUMENT, "config.speed", "0.5 and 2.0")


@pytest.mark.parametrize("max_chunk_ms", [10, 19, 101, -5])
async def test_max_chunk_ms_out_of_range(piper: TtsServer, max_chunk_ms: int) -> None:
    requests = [Request(config=Config(max_chunk_ms=max_chunk_ms)), Request(text="Hi.")]
    await expect_rejected(
        piper, requests, grpc.StatusCode.INVALID_ARGUMENT, "config.max_chunk_ms", "20 and 100", str(max_chunk_ms)
    )


async def test_unknown_voice(piper: TtsServer) -> None:
    requests = [Request(config=Config(voice="en_US-nobody")), Request(text="Hi.")]
    await expect_rejected(piper, requests, grpc.StatusCode.NOT_FOUND, "en_US-nobody", "en_US-joe-medium")


async def test_empty_request(piper: TtsServer) -> None:
    requests = [Request(config=Config()), Request()]
    await expect_rejected(piper, requests, grpc.StatusCode.INVALID_ARGUMENT, "none of config, text or flush")


async def test_an_empty_stream_ends_cleanly(piper: TtsServer) -> None:
    async def nothing():  # type: ignore[no-untyped-def]
        return
        yield

    assert [r async for r in piper.stub.StreamingSynthesize(nothing(), timeout=10)] == []
    assert await synthesize(piper.stub, Config(), []) == []
