"""One call: the caller's stream in, transcripts, answers and audio out, and everything between.

A ``Call`` runs four things at once: a reader of the caller's stream (audio to stt_svc, control
messages), one ``StreamingRecognize`` stream to stt_svc (reconnected if it breaks), the turn in
progress, and a keeper that renews the session's lease and ends idle calls. Everything the
caller receives goes through one bounded queue, so a slow caller slows the bot down instead of
growing memory.

Barge-in: while bot audio is playing (an answer, also one whose synthesis already finished, or
a fixed prompt such as the greeting), caller speech that lasts at least the barge-in threshold
and holds a word that is not a backchannel ("mhm", "okay") stops it: the turn still generating
is cancelled with its model and synthesis streams, audio still queued for the caller is
dropped, and the caller is told where playback stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc

from mesh import audio
from mesh.errors import InvalidArgument, MeshError, ResourceExhausted
from mesh.pii import redact
from orchestrator.config import OrchestratorSettings
from orchestrator.deps import Dependencies
from orchestrator.events import EventSink, new_event
from orchestrator.metrics import BARGE_IN_SECONDS, FRAME_FORWARD_SECONDS
from orchestrator.prefetch import CachePrefetch
from orchestrator.prompts import APOLOGY, GREETING, PromptCache
from orchestrator.sessions import SessionState, SessionStore
from orchestrator.speaker import Speaker
from orchestrator.turn import (
    END_CALL_ACTION,
    TRANSFER_ACTION,
    ToolRunner,
    Turn,
    TurnContext,
    TurnInput,
    cache_scope,
    may_cache,
)
from voicebot.v1 import analytics_service_pb2 as analytics_pb
from voicebot.v1 import llm_service_pb2, stt_service_pb2
from voicebot.v1 import orchestrator_service_pb2 as pb

log = logging.getLogger("orchestrator.call")

MAX_AUDIO_BYTES = 64 * 1024
_WORD = re.compile(r"[a-z']+(?:-[a-z']+)*")
_DTMF = re.compile(r"[0-9*#]{1,32}")

END_REASONS = {
    "hangup": analytics_pb.CALL_END_REASON_HANGUP,
    "transfer": analytics_pb.CALL_END_REASON_TRANSFER,
    "error": analytics_pb.CALL_END_REASON_ERROR,
    "timeout": analytics_pb.CALL_END_REASON_TIMEOUT,
    "admin": analytics_pb.CALL_END_REASON_ADMIN,
    "disconnected": analytics_pb.CALL_END_REASON_UNSPECIFIED,
    "draining": analytics_pb.CALL_END_REASON_UNSPECIFIED,
}
# CALL_ENDED detail of a call handed off because its replica shuts down; the session stays DETACHED.
DRAINING_DETAIL = "draining: this replica is shutting down; call again with session_id to resume"
# End reasons that leave the session resumable.
_RESUMABLE = frozenset({"disconnected", "draining"})
# Closings whose call stream is gone: held here so the event loop's weak reference is not the only one.
_CLOSING: set[asyncio.Task[None]] = set()


@dataclass(frozen=True)
class CallConfig:
    """A validated SessionConfig."""

    session_id: str
    caller_id: str
    language_code: str
    voice: str
    adapter: str
    tenant: str
    text_only: bool
    input_format: audio.PcmFormat | None
    output_format: audio.PcmFormat
    barge_in_min_speech_ms: int


@dataclass
class Runtime:
    """What every call on this replica shares."""

    settings: OrchestratorSettings
    deps: Dependencies
    store: SessionStore
    prompts: PromptCache
    tools: ToolRunner
    tool_definitions: list[llm_service_pb2.ToolDefinition]
    system_prompt: str
    events: EventSink
    calls: dict[str, Call] = field(default_factory=dict)
    draining: bool = False


def words(text: str) -> list[str]:
    """Lower-case words of a transcript."""
    return _WORD.findall(text.lower())


class Call:
    """Runs one Converse stream; see the module docstring."""

    def __init__(self, rt: Runtime, config: CallConfig, session: SessionState, resumed: bool) -> None:
        """Prepare the call; nothing runs until ``run``."""
        self.rt = rt
        self.config = config
        self.session = session
        self.resumed = resumed
        self.started_at = time.monotonic()
        self.out: asyncio.Queue[pb.ConverseResponse | None] = asyncio.Queue(maxsize=256)
        self.audio_q: asyncio.Queue[tuple[bytes, float] | None] = asyncio.Queue(maxsize=100)
        self.ended = asyncio.Event()
        self.end_reason = ""
        self.error: MeshError | None = None
        self.turn_index = session.turn_count
        self.turn_task: asyncio.Task[None] | None = None
        self.speaker: Speaker | None = None
        self.audio_in_ms = 0.0
        self.offsets: deque[tuple[float, float]] = deque(maxlen=6000)
        self.audio_sent_ms = 0.0
        self.stt_base_ms = 0.0
        self.speech_start_ms: float | None = None
        self.speech_end_at: float | None = None
        self.last_input = time.monotonic()
        self.dropped_audio = 0
        self.hung_up = False
        self._close_task: asyncio.Task[None] | None = None
        scope = cache_scope(config.tenant, config.language_code)
        self.prefetch = CachePrefetch(rt.deps.cache, scope, rt.settings.cache_timeout_s)

    # --- output -------------------------------------------------------------------------

    async def emit(self, response: pb.ConverseResponse) -> None:
        """Queue a response for the caller (waits while the caller is slow)."""
        await self.out.put(response)

    async def event(self, kind: int, **fields: Any) -> None:
        """Queue a call event."""
        event = pb.CallEvent(type=kind, session_id=self.session.session_id, **fields)  # type: ignore[arg-type]
        await self.emit(pb.ConverseResponse(turn_index=self.turn_index, event=event))

    def analytics(self, **detail: Any) -> None:
        """Send an analytics event (redacted by the caller of this method)."""
        self.rt.events.emit(new_event(self.session.session_id, **detail))

    # --- life cycle ---------------------------------------------------------------------

    async def run(self, requests: AsyncIterator[pb.ConverseRequest]) -> AsyncIterator[pb.ConverseResponse]:
        """Run the call, yielding what the caller receives; ends with CALL_ENDED."""
        main = asyncio.create_task(self._main(requests), name=f"call-{self.session.session_id}")
        try:
            while (item := await self.out.get()) is not None:
                yield item
            if self.error is not None:
                raise self.error
        finally:
            # The caller went away (or the stream ended): stop the call's work, then close it. The
            # closing itself is never cancelled (see ``_closing``), so the session is always released.
            if not main.done():
                self.end("disconnected")
                main.cancel()
            await asyncio.wait({main})
            await asyncio.wait({self._closing()})
            if not main.cancelled() and (error := main.exception()) is not None:
                raise error

    def end(self, reason: str) -> None:
        """End the call for ``reason`` (the first reason wins)."""
        if not self.end_reason:
            self.end_reason = reason
        self.ended.set()

    def at_turn_boundary(self) -> bool:
        """True when no turn is in progress and the caller is not in the middle of an utterance."""
        idle = self.turn_task is None or self.turn_task.done() or self.turn_task is asyncio.current_task()
        return idle and self.speech_start_ms is None

    def hand_off(self) -> None:
        """The replica is draining: end the call now if between turns, else once the turn in progress ends."""
        if self.at_turn_boundary():
            self.end("draining")

    async def _main(self, requests: AsyncIterator[pb.ConverseRequest]) -> None:
        kind = pb.CALL_EVENT_TYPE_SESSION_RESUMED if self.resumed else pb.CALL_EVENT_TYPE_SESSION_STARTED
        tasks = [
            asyncio.create_task(self._read(requests), name="caller-reader"),
            asyncio.create_task(self._keep(), name="session-keeper"),
        ]
        try:
            await self.event(kind)
            if not self.resumed:
                self.analytics(
                    call_started=analytics_pb.CallStarted(
                        caller_id=self.session.masked_caller_id,
                        language_code=self.config.language_code,
                        voice=self.config.voice,
                        adapter=self.config.adapter,
                        tenant=self.config.tenant,
                    )
                )
            if not self.config.text_only:
                tasks.append(asyncio.create_task(self._listen(), name="stt-stream"))
            if not self.resumed:
                await self._say_fixed(GREETING)
            await self.ended.wait()
        finally:
            self.prefetch.cancel()
            for task in [*tasks, self.turn_task]:
                if task is not None and not task.done():
                    task.cancel()
            await asyncio.gather(*(t for t in [*tasks, self.turn_task] if t is not None), return_exceptions=True)
            await asyncio.shield(self._closing())

    def _closing(self) -> asyncio.Task[None]:
        """The task that closes the call, started on first use.

        It runs to the end even when the call's stream is cancelled midway (a caller that cancels
        while the call is ending): a release cut short would leave the session ACTIVE for ever.
        """
        if self._close_task is None:
            self._close_task = asyncio.create_task(self._close(), name=f"close-{self.session.session_id}")
            _CLOSING.add(self._close_task)
            self._close_task.add_done_callback(_CLOSING.discard)
        return self._close_task

    async def _close(self) -> None:
        reason = self.end_reason or "hangup"
        ended = reason not in _RESUMABLE
        try:
            await self.rt.store.release(self.session, ended=ended)
        except MeshError as exc:
            log.warning("session %s not released: %s", self.session.session_id, exc)
        self.rt.calls.pop(self.session.session_id, None)
        self.analytics(
            call_ended=analytics_pb.CallEnded(
                reason=END_REASONS.get(reason, analytics_pb.CALL_END_REASON_UNSPECIFIED),
                duration_ms=int((time.monotonic() - self.started_at) * 1000),
                turn_count=self.session.turn_count,
            )
        )
        detail = DRAINING_DETAIL if reason == "draining" else reason
        event = pb.CallEvent(type=pb.CALL_EVENT_TYPE_CALL_ENDED, session_id=self.session.session_id, detail=detail)
        for item in (pb.ConverseResponse(turn_index=self.turn_index, event=event), None):
            with contextlib.suppress(asyncio.QueueFull):
                self.out.put_nowait(item)
        if self.out.full():  # the caller stopped reading; make sure the stream still ends
            with contextlib.suppress(asyncio.QueueEmpty):
                self.out.get_nowait()
            self.out.put_nowait(None)

    async def _keep(self) -> None:
        """Renew the session lease; end the call when it was ended elsewhere, idle, or too long."""
        settings = self.rt.settings
        while True:
            await asyncio.sleep(min(5.0, settings.lease_s / 3))
            try:
                if not await self.rt.store.save(self.session, settings.replica):
                    self.end("admin")
                    return
            except MeshError as exc:
                log.warning("session store: %s", exc)
            now = time.monotonic()
            if now - self.last_input > settings.idle_timeout_s:
                self.end("timeout")
            if now - self.started_at > settings.max_call_s:
                self.end("timeout")

    # --- caller input -------------------------------------------------------------------

    async def _read(self, requests: AsyncIterator[pb.ConverseRequest]) -> None:
        """Read the caller's stream; on hang-up or half-close, let the turn in progress finish first."""
        try:
            async for request in requests:
                self.last_input = time.monotonic()
                kind = request.WhichOneof("streaming_request")
                if kind == "audio":
                    self._audio(request.audio)
                elif kind == "control":
                    if request.control.WhichOneof("action") == "hang_up":
                        self.hung_up = True
                        break
                    await self._control(request.control)
                elif kind == "config":
                    raise InvalidArgument("config may only be sent in the first message")
                else:
                    raise InvalidArgument("empty ConverseRequest: set audio or control")
            if self.turn_task is not None and not self.turn_task.done():
                await asyncio.wait(
                    {self.turn_task}, timeout=self.rt.settings.llm_timeout_s + self.rt.settings.tts_timeout_s
                )
            self.end("hangup" if self.hung_up else "disconnected")
        except MeshError as exc:
            self.error = exc
            self.end("error")
        finally:
            with contextlib.suppress(asyncio.QueueFull):
                self.audio_q.put_nowait(None)

    def _audio(self, data: bytes) -> None:
        fmt = self.config.input_format
        if fmt is None:
            raise InvalidArgument("this call is text_only: send control.text, not audio")
        if len(data) > MAX_AUDIO_BYTES:
            raise ResourceExhausted(f"audio message of {len(data)} bytes is over the 65536-byte limit")
        if len(data) % fmt.bytes_per_frame:
            raise InvalidArgument(
                f"audio chunk of {len(data)} bytes is not a whole number of {fmt.bytes_per_frame}-byte samples"
            )
        self.audio_in_ms += fmt.duration_ms(len(data))
        now = time.monotonic()
        self.offsets.append((self.audio_in_ms, now))
        try:
            self.audio_q.put_nowait((data, now))
        except asyncio.QueueFull:
            # stt_svc is down or behind: keep the caller's stream flowing and drop this frame.
            self.dropped_audio += 1

    async def _control(self, control: pb.CallControl) -> None:
        kind = control.WhichOneof("action")
        if kind == "text":
            if not 1 <= len(control.text) <= 1024:
                raise InvalidArgument("control.text must be 1-1024 characters")
            now = time.monotonic()
            await self._caller_said(control.text, TurnInput(control.text, now, now))
        elif kind == "dtmf":
            if not _DTMF.fullmatch(control.dtmf):
                raise InvalidArgument("control.dtmf must be 1-32 of 0-9, * and #")
            now = time.monotonic()
            await self._caller_said(control.dtmf, TurnInput(" ".join(control.dtmf), now, now))
        elif kind == "playback_position_ms":
            if self.speaker is not None:
                self.speaker.report_playback(control.playback_position_ms)
        else:
            raise InvalidArgument("empty CallControl: set hang_up, text, dtmf or playback_position_ms")

    # --- speech-to-text -----------------------------------------------------------------

    async def _stt_requests(self) -> AsyncIterator[stt_service_pb2.StreamingRecognizeRequest]:
        assert self.config.input_format is not None
        config = stt_service_pb2.RecognitionConfig(
            audio_format=self.config.input_format.to_proto(),
            language_code=self.config.language_code,
            interim_results=True,
        )
        yield stt_service_pb2.StreamingRecognizeRequest(config=config)
        ended = False
        carry: tuple[bytes, float] | None = None
        while not ended:
            first = carry if carry is not None else await self.audio_q.get()
            if first is None:
                return
            # Frames that queued up while the previous message was being written go as one message:
            # fewer, larger writes when the stream is behind, no added delay when it keeps up.
            batch, size, carry = [first], len(first[0]), None
            while not self.audio_q.empty():
                queued = self.audio_q.get_nowait()
                if queued is None:
                    ended = True
                    break
                if size + len(queued[0]) > MAX_AUDIO_BYTES:
                    carry = queued
                    break
                batch.append(queued)
                size += len(queued[0])
            now = time.monotonic()
            for _, received_at in batch:
                FRAME_FORWARD_SECONDS.observe(now - received_at)
            self.audio_sent_ms += self.config.input_format.duration_ms(size)
            yield stt_service_pb2.StreamingRecognizeRequest(audio=b"".join(chunk for chunk, _ in batch))

    async def _listen(self) -> None:
        """Keep a recognition stream open for the whole call, reconnecting when it breaks.

        An outage is reported once (an ERROR event, and the apology when the bot is silent); the
        reconnection attempts that follow stay quiet until recognition answers again.
        """
        backoff = 0.2
        outage = False
        while not self.ended.is_set():
            # A new stream's offsets start at 0 with the first chunk it is sent.
            self.stt_base_ms = self.audio_sent_ms
            remaining = max(1.0, self.rt.settings.max_call_s - (time.monotonic() - self.started_at))
            try:
                async for reply in self.rt.deps.stt.StreamingRecognize(self._stt_requests(), timeout=remaining):
                    outage, backoff = False, 0.2
                    await self._heard(reply)
                return
            except grpc.aio.AioRpcError as exc:
                if self.ended.is_set():
                    return
                log.warning("stt stream failed: %s %s", exc.code().name, exc.details())
                if not outage:
                    outage = True
                    await self._stt_outage(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    async def _stt_outage(self, exc: grpc.aio.AioRpcError) -> None:
        await self.event(
            pb.CALL_EVENT_TYPE_ERROR, code=exc.code().name, service="stt", detail="speech recognition failed"
        )
        self.analytics(
            call_error=analytics_pb.CallError(
                service="stt", code=exc.code().name, message=redact(exc.details() or ""), recovered=True
            )
        )
        if not self._bot_speaking():
            await self._say_fixed(APOLOGY, any_voice=True)

    def _wall_time_of(self, offset_ms: float) -> float:
        for end_ms, at in self.offsets:
            if end_ms >= offset_ms:
                return at
        return time.monotonic()

    async def _heard(self, reply: stt_service_pb2.StreamingRecognizeResponse) -> None:
        if reply.WhichOneof("streaming_response") == "speech_event":
            offset = self.stt_base_ms + reply.speech_event.offset_ms
            if reply.speech_event.type == stt_service_pb2.SPEECH_EVENT_TYPE_SPEECH_STARTED:
                self.speech_start_ms, self.speech_end_at = offset, None
                await self.event(pb.CALL_EVENT_TYPE_SPEECH_STARTED, offset_ms=int(offset))
            elif reply.speech_event.type == stt_service_pb2.SPEECH_EVENT_TYPE_SPEECH_ENDED:
                self.speech_end_at = self._wall_time_of(offset)
                await self.event(pb.CALL_EVENT_TYPE_SPEECH_ENDED, offset_ms=int(offset))
            return
        result = reply.result
        transcript = pb.Transcript(
            text=redact(result.transcript),
            is_final=result.is_final,
            stability=result.stability,
            confidence=result.confidence,
        )
        await self.emit(pb.ConverseResponse(turn_index=self.turn_index, transcript=transcript))
        if not result.is_final:
            await self._maybe_barge_in(result)
            if result.stability >= self.rt.settings.prefetch_stability and may_cache(self.session, result.transcript):
                self.prefetch.start(result.transcript)
            return
        speech_end_at = self.speech_end_at or self._wall_time_of(self.stt_base_ms + result.end_offset_ms)
        prefetched = self.prefetch.take(result.transcript)
        given = TurnInput(result.transcript, speech_end_at, time.monotonic(), result.compute_ms, prefetched)
        self.speech_start_ms = None
        await self._caller_said(result.transcript, given)

    # --- turns and barge-in --------------------------------------------------------------

    def _bot_speaking(self) -> bool:
        return self.speaker is not None and self.speaker.playing()

    def _substantive(self, text: str) -> bool:
        backchannel = set(self.rt.settings.backchannel_words)
        return any(word not in backchannel for word in words(text))

    async def _maybe_barge_in(self, result: stt_service_pb2.RecognitionResult) -> None:
        if self.speech_start_ms is None or not self._bot_speaking():
            return
        lasted = self.stt_base_ms + result.end_offset_ms - self.speech_start_ms
        if lasted >= self.config.barge_in_min_speech_ms and self._substantive(result.transcript):
            await self._barge_in()

    async def _barge_in(self) -> None:
        """Stop the bot mid-sentence and tell the caller where its playback stopped.

        The speaker stops sending, the turn in progress (if it is still generating) is cancelled
        with its model and synthesis streams, and its audio still queued for the caller is
        dropped. A turn that already sent all its audio (synthesis runs faster than playback)
        keeps its TURN_ENDED; its answer is marked interrupted in the history.
        """
        speaker = self.speaker
        if speaker is None or not speaker.playing():
            return
        decided = time.monotonic()
        position, index = speaker.playback_ms(), speaker.turn_index
        await speaker.cancel()
        task = self.turn_task
        if task is not None and not task.done():
            task.cancel()
            await _settle(task)
        elif self.session.messages and self.session.messages[-1].get("role") == "assistant":
            self.session.messages[-1]["content"] += " [interrupted]"
        self._drop_queued(index)
        event = pb.CallEvent(
            type=pb.CALL_EVENT_TYPE_BARGE_IN, session_id=self.session.session_id, playback_position_ms=position
        )
        await self.emit(pb.ConverseResponse(turn_index=index, event=event))
        BARGE_IN_SECONDS.observe(time.monotonic() - decided)
        self.analytics(barge_in=analytics_pb.BargeIn(turn_index=index, playback_position_ms=position))

    def _drop_queued(self, index: int) -> None:
        """Drop the bot text and audio of turn ``index`` still queued for the caller (it was interrupted)."""
        kept = []
        while not self.out.empty():
            item = self.out.get_nowait()
            if item is None or item.turn_index != index or item.WhichOneof("output") not in ("bot_audio", "bot_text"):
                kept.append(item)
        for item in kept:
            self.out.put_nowait(item)

    async def _caller_said(self, text: str, given: TurnInput) -> None:
        if self.ended.is_set() or (not words(text) and not given.text.strip()):
            return
        running = self.turn_task if self.turn_task is not None and not self.turn_task.done() else None
        if (running is not None or self._bot_speaking()) and not self._substantive(text):
            return  # a backchannel while the bot thinks or talks is not a turn
        if self._bot_speaking():
            await self._barge_in()
        elif running is not None:  # superseded before it spoke
            running.cancel()
            await _settle(running)
            self._drop_queued(self.turn_index)
        if self.ended.is_set():
            return  # a turn started now would outlive the call (and re-take its released session)
        self.turn_index = self.session.turn_count
        self.turn_task = asyncio.create_task(self._turn(given), name=f"turn-{self.turn_index}")

    def _turn_context(self) -> TurnContext:
        s = self.rt.settings
        return TurnContext(
            llm=self.rt.deps.llm,
            cache=self.rt.deps.cache,
            tools=self.rt.tools,
            tool_definitions=self.rt.tool_definitions,
            system_prompt=self.rt.system_prompt,
            prompts=self.rt.prompts,
            emit=self.emit,
            session=self.session,
            tenant=self.config.tenant,
            language_code=self.config.language_code,
            adapter=self.config.adapter,
            llm_timeout_s=s.llm_timeout_s,
            cache_timeout_s=s.cache_timeout_s,
            max_tool_rounds=s.max_tool_rounds,
            history_messages=s.history_messages,
            filler_after_ms=0 if self.config.text_only else s.filler_after_ms,
            voice=self.config.voice,
        )

    def _new_speaker(self, index: int) -> Speaker:
        """A speaker for the next bot audio; it becomes the one barge-in watches."""
        speaker = Speaker(
            self.rt.deps.tts,
            self.emit,
            index,
            self.config.voice,
            self.config.output_format,
            self.rt.settings.tts_timeout_s,
        )
        if not self.config.text_only:
            self.speaker = speaker
        return speaker

    async def _turn(self, given: TurnInput) -> None:
        index = self.turn_index
        speaker = self._new_speaker(index)
        turn = Turn(self._turn_context(), speaker if not self.config.text_only else _Mute(speaker), index, given)
        interrupted = True
        try:
            result = await turn.run()
            interrupted = False
        finally:
            if interrupted and turn.result.answer:
                self.session.messages.append({"role": "assistant", "content": turn.result.answer + " [interrupted]"})
            self._report_turn(turn, given, interrupted)
            if interrupted:
                event = pb.CallEvent(
                    type=pb.CALL_EVENT_TYPE_TURN_ENDED, session_id=self.session.session_id, detail="interrupted"
                )
                with contextlib.suppress(asyncio.QueueFull):
                    self.out.put_nowait(pb.ConverseResponse(turn_index=index, event=event))
        # The turn is durable before the caller hears it ended: a replica dying right after
        # TURN_ENDED must not lose it (another replica resumes from the store).
        with contextlib.suppress(MeshError):
            await self.rt.store.save(self.session, self.rt.settings.replica)
        await self.emit(pb.ConverseResponse(turn_index=index, latency=result.latency))
        await self.event(pb.CALL_EVENT_TYPE_TURN_ENDED)
        if result.action == TRANSFER_ACTION:
            await self.event(
                pb.CALL_EVENT_TYPE_AGENT_TRANSFER, detail=result.action_detail or "caller asked for an agent"
            )
            self.analytics(agent_transfer=analytics_pb.AgentTransfer(reason=result.action_detail, turn_index=index))
            self.end("transfer")
        elif result.action == END_CALL_ACTION:
            self.end("hangup")
        elif self.rt.draining and self.at_turn_boundary():
            self.end("draining")

    def _report_turn(self, turn: Turn, given: TurnInput, interrupted: bool) -> None:
        """Session bookkeeping and analytics for a finished or interrupted turn."""
        result = turn.result
        self.session.turn_count = max(self.session.turn_count, turn.index + 1)
        self.session.last_intent = result.intent or self.session.last_intent
        self.analytics(
            turn_completed=analytics_pb.TurnCompleted(
                turn_index=turn.index,
                transcript=redact(given.text),
                response_text=redact(result.answer),
                intent=result.intent,
                latency=result.latency,
                cache_hit=result.cache_hit,
                adapter=self.config.adapter,
                interrupted=interrupted,
            )
        )
        for tool_event in result.tool_events:
            self.analytics(tool_called=tool_event)
        if result.failed_service and not interrupted:
            self.analytics(
                call_error=analytics_pb.CallError(
                    service=result.failed_service, code="UNAVAILABLE", message="dependency failed", recovered=True
                )
            )

    async def _say_fixed(self, text: str, *, any_voice: bool = False) -> None:
        """Say a fixed phrase: its text always; its audio from the prompt cache, else synthesised now.

        With ``any_voice`` (the apology: tts_svc may be down) a clip in another voice is played
        rather than synthesising, and without a clip the phrase is text only.
        """
        index = self.turn_index
        await self.emit(pb.ConverseResponse(turn_index=index, bot_text=pb.BotText(delta=text)))
        if self.config.text_only:
            return
        clip = self.rt.prompts.get(text, None if any_voice else self.config.voice)
        speaker = self._new_speaker(index)
        if clip is not None:
            await speaker.play(clip)
        elif not any_voice:
            try:
                await speaker.say(text)
                await speaker.finish()
            except grpc.aio.AioRpcError as exc:
                log.warning("fixed phrase not spoken: tts %s", exc.code().name)


async def _settle(task: asyncio.Task[None]) -> None:
    """Wait for a cancelled task to finish.

    Unlike awaiting it under ``suppress(CancelledError)``, this does not swallow a cancellation of
    the waiting task itself: a reader cancelled as its call ends must stop, not start a new turn.
    """
    await asyncio.wait({task})
    if not task.cancelled() and (error := task.exception()) is not None:
        raise error


class _Mute(Speaker):
    """A speaker for text-only calls: says nothing, plays nothing."""

    def __init__(self, inner: Speaker) -> None:
        self.__dict__.update(inner.__dict__)

    async def say(self, text: str) -> None:
        """Drop the text (the caller gets it as BotText)."""

    async def play(self, clip: Any) -> None:
        """Play nothing."""
