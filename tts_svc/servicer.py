"""TtsService over gRPC: protobuf <-> domain types, validation, delegation to ``Synthesizer``."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import grpc

from mesh.audio import LINEAR16, MULAW, PcmFormat, validate_format
from mesh.errors import InvalidArgument, NotFound, Unavailable
from tts_svc.engine import TtsEngine, Voice
from tts_svc.stream import MAX_TEXT_CHARS, AudioChunk, Event, Flush, StreamConfig, Synthesizer, TextDelta
from voicebot.v1 import audio_pb2, tts_service_pb2, tts_service_pb2_grpc

LINEAR16_RATES = (8000, 16000, 22050, 24000)
MULAW_RATES = (8000,)
SPEED_RANGE = (0.5, 2.0)
CHUNK_MS_RANGE = (20, 100)


class TtsServicer(tts_service_pb2_grpc.TtsServiceServicer):
    """Validates requests and hands streams to the synthesizer."""

    def __init__(self, engine: TtsEngine, synthesizer: Synthesizer, default_max_chunk_ms: int) -> None:
        """Serve ``engine``'s voices; RPCs answer UNAVAILABLE until ``ready`` is set."""
        self.engine = engine
        self.synthesizer = synthesizer
        self.default_max_chunk_ms = default_max_chunk_ms
        self.ready = False

    async def StreamingSynthesize(
        self,
        request_iterator: AsyncIterator[tts_service_pb2.StreamingSynthesizeRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[tts_service_pb2.StreamingSynthesizeResponse]:
        """Speak a stream of text deltas; see the proto for the contract."""
        self._require_ready()
        first = await anext(request_iterator, None)
        if first is None:
            return
        kind = first.WhichOneof("streaming_request")
        if kind != "config":
            raise InvalidArgument(
                f"the first request must carry config; got {kind or 'an empty request'} before config"
            )
        config = self._config(first.config)
        audio_format = config.output.to_proto()
        async for chunk in self.synthesizer.stream(config, _events(request_iterator)):
            yield _response(chunk, audio_format)

    async def ListVoices(
        self, request: tts_service_pb2.ListVoicesRequest, context: grpc.aio.ServicerContext
    ) -> tts_service_pb2.ListVoicesResponse:
        """List the engine's voices, default first, optionally by language prefix."""
        self._require_ready()
        prefix = request.language_code.lower()
        return tts_service_pb2.ListVoicesResponse(
            voices=[
                tts_service_pb2.Voice(
                    name=v.name,
                    language_code=v.language_code,
                    sample_rate_hertz=v.sample_rate_hertz,
                    engine=v.engine,
                    description=v.description,
                )
                for v in self.engine.voices
                if v.language_code.lower().startswith(prefix)
            ]
        )

    def _require_ready(self) -> None:
        if not self.ready:
            raise Unavailable("tts engine is still loading; retry when health reports SERVING")

    def _config(self, config: tts_service_pb2.SynthesisConfig) -> StreamConfig:
        voice = self._voice(config.voice)
        speed = config.speed or 1.0
        low, high = SPEED_RANGE
        if not (math.isfinite(speed) and low <= speed <= high):
            raise InvalidArgument(f"config.speed must be between {low} and {high} (0 means 1.0); got {config.speed:g}")
        max_chunk_ms = config.max_chunk_ms or self.default_max_chunk_ms
        low_ms, high_ms = CHUNK_MS_RANGE
        if not low_ms <= max_chunk_ms <= high_ms:
            raise InvalidArgument(
                f"config.max_chunk_ms must be between {low_ms} and {high_ms} "
                f"(0 means {self.default_max_chunk_ms}); got {config.max_chunk_ms}"
            )
        return StreamConfig(voice, _output_format(config, voice), speed, max_chunk_ms)

    def _voice(self, name: str) -> Voice:
        voices = self.engine.voices
        if not name:
            return voices[0]
        for voice in voices:
            if voice.name == name:
                return voice
        known = ", ".join(v.name for v in voices)
        raise NotFound(f"config.voice {name!r} not found on engine {self.engine.name}; voices: {known}")


def _output_format(config: tts_service_pb2.SynthesisConfig, voice: Voice) -> PcmFormat:
    """The requested format; unset means LINEAR16 mono at the voice's rate, rate 0 the encoding's default."""
    fmt = config.output_format
    if not config.HasField("output_format") or fmt == audio_pb2.AudioFormat():
        return PcmFormat(LINEAR16, voice.sample_rate_hertz)
    if fmt.sample_rate_hertz == 0 and fmt.encoding in (LINEAR16, MULAW):
        rate = voice.sample_rate_hertz if fmt.encoding == LINEAR16 else MULAW_RATES[0]
        fmt = audio_pb2.AudioFormat(encoding=fmt.encoding, sample_rate_hertz=rate, channels=fmt.channels)
    rates = tuple(sorted({*LINEAR16_RATES, voice.sample_rate_hertz}))
    return validate_format(
        fmt, linear16_rates=rates, mulaw_rates=MULAW_RATES, max_channels=1, field="config.output_format"
    )


async def _events(requests: AsyncIterator[tts_service_pb2.StreamingSynthesizeRequest]) -> AsyncIterator[Event]:
    """The requests after the config, checked and turned into domain events."""
    async for request in requests:
        kind = request.WhichOneof("streaming_request")
        if kind == "text":
            if not 1 <= len(request.text) <= MAX_TEXT_CHARS:
                got = "an empty text" if not request.text else f"{len(request.text)} characters"
                raise InvalidArgument(f"text must be 1-{MAX_TEXT_CHARS} characters per request; got {got}")
            yield TextDelta(request.text)
        elif kind == "flush":
            if not request.flush:
                raise InvalidArgument("flush must be true when set")
            yield Flush()
        elif kind == "config":
            raise InvalidArgument("config may only be sent once, in the first request; got a second config")
        else:
            raise InvalidArgument("request carries none of config, text or flush")


def _response(chunk: AudioChunk, audio_format: audio_pb2.AudioFormat) -> tts_service_pb2.StreamingSynthesizeResponse:
    return tts_service_pb2.StreamingSynthesizeResponse(
        audio=chunk.audio,
        audio_format=audio_format,
        segment_id=chunk.segment_id,
        segment_text=chunk.segment_text,
        chunk_index=chunk.chunk_index,
        offset_ms=chunk.offset_ms,
        duration_ms=chunk.duration_ms,
        segment_end=chunk.segment_end,
        compute_ms=chunk.compute_ms,
    )
