"""tts_svc speaks banking sentences and stt_svc transcribes them, both over gRPC (issue 3's round trip)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mesh import dial
from orchestrator.launcher import LocalMesh
from tests.stt_svc.speech import word_errors
from voicebot.v1 import audio_pb2, stt_service_pb2, stt_service_pb2_grpc, tts_service_pb2, tts_service_pb2_grpc

pytestmark = pytest.mark.slow

SENTENCES = [
    "Your payment of $1,234.56 is due on March 3rd.",
    "I would like to borrow twenty thousand dollars over five years.",
    "The interest rate on this loan is 6.5 percent.",
    "Your card ending in 4242 has been blocked.",
    "Our downtown branch opens at nine in the morning on Saturday.",
    "What would my monthly payment be on a mortgage of $250,000?",
]

FORMATS = {
    "linear16-16k": audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_LINEAR16, sample_rate_hertz=16000),
    "mulaw-8k": audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_MULAW, sample_rate_hertz=8000),
}


async def speak(tts: tts_service_pb2_grpc.TtsServiceStub, text: str, fmt: audio_pb2.AudioFormat) -> bytes:
    async def requests() -> AsyncIterator[tts_service_pb2.StreamingSynthesizeRequest]:
        yield tts_service_pb2.StreamingSynthesizeRequest(config=tts_service_pb2.SynthesisConfig(output_format=fmt))
        yield tts_service_pb2.StreamingSynthesizeRequest(text=text)
        yield tts_service_pb2.StreamingSynthesizeRequest(flush=True)

    return b"".join([chunk.audio async for chunk in tts.StreamingSynthesize(requests(), timeout=60)])


async def hear(stt: stt_service_pb2_grpc.SttServiceStub, sound: bytes, fmt: audio_pb2.AudioFormat) -> str:
    bytes_per_second = fmt.sample_rate_hertz * (2 if fmt.encoding == audio_pb2.AUDIO_ENCODING_LINEAR16 else 1)
    step = bytes_per_second // 50  # 20 ms frames
    padded = sound + bytes(bytes_per_second)  # a second of silence ends the utterance

    async def requests() -> AsyncIterator[stt_service_pb2.StreamingRecognizeRequest]:
        config = stt_service_pb2.RecognitionConfig(audio_format=fmt)
        yield stt_service_pb2.StreamingRecognizeRequest(config=config)
        for start in range(0, len(padded), step):
            yield stt_service_pb2.StreamingRecognizeRequest(audio=padded[start : start + step])

    finals = [
        reply.result.transcript
        async for reply in stt.StreamingRecognize(requests(), timeout=60)
        if reply.WhichOneof("streaming_response") == "result" and reply.result.is_final
    ]
    return " ".join(finals)


@pytest.mark.parametrize("wire", list(FORMATS))
async def test_banking_sentences_survive_tts_then_stt(mesh: LocalMesh, wire: str) -> None:
    fmt = FORMATS[wire]
    errors = words = 0
    heard = []
    async with dial(mesh.child("tts").target) as tts_channel, dial(mesh.child("stt").target) as stt_channel:
        tts = tts_service_pb2_grpc.TtsServiceStub(tts_channel)
        stt = stt_service_pb2_grpc.SttServiceStub(stt_channel)
        for sentence in SENTENCES:
            transcript = await hear(stt, await speak(tts, sentence, fmt), fmt)
            heard.append(transcript)
            wrong, total = word_errors(sentence, transcript)
            errors, words = errors + wrong, words + total
    assert errors / words <= 0.15, list(zip(SENTENCES, heard, strict=True))
