"""Placing a call: the client side of ``Converse``, for the CLI, the demo, tests and benchmarks.

``place_call`` streams caller audio in 20 ms frames (at real-time pace, or as fast as the mesh
takes it) or typed turns, collects everything the bot sends, and hangs up once the conversation
has gone quiet. A client that does not play audio in real time acknowledges each chunk with
``playback_position_ms``, so barge-in knows that nothing is still "playing".
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mesh import audio
from voicebot.v1 import analytics_service_pb2, audio_pb2, orchestrator_service_pb2_grpc
from voicebot.v1 import orchestrator_service_pb2 as pb

FRAME_MS = 20
CALLER_RATE = 16000


@dataclass
class CallRecord:
    """What happened in a call, from the caller's side."""

    session_id: str = ""
    conversation: list[tuple[str, str]] = field(default_factory=list)
    latencies: list[tuple[int, analytics_service_pb2.TurnLatency]] = field(default_factory=list)
    events: list[pb.CallEvent] = field(default_factory=list)
    bot_audio: bytearray = field(default_factory=bytearray)
    bot_format: audio.PcmFormat | None = None
    responses: int = 0

    def event_types(self) -> list[str]:
        """Names of the events received, in order (without the CALL_EVENT_TYPE_ prefix)."""
        return [pb.CallEventType.Name(e.type).removeprefix("CALL_EVENT_TYPE_") for e in self.events]

    @property
    def bot_text(self) -> str:
        """Everything the bot said, joined."""
        return " ".join(text for who, text in self.conversation if who == "bot")


def load_wav(path: str) -> np.ndarray:
    """A WAV file (PCM 8/16/24/32-bit, any rate, any channels) as 16 kHz mono float32."""
    import wave

    with wave.open(path, "rb") as wav:
        width, channels, rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
        raw = wav.readframes(wav.getnframes())
    if width == 1:
        samples = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128) / 128
    elif width == 2:
        samples = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768
    elif width == 3:
        as_bytes = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
        ints = (
            as_bytes[:, 0].astype(np.int32)
            | (as_bytes[:, 1].astype(np.int32) << 8)
            | (as_bytes[:, 2].astype(np.int32) << 16)
        )
        samples = ((ints << 8) >> 8).astype(np.float32) / 8388608
    else:
        samples = np.frombuffer(raw, dtype="<i4").astype(np.float32) / 2147483648
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return audio.resample(samples, rate, CALLER_RATE)


def write_wav(path: str, data: bytes, fmt: audio.PcmFormat) -> None:
    """Write wire audio to a 16-bit PCM WAV file (mu-law is decoded first)."""
    import wave

    pcm = (
        data
        if fmt.encoding == audio.LINEAR16
        else audio.encode(audio.decode(data, fmt), audio.PcmFormat(audio.LINEAR16, fmt.sample_rate_hertz))
    )
    with wave.open(path, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(fmt.sample_rate_hertz)
        wav.writeframes(pcm)


def caller_format(telephony: bool = False) -> audio_pb2.AudioFormat:
    """16 kHz mono LINEAR16, or with ``telephony`` 8 kHz mu-law as contact centres send it."""
    if telephony:
        return audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_MULAW, sample_rate_hertz=8000, channels=1)
    return audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_LINEAR16, sample_rate_hertz=CALLER_RATE, channels=1)


class _Conversation:
    """Tracks what the bot is doing, from the responses."""

    def __init__(self, record: CallRecord, on_response: Callable[[pb.ConverseResponse], None] | None) -> None:
        self.record = record
        self.on_response = on_response
        self.open_turns = 0
        self.speaking = False
        self.last_activity = time.monotonic()
        self.ended = asyncio.Event()
        self.turn_ended = asyncio.Event()
        self.started = asyncio.Event()
        self.acks: asyncio.Queue[int] = asyncio.Queue()
        self.bot_line = ""
        self.playback_until = 0.0
        self._speaker_started = 0.0

    def take(self, response: pb.ConverseResponse, ack: bool) -> None:
        record = self.record
        record.responses += 1
        self.last_activity = time.monotonic()
        if self.on_response is not None:
            self.on_response(response)
        kind = response.WhichOneof("output")
        if kind == "transcript" and response.transcript.is_final:
            self._flush_bot()
            record.conversation.append(("caller", response.transcript.text))
        elif kind == "bot_text":
            self.bot_line += response.bot_text.delta
        elif kind == "bot_audio":
            chunk = response.bot_audio
            record.bot_audio += chunk.audio
            record.bot_format = audio.PcmFormat(chunk.audio_format.encoding, chunk.audio_format.sample_rate_hertz)
            if ack:
                self.acks.put_nowait(chunk.offset_ms + chunk.duration_ms)
            elif chunk.offset_ms == 0 or not self._speaker_started:
                self._speaker_started = time.monotonic()
            if not ack:  # a real-time caller hears the audio until its end
                end = self._speaker_started + (chunk.offset_ms + chunk.duration_ms) / 1000
                self.playback_until = max(self.playback_until, end)
        elif kind == "latency":
            record.latencies.append((response.turn_index, response.latency))
        elif kind == "event":
            self._event(response.event)

    def _flush_bot(self) -> None:
        if self.bot_line.strip():
            self.record.conversation.append(("bot", self.bot_line.strip()))
        self.bot_line = ""

    def _event(self, event: pb.CallEvent) -> None:
        self.record.events.append(event)
        kind = event.type
        if kind in (pb.CALL_EVENT_TYPE_SESSION_STARTED, pb.CALL_EVENT_TYPE_SESSION_RESUMED):
            self.record.session_id = event.session_id
            self.started.set()
        elif kind == pb.CALL_EVENT_TYPE_SPEECH_STARTED:
            self.speaking = True
        elif kind == pb.CALL_EVENT_TYPE_SPEECH_ENDED:
            self.speaking = False
        elif kind == pb.CALL_EVENT_TYPE_TURN_STARTED:
            self._flush_bot()
            self.open_turns += 1
        elif kind == pb.CALL_EVENT_TYPE_TURN_ENDED:
            self.open_turns = max(0, self.open_turns - 1)
            self._flush_bot()
            self.turn_ended.set()
        elif kind == pb.CALL_EVENT_TYPE_CALL_ENDED:
            self._flush_bot()
            self.ended.set()

    async def quiet(self, settle_s: float, max_wait_s: float) -> None:
        """Wait until no turn is open, the caller is not speaking, and nothing arrived for ``settle_s``."""
        deadline = time.monotonic() + max_wait_s
        while time.monotonic() < deadline and not self.ended.is_set():
            now = time.monotonic()
            idle = now - self.last_activity
            if self.open_turns == 0 and not self.speaking and idle >= settle_s and now >= self.playback_until:
                return
            await asyncio.sleep(0.05)


