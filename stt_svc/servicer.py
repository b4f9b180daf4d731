"""SttService: protobuf <-> domain types, validation, delegation to the engine."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import numpy as np

from mesh import audio
from mesh.errors import InvalidArgument, ResourceExhausted, Unavailable
from stt_svc.config import SttSettings
from stt_svc.engine import (
    SAMPLE_RATE,
    FinalResult,
    InterimResult,
    SpeechEnded,
    SpeechStarted,
    StreamConfig,
    SttEngine,
    SttEvent,
)
from voicebot.v1 import stt_service_pb2 as pb
from voicebot.v1 import stt_service_pb2_grpc

LINEAR16_RATES = (8000, 16000, 44100, 48000)
MULAW_RATES = (8000,)
MAX_AUDIO_BYTES = 64 * 1024
ENDPOINTING_MS = (100, 5000)
MAX_UTTERANCE_MS = (1000, 60000)
MAX_HINTS = 50
MAX_HINT_CHARS = 64
DEFAULT_LANGUAGE = "en-US"


class SttServicer(stt_service_pb2_grpc.SttServiceServicer):
    """Validates the config-first stream, converts its audio to 16 kHz mono, and runs the engine."""

    def __init__(self, engine: SttEngine, settings: SttSettings) -> None:
        """Serve ``engine`` with the limits of ``settings``; refuse streams until ``ready``."""
        self.engine = engine
        self.settings = settings
        self.ready = False
        self.active = 0

    async def StreamingRecognize(
        self, request_iterator: AsyncIterator[pb.StreamingRecognizeRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.StreamingRecognizeResponse]:
        """Transcribe one stream; see stt_service.proto for the contract."""
        if not self.ready:
            raise Unavailable("speech engine is not ready (loading or warming up); retry shortly")
        if self.active >= self.settings.max_streams:
            raise ResourceExhausted(
                f"stt_svc is at its stream limit ({self.settings.max_streams} streams, VOICEBOT_STT_MAX_STREAMS)"
            )
        self.active += 1
        try:
            requests = aiter(request_iterator)
            first = await anext(requests, None)
            if first is None:
                raise InvalidArgument("stream ended before its first message, the config")
            config, fmt = self._config(first)
            async for event in self.engine.recognize(config, self._audio(requests, fmt)):
                yield _response(event)
        finally:
            self.active -= 1

    def _config(self, request: pb.StreamingRecognizeRequest) -> tuple[StreamConfig, audio.PcmFormat]:
        if request.WhichOneof("streaming_request") != "config":
            raise InvalidArgument("the first message must carry config (audio_format, ...); it carried audio")
        c = request.config
        if not c.HasField("audio_format"):
            raise InvalidArgument("config.audio_format is required")
        fmt = audio.validate_format(
            c.audio_format, linear16_rates=LINEAR16_RATES, mulaw_rates=MULAW_RATES, field="config.audio_format"
        )
        code = c.language_code or DEFAULT_LANGUAGE
        language = code.split("-")[0].lower()
        if language not in self.engine.languages:
            supported = ", ".join(self.engine.languages[:10])
            raise InvalidArgument(f"config.language_code {code!r} is not supported by the loaded model ({supported})")
        endpointing = _in_range(
            "config.endpointing_silence_ms",
            c.endpointing_silence_ms,
            ENDPOINTING_MS,
            self.settings.endpointing_silence_ms,
        )
        max_utterance = _in_range(
            "config.max_utterance_ms", c.max_utterance_ms, MAX_UTTERANCE_MS, self.settings.max_utterance_ms
        )
        if len(c.phrase_hints) > MAX_HINTS:
            raise InvalidArgument(f"config.phrase_hints has {len(c.phrase_hints)} entries; at most {MAX_HINTS}")
        for i, hint in enumerate(c.phrase_hints):
            if len(hint) > MAX_HINT_CHARS:
                raise InvalidArgument(
                    f"config.phrase_hints[{i}] is {len(hint)} characters long; at most {MAX_HINT_CHARS}"
                )
        hints = tuple(hint.strip() for hint in c.phrase_hints if hint.strip())
        config = StreamConfig(
            language=language,
            interim_results=c.interim_results,
            endpointing_silence_ms=endpointing,
            max_utterance_ms=max_utterance,
            phrase_hints=hints,
        )
        return config, fmt

    async def _audio(
        self, requests: AsyncIterator[pb.StreamingRecognizeRequest], fmt: audio.PcmFormat
    ) -> AsyncIterator[np.ndarray]:
        resampler = audio.Resampler(fmt.sample_rate_hertz, SAMPLE_RATE)
        limit_s = self.settings.max_stream_s
        limit_bytes = fmt.bytes_for_ms(limit_s * 1000)
        received = 0
        async for request in requests:
            kind = request.WhichOneof("streaming_request")
            if kind == "config":
                raise InvalidArgument("config may only be sent in the first message; this stream already has one")
            if kind is None:
                raise InvalidArgument("message carries neither config nor audio")
            data = request.audio
            if not data:
                raise InvalidArgument("audio message is empty; send 1 byte to 64 KiB")
            if len(data) > MAX_AUDIO_BYTES:
                raise ResourceExhausted(f"audio message of {len(data)} bytes is over the 64 KiB (65536-byte) limit")
            received += len(data)
            if received > limit_bytes:
                raise ResourceExhausted(
                    f"stream is over its maximum duration of {limit_s:g} s of audio (VOICEBOT_STT_MAX_STREAM_S)"
                )
            samples = resampler.process(audio.decode(data, fmt))
            if samples.size:
                yield samples
        tail = resampler.flush()
        if tail.size:
            yield tail


def _in_range(name: str, value: int, bounds: tuple[int, int], default: int) -> int:
    if value == 0:
        return default
    low, high = bounds
    if not low <= value <= high:
        raise InvalidArgument(f"{name} must be {low}-{high} (or 0 for the default {default}), got {value}")
    return value


def _response(event: SttEvent) -> pb.StreamingRecognizeResponse:
    if isinstance(event, SpeechStarted | SpeechEnded):
        kind = (
            pb.SPEECH_EVENT_TYPE_SPEECH_STARTED
            if isinstance(event, SpeechStarted)
            else pb.SPEECH_EVENT_TYPE_SPEECH_ENDED
        )
        return pb.StreamingRecognizeResponse(
            speech_event=pb.SpeechEvent(type=kind, offset_ms=event.offset_ms, utterance_index=event.utterance_index)
        )
    if isinstance(event, InterimResult):
        result = pb.RecognitionResult(
            transcript=event.transcript,
            is_final=False,
            stable_text=event.stable_text,
            unstable_text=event.unstable_text,
            stability=event.stability,
            start_offset_ms=event.start_ms,
            end_offset_ms=event.end_ms,
            utterance_index=event.utterance_index,
            compute_ms=event.compute_ms,
        )
        return pb.StreamingRecognizeResponse(result=result)
    final: FinalResult = event
    words = [
        pb.WordInfo(word=w.word, start_offset_ms=w.start_ms, end_offset_ms=w.end_ms, confidence=w.confidence)
        for w in final.words
    ]
    result = pb.RecognitionResult(
        transcript=final.transcript,
        is_final=True,
        confidence=final.confidence,
        words=words,
        start_offset_ms=final.start_ms,
        end_offset_ms=final.end_ms,
        utterance_index=final.utterance_index,
        compute_ms=final.compute_ms,
    )
    return pb.StreamingRecognizeResponse(result=result)
