"""Fuzz SttService.StreamingRecognize: config and audio in any order, odd configs, odd/oversized chunks, cancels."""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.conftest import (
    ALWAYS_ALLOWED,
    END_MODES,
    GARBAGE,
    INT32,
    C,
    Harness,
    Peers,
    audio_formats,
    bidi,
    blobs,
    examples,
    fuzz_beside,
    harness,
    raw_stream,
    text,
)
from voicebot.v1 import audio_pb2, stt_service_pb2_grpc
from voicebot.v1 import stt_service_pb2 as pb

pytestmark = pytest.mark.slow  # loads the speech models

SERVICE = "/voicebot.v1.SttService/"
ALLOWED = ALWAYS_ALLOWED | {C.UNAVAILABLE}
HALF_CLOSED_DEADLINE_S = 30.0
"""Half-closed streams must end by themselves; a Whisper decode on two busy cores gets this long."""
LINEAR16_16K = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_LINEAR16, sample_rate_hertz=16000)


def tone(ms: int) -> bytes:
    """A 440 Hz tone at 16 kHz LINEAR16: voice-like enough to open an utterance now and then."""
    samples = (int(8000 * math.sin(2 * math.pi * 440 * i / 16000)) for i in range(16 * ms))
    return b"".join(struct.pack("<h", s) for s in samples)


@pytest.fixture(scope="module")
def h(peers: Peers) -> Iterator[Harness]:
    with harness("stt", peers) as h:
        channel = h.run(h.connect(peers.target("stt")))
        stub = stt_service_pb2_grpc.SttServiceStub(channel)
        config = pb.StreamingRecognizeRequest(config=pb.RecognitionConfig(audio_format=LINEAR16_16K))
        silence = [pb.StreamingRecognizeRequest(audio=b"\x00" * 3200) for _ in range(10)]

        async def healthy() -> None:
            responses = [r async for r in stub.StreamingRecognize(iter([config, *silence]), timeout=60)]
            assert not [r for r in responses if r.HasField("result") and r.result.is_final]

        yield from fuzz_beside(h, healthy, 120)


def stub(h: Harness) -> stt_service_pb2_grpc.SttServiceStub:
    return stt_service_pb2_grpc.SttServiceStub(h.channel)


FORMATS = audio_formats(
    st.builds(
        audio_pb2.AudioFormat,
        encoding=st.sampled_from([1, 1, 2]),
        sample_rate_hertz=st.sampled_from([8000, 16000, 16000, 44100, 48000, 22050]),
        channels=st.sampled_from([0, 1, 2, 3]),
    )
)


def config(
    fmt: audio_pb2.AudioFormat | None, language: str, interim: bool, silence: int, utterance: int, hints: list[str]
) -> pb.StreamingRecognizeRequest:
    message = pb.RecognitionConfig(
        language_code=language,
        interim_results=interim,
        endpointing_silence_ms=silence,
        max_utterance_ms=utterance,
        phrase_hints=hints,
    )
    if fmt is not None:
        message.audio_format.CopyFrom(fmt)
    return pb.StreamingRecognizeRequest(config=message)


CONFIGS = st.builds(
    config,
    FORMATS,
    st.one_of(st.just(""), st.just("en-US"), text(20)),
    st.booleans(),
    st.one_of(st.just(0), st.sampled_from([99, 100, 5000, 5001]), INT32),
    st.one_of(st.just(0), st.sampled_from([999, 1000, 60000, 60001]), INT32),
    st.one_of(st.just([]), st.lists(text(70), max_size=52)),
)
AUDIO = st.one_of(
    st.builds(lambda b: pb.StreamingRecognizeRequest(audio=b), blobs(3200)),
    st.builds(lambda ms: pb.StreamingRecognizeRequest(audio=tone(ms)), st.sampled_from([20, 100, 300])),
)
EMPTY = st.just(pb.StreamingRecognizeRequest())
VALID_CONFIGS = st.builds(
    config,
    st.sampled_from(
        [
            LINEAR16_16K,
            audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_MULAW, sample_rate_hertz=8000),
            audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_LINEAR16, sample_rate_hertz=8000, channels=2),
        ]
    ),
    st.just(""),
    st.booleans(),
    st.sampled_from([0, 100, 300]),
    st.sampled_from([0, 1000]),
    st.just([]),
)
WHOLE_SAMPLES = st.builds(
    lambda b: pb.StreamingRecognizeRequest(audio=b[: len(b) // 4 * 4] or b"\0\0\0\0"), blobs(3200)
)
ORDERS = st.one_of(
    st.builds(lambda c, rest: [c, *rest], VALID_CONFIGS, st.lists(st.one_of(WHOLE_SAMPLES, AUDIO), max_size=6)),
    st.builds(lambda c, rest: [c, *rest], VALID_CONFIGS, st.lists(WHOLE_SAMPLES, max_size=6)),
    st.lists(st.one_of(CONFIGS, AUDIO, AUDIO, EMPTY), max_size=5),  # audio before config, config twice, ...
    st.builds(lambda c, rest: [c, *rest], CONFIGS, st.lists(st.one_of(AUDIO, AUDIO, EMPTY, CONFIGS), max_size=5)),
)


@examples(ci=70, full=8000)
@given(requests=ORDERS, mode=END_MODES)
def test_recognize(h: Harness, requests: list[pb.StreamingRecognizeRequest], mode: str) -> None:
    call = stub(h).StreamingRecognize
    h.run(bidi(h, "StreamingRecognize", call, requests, mode, ALLOWED, deadline_s=HALF_CLOSED_DEADLINE_S))


@examples(ci=30, full=2000)
@given(payloads=st.lists(GARBAGE, min_size=1, max_size=3))
def test_raw_bytes(h: Harness, payloads: list[bytes]) -> None:
    h.run(raw_stream(h, SERVICE + "StreamingRecognize", "stream_stream", payloads, ALLOWED))
