"""Bad input fails the one stream with the right status and a message naming the problem.

Every case runs beside a well-formed stream on the same server, which must still be served.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import grpc
import numpy as np
import pytest

from mesh import audio
from tests.stt_svc import speech
from tests.stt_svc.conftest import Running, finals, recognize
from voicebot.v1 import audio_pb2
from voicebot.v1 import stt_service_pb2 as pb

pytestmark = pytest.mark.asyncio(loop_scope="session")

INVALID = grpc.StatusCode.INVALID_ARGUMENT
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


def pcm16(seconds: float, rate: int = 16000) -> bytes:
    return speech.to_wire(speech.silence(seconds), rate)


def audio_message(data: bytes) -> pb.StreamingRecognizeRequest:
    return pb.StreamingRecognizeRequest(audio=data)


def with_config(**fields: object) -> pb.StreamingRecognizeRequest:
    request = speech.config_request(16000)
    for name, value in fields.items():
        if name == "phrase_hints":
            request.config.phrase_hints.extend(value)  # type: ignore[arg-type]
        else:
            setattr(request.config, name, value)
    return request


def with_format(encoding: int, rate: int, channels: int = 1) -> pb.StreamingRecognizeRequest:
    request = speech.config_request(16000)
    request.config.audio_format.CopyFrom(
        audio_pb2.AudioFormat(encoding=encoding, sample_rate_hertz=rate, channels=channels)  # type: ignore[arg-type]
    )
    return request


GOOD = speech.config_request(16000)
CASES: dict[str, tuple[Sequence[pb.StreamingRecognizeRequest], grpc.StatusCode, str]] = {
    "audio before config": ([audio_message(pcm16(0.1)), GOOD], INVALID, "first message must carry config"),
    "config twice": ([GOOD, audio_message(pcm16(0.1)), GOOD], INVALID, "config may only be sent in the first message"),
    "odd LINEAR16 byte count": ([GOOD, audio_message(pcm16(0.1)[:-1])], INVALID, "not a whole number of 2-byte"),
    "odd stereo byte count": (
        [with_format(audio.LINEAR16, 16000, 2), audio_message(b"\x00" * 6)],
        INVALID,
        "4-byte 2-channel frame",
    ),
    "unsupported LINEAR16 rate": (
        [with_format(audio.LINEAR16, 22050)],
        INVALID,
        "sample_rate_hertz 22050 is not supported for LINEAR16",
    ),
    "unsupported MULAW rate": (
        [with_format(audio.MULAW, 16000)],
        INVALID,
        "sample_rate_hertz 16000 is not supported for MULAW",
    ),
    "unspecified encoding": (
        [with_format(audio_pb2.AUDIO_ENCODING_UNSPECIFIED, 16000)],
        INVALID,
        "encoding must be LINEAR16 or MULAW",
    ),
    "three channels": ([with_format(audio.LINEAR16, 16000, 3)], INVALID, "channels must be 1..2"),
    "no audio format": ([pb.StreamingRecognizeRequest(config=pb.RecognitionConfig())], INVALID, "audio_format"),
    "chunk over 64 KiB": ([GOOD, audio_message(pcm16(2.1))], EXHAUSTED, "over the 64 KiB"),
    "empty audio message": ([GOOD, audio_message(b"")], INVALID, "audio message is empty"),
    "endpointing too short": ([with_config(endpointing_silence_ms=50)], INVALID, "endpointing_silence_ms must be"),
    "endpointing too long": ([with_config(endpointing_silence_ms=5001)], INVALID, "endpointing_silence_ms must be"),
    "negative endpointing": ([with_config(endpointing_silence_ms=-1)], INVALID, "endpointing_silence_ms must be"),
    "max utterance too short": ([with_config(max_utterance_ms=999)], INVALID, "max_utterance_ms must be 1000-60000"),
    "max utterance too long": ([with_config(max_utterance_ms=60001)], INVALID, "max_utterance_ms must be 1000-60000"),
    "too many hints": ([with_config(phrase_hints=["loan"] * 51)], INVALID, "phrase_hints has 51 entries"),
    "hint too long": ([with_config(phrase_hints=["ok", "x" * 65])], INVALID, "phrase_hints[1] is 65 characters"),
    "unsupported language": ([with_config(language_code="fr-FR")], INVALID, "language_code 'fr-FR'"),
    "empty stream": ([], INVALID, "stream ended before its first message"),
}


async def good_call(stt: Running) -> str:
    samples = np.concatenate([speech.silence(0.3), speech.speak(speech.BANKING[8][0]), speech.silence(0.8)])
    fmt = audio.PcmFormat(audio.LINEAR16, 16000)
    requests = [GOOD, *speech.audio_requests(speech.to_wire(samples, 16000), fmt)]
    (final,) = finals(await recognize(stt.stub, speech.paced(requests, 0.01)))
    return final.transcript


async def expect_error(
    stt: Running, requests: Sequence[pb.StreamingRecognizeRequest], code: grpc.StatusCode, fragment: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await recognize(stt.stub, list(requests))
    assert failure.value.code() == code
    assert fragment in (failure.value.details() or "")


@pytest.mark.parametrize("case", list(CASES))
async def test_bad_input_fails_only_its_own_stream(stt: Running, case: str) -> None:
    requests, code, fragment = CASES[case]
    _, transcript = await asyncio.gather(expect_error(stt, requests, code, fragment), good_call(stt))
    assert "balance" in transcript.lower()


async def test_stream_over_its_maximum_duration_is_refused(make_stt) -> None:  # type: ignore[no-untyped-def]
    stt = await make_stt(max_stream_s=5.0)
    fmt = audio.PcmFormat(audio.LINEAR16, 16000)
    requests = [GOOD, *speech.audio_requests(pcm16(6.0), fmt)]
    _, transcript = await asyncio.gather(
        expect_error(stt, requests, EXHAUSTED, "maximum duration of 5 s"), good_call(stt)
    )
    assert "balance" in transcript.lower()


async def test_streams_beyond_the_stream_limit_are_refused(make_stt) -> None:  # type: ignore[no-untyped-def]
    stt = await make_stt(max_streams=1)
    call = stt.stub.StreamingRecognize(timeout=60)
    await call.write(GOOD)
    fmt = audio.PcmFormat(audio.LINEAR16, 16000)
    samples = np.concatenate([speech.silence(0.3), speech.speak(speech.BANKING[6][0])])
    for request in speech.audio_requests(speech.to_wire(samples, 16000), fmt):
        await call.write(request)
    first = await call.read()  # SPEECH_STARTED: the stream is certainly being served
    assert first.speech_event.type == pb.SPEECH_EVENT_TYPE_SPEECH_STARTED
    await expect_error(stt, [GOOD], EXHAUSTED, "stream limit (1 streams")
    await call.done_writing()
    while await call.read() is not grpc.aio.EOF:
        pass
    assert "balance" in (await good_call(stt)).lower()  # the slot is free again