async def place_call(
    stub: orchestrator_service_pb2_grpc.OrchestratorServiceStub,
    config: pb.SessionConfig,
    *,
    caller_audio: np.ndarray | Sequence[np.ndarray] | None = None,
    texts: Sequence[str] = (),
    realtime: bool = True,
    trailing_silence_ms: int = 1500,
    settle_s: float = 1.5,
    max_wait_s: float = 60.0,
    hang_up: bool = True,
    on_response: Callable[[pb.ConverseResponse], None] | None = None,
    timeout_s: float = 600.0,
    before_utterance: Callable[[int], Awaitable[None]] | None = None,
) -> CallRecord:
    """Run one call and return its record.

    ``caller_audio`` is 16 kHz mono float32 (see ``load_wav``), or a list of utterances each sent
    once the bot has finished answering the one before, sent in ``config.input_format``
    (``caller_format()`` or any other the orchestrator accepts); ``texts`` are typed turns, each
    sent once the previous answer ended.
    With ``realtime`` the audio is paced at 20 ms per frame and playback is left to the bot's
    own clock; otherwise frames go as fast as the mesh takes them and each audio chunk is
    acknowledged as played. ``before_utterance(i)``, when given, is awaited before utterance ``i``
    is sent (a test holds the caller back until it has broken or restored something).
    """
    record = CallRecord()
    talk = _Conversation(record, on_response)
    outbox: asyncio.Queue[pb.ConverseRequest | None] = asyncio.Queue(maxsize=64)
    ack = not realtime

    async def requests() -> AsyncIterator[pb.ConverseRequest]:
        yield pb.ConverseRequest(config=config)
        while (request := await outbox.get()) is not None:
            yield request

    async def send_acks() -> None:
        while True:
            position = await talk.acks.get()
            await outbox.put(pb.ConverseRequest(control=pb.CallControl(playback_position_ms=position)))

    async def script() -> None:
        await talk.started.wait()
        await talk.quiet(settle_s=0.3 if not realtime else settle_s, max_wait_s=max_wait_s)
        utterances = [caller_audio] if isinstance(caller_audio, np.ndarray) else list(caller_audio or [])
        silence = np.zeros(CALLER_RATE * trailing_silence_ms // 1000, dtype=np.float32)
        wire = config.input_format
        fmt = audio.PcmFormat(wire.encoding, wire.sample_rate_hertz, wire.channels or 1)
        for number, utterance in enumerate(utterances):
            if before_utterance is not None:
                await before_utterance(number)
            samples = audio.resample(np.concatenate([utterance, silence]), CALLER_RATE, fmt.sample_rate_hertz)
            frames = audio.split_chunks(audio.encode(samples, fmt), fmt, FRAME_MS)
            started = time.monotonic()
            for index, frame in enumerate(frames):
                if talk.ended.is_set():
                    return
                await outbox.put(pb.ConverseRequest(audio=frame))
                if realtime:
                    await asyncio.sleep(max(0.0, started + (index + 1) * FRAME_MS / 1000 - time.monotonic()))
            await talk.quiet(settle_s, max_wait_s)
        for text in texts:
            if talk.ended.is_set():
                return
            talk.turn_ended.clear()
            await outbox.put(pb.ConverseRequest(control=pb.CallControl(text=text)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(talk.turn_ended.wait(), max_wait_s)
            await talk.quiet(0.2 if not realtime else settle_s, max_wait_s)
        if hang_up:
            await outbox.put(pb.ConverseRequest(control=pb.CallControl(hang_up=pb.HangUp(reason="caller done"))))

    call = stub.Converse(requests(), timeout=timeout_s)
    helpers = [asyncio.create_task(script())]
    if ack:
        helpers.append(asyncio.create_task(send_acks()))
    try:
        async for response in call:
            talk.take(response, ack)
    finally:
        for task in helpers:
            task.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
        await outbox.put(None)
    return record
