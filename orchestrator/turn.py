"""One caller turn: cache lookup, or the model with its tool loop, spoken as it streams.

The answer's text deltas go to the caller and to the ``Speaker`` the moment they arrive, so
the first sentence is being synthesised while the model is still generating. Tool calls run
here, in the orchestrator, and their results go back to the model for another round. A
dependency that fails or runs past its deadline makes the bot say the pre-synthesised apology;
the turn still ends cleanly and the call goes on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
from opentelemetry import context as otel_context
from opentelemetry import trace

from mesh.pii import contains_pii, redact
from orchestrator.prompts import APOLOGY, FILLER, GOODBYE, TRANSFER, PromptCache
from orchestrator.speaker import Emit, Speaker
from voicebot.v1 import analytics_service_pb2 as analytics_pb
from voicebot.v1 import cache_service_pb2, cache_service_pb2_grpc, llm_service_pb2, llm_service_pb2_grpc
from voicebot.v1 import orchestrator_service_pb2 as pb

log = logging.getLogger("orchestrator.turn")
_TRACER = trace.get_tracer("voicebot.orchestrator")

NO_ACTION = "none"
TRANSFER_ACTION = "transfer"
END_CALL_ACTION = "end_call"

ROLES = {
    "system": llm_service_pb2.ROLE_SYSTEM,
    "user": llm_service_pb2.ROLE_USER,
    "assistant": llm_service_pb2.ROLE_ASSISTANT,
    "tool": llm_service_pb2.ROLE_TOOL,
}


@dataclass(frozen=True)
class ToolOutcome:
    """What a tool returned: the JSON the model reads, and what the call must do about it."""

    content: str
    ok: bool = True
    action: str = NO_ACTION
    cacheable: bool = False
    intent: str = ""
    detail: str = ""
    disclosure: str = ""  # a compliance sentence the bot must say in this turn, whatever the model says


class ToolRunner(Protocol):
    """Runs the banking tools the model calls."""

    async def run(self, name: str, arguments_json: str, session: Any) -> ToolOutcome:
        """Run one tool call; never raises (errors come back as ``ok=False`` for the model)."""
        ...


@dataclass
class TurnResult:
    """How a turn went, for history, analytics and the call's next step."""

    answer: str = ""
    intent: str = ""
    action: str = NO_ACTION
    action_detail: str = ""
    cache_hit: bool = False
    failed_service: str = ""
    latency: analytics_pb.TurnLatency = field(default_factory=analytics_pb.TurnLatency)
    tool_events: list[analytics_pb.ToolCalled] = field(default_factory=list)


@dataclass
class TurnInput:
    """What started the turn and when: ``speech_end_at`` is the monotonic time of end of speech."""

    text: str
    speech_end_at: float
    final_transcript_at: float
    stt_compute_ms: int = 0
    # A cache lookup of this text started on a stable interim transcript (see ``CachePrefetch``).
    prefetched: asyncio.Task[cache_service_pb2.LookupResponse] | None = None


@dataclass
class TurnContext:
    """What a turn needs from its call."""

    llm: llm_service_pb2_grpc.LlmServiceStub
    cache: cache_service_pb2_grpc.CacheServiceStub
    tools: ToolRunner
    tool_definitions: list[llm_service_pb2.ToolDefinition]
    system_prompt: str
    prompts: PromptCache
    emit: Emit
    session: Any
    tenant: str
    language_code: str
    adapter: str
    llm_timeout_s: float
    cache_timeout_s: float
    max_tool_rounds: int
    history_messages: int
    filler_after_ms: int = 0
    voice: str = ""


def _ms_since(start: float) -> int:
    return max(0, int((time.monotonic() - start) * 1000))


def _is_question(text: str) -> bool:
    return text.rstrip().endswith("?")


def cache_scope(tenant: str, language_code: str) -> cache_service_pb2.CacheScope:
    """Where a call's answers are cached (its turns and its early lookups alike): tenant and language."""
    return cache_service_pb2.CacheScope(tenant=tenant, language_code=language_code)


def may_cache(session: Any, text: str) -> bool:
    """Whether a turn saying ``text`` now may be answered from (and stored in) the cache.

    Context-dependent turns are never cached: a reply to the bot's own question, a turn holding
    personal data, and anything a verified caller asks (answers may be personal).
    """
    previous_asked = bool(session.messages) and _is_question(session.messages[-1].get("content", ""))
    return not previous_asked and not contains_pii(text) and not session.verified


class Turn:
    """Runs one turn; ``run`` is cancelled on barge-in, which cancels the model and synthesis streams."""

    def __init__(self, ctx: TurnContext, speaker: Speaker, index: int, given: TurnInput) -> None:
        """Prepare turn ``index`` for ``given`` caller text."""
        self.ctx = ctx
        self.speaker = speaker
        self.index = index
        self.given = given
        self.result = TurnResult()
        self._first_token_at: float | None = None
        self._fixed_tail: list[str] = []
        # Model time per text delta: (answer length after it, ms of engine time the turn had waited).
        self._delta_marks: list[tuple[int, int]] = []
        self._llm_rounds_ms = 0
        self._filler: asyncio.Task[None] | None = None

    async def _event(self, kind: int, **fields: Any) -> None:
        event = pb.CallEvent(type=kind, session_id=self.ctx.session.session_id, **fields)  # type: ignore[arg-type]
        await self.ctx.emit(pb.ConverseResponse(turn_index=self.index, event=event))

    async def _text(self, delta: str) -> None:
        if self._first_token_at is None:
            self._first_token_at = time.monotonic()
        self._stop_filler()  # the answer came in time
        self.result.answer += delta
        await self.ctx.emit(pb.ConverseResponse(turn_index=self.index, bot_text=pb.BotText(delta=delta)))
        await self.speaker.say(delta)

    async def _fixed(self, phrase: str) -> None:
        """Add a fixed phrase (disclosure, transfer, goodbye) after the answer, played from the prompt cache.

        Its text goes to the caller now; its audio after the answer's, as the pre-synthesised
        clip (or synthesised then, when the prompt cache has no clip of it).
        """
        delta = (" " if self.result.answer else "") + phrase
        self.result.answer += delta
        await self.ctx.emit(pb.ConverseResponse(turn_index=self.index, bot_text=pb.BotText(delta=delta)))
        self._fixed_tail.append(phrase)

    async def _finish_speaking(self) -> None:
        """Wait for the answer's audio, then play the fixed phrases that follow it."""
        await self.speaker.finish()
        for phrase in self._fixed_tail:
            clip = self.ctx.prompts.get(phrase, self.ctx.voice)
            if clip is not None:
                await self.speaker.play(clip)
            else:
                await self.speaker.say(phrase)
                await self.speaker.finish()

    def _start_filler(self) -> None:
        """Say the filler if the answer does not start within ``filler_after_ms`` (tools are running)."""
        if self.ctx.filler_after_ms <= 0 or self.result.answer or self._filler is not None:
            return
        clip = self.ctx.prompts.get(FILLER, self.ctx.voice)
        if clip is None:
            return

        async def after_a_while() -> None:
            await asyncio.sleep(self.ctx.filler_after_ms / 1000)
            if self.speaker.first_audio_at is None and not self.result.answer:
                await self.ctx.emit(pb.ConverseResponse(turn_index=self.index, bot_text=pb.BotText(delta=FILLER + " ")))
                await asyncio.shield(self.speaker.play(clip))

        self._filler = asyncio.create_task(after_a_while(), name="filler")

    def _stop_filler(self) -> None:
        """Call the filler off; one already playing still finishes (its clip plays whole)."""
        if self._filler is not None and not self._filler.done():
            self._filler.cancel()

    async def _settle_filler(self) -> None:
        self._stop_filler()
        if self._filler is not None:
            await asyncio.wait({self._filler})

    async def run(self) -> TurnResult:
        """Answer the caller's text; returns how it went (also when a dependency failed).

        Each turn is one trace: a root span linked to the call's span, under which every cache,
        model and synthesis call of the turn runs (their servers continue the trace).
        """
        call_span = trace.get_current_span().get_span_context()
        attributes = {"voicebot.session_id": self.ctx.session.session_id, "voicebot.turn_index": self.index}
        with _TRACER.start_as_current_span(
            "turn", context=otel_context.Context(), links=[trace.Link(call_span)], attributes=attributes
        ) as span:
            span.add_event("final transcript", {"stt_compute_ms": self.given.stt_compute_ms})
            try:
                result = await self._run()
            finally:
                self._stop_filler()
            span.set_attribute("voicebot.intent", result.intent)
            span.set_attribute("voicebot.cache_hit", result.cache_hit)
            return result

    async def _run(self) -> TurnResult:
        await self._event(pb.CALL_EVENT_TYPE_TURN_STARTED)
        text = redact(self.given.text)
        cacheable = may_cache(self.ctx.session, self.given.text)
        prefetched = self.given.prefetched
        if prefetched is not None and not cacheable:
            prefetched.cancel()
        self.ctx.session.messages.append({"role": "user", "content": text})
        try:
            if not (cacheable and await self._from_cache(text, prefetched)):
                store = await self._generate(cacheable)
                await self._settle_filler()
                await self._finish_speaking()
                if store:
                    await self._store(text, self.ctx.session.messages[-1]["content"])
            else:
                await self._finish_speaking()
        except grpc.aio.AioRpcError as exc:
            await self._failed(exc)
        self._finish_latency()
        return self.result

    async def _failed(self, exc: grpc.aio.AioRpcError) -> None:
        service = self.result.failed_service or "tts"
        log.warning("turn %d: %s failed: %s %s", self.index, service, exc.code().name, exc.details())
        await self._settle_filler()
        await self.speaker.cancel(silence=False)
        await self._event(
            pb.CALL_EVENT_TYPE_ERROR, code=exc.code().name, service=service, detail=f"{service} failed; apologised"
        )
        clip = self.ctx.prompts.get(APOLOGY)
        apology = (" " if self.result.answer else "") + APOLOGY
        self.result.answer += apology
        await self.ctx.emit(pb.ConverseResponse(turn_index=self.index, bot_text=pb.BotText(delta=apology)))
        if clip is not None:
            await self.speaker.play(clip)
        self.result.failed_service = service

    async def _from_cache(
        self, text: str, prefetched: asyncio.Task[cache_service_pb2.LookupResponse] | None = None
    ) -> bool:
        started = time.monotonic()
        try:
            if prefetched is not None:
                reply = await asyncio.wait_for(prefetched, self.ctx.cache_timeout_s)
            else:
                reply = await self.ctx.cache.Lookup(
                    cache_service_pb2.LookupRequest(query=text, scope=self.cache_scope()),
                    timeout=self.ctx.cache_timeout_s,
                )
        except TimeoutError:
            log.info("cache lookup skipped: prefetched lookup too slow")
            return False
        except grpc.aio.AioRpcError as exc:
            log.info("cache lookup skipped: %s", exc.code().name)
            return False
        finally:
            self.result.latency.cache_ms = _ms_since(started)
        if not reply.hit:
            return False
        self.result.cache_hit = True
        self.result.intent = reply.metadata.get("intent", "")
        await self._text(reply.answer)
        self.ctx.session.messages.append({"role": "assistant", "content": reply.answer})
        return True

    def _request(self) -> llm_service_pb2.StreamingGenerateRequest:
        messages = [llm_service_pb2.ChatMessage(role=llm_service_pb2.ROLE_SYSTEM, content=self.ctx.system_prompt)]
        for message in self.ctx.session.messages[-self.ctx.history_messages :]:
            messages.append(
                llm_service_pb2.ChatMessage(
                    role=ROLES[message["role"]],
                    content=message.get("content", ""),
                    tool_calls=[llm_service_pb2.ToolCall(**call) for call in message.get("tool_calls", [])],
                    tool_call_id=message.get("tool_call_id", ""),
                    name=message.get("name", ""),
                )
            )
        while len(messages) > 1 and messages[1].role == llm_service_pb2.ROLE_TOOL:
            messages.pop(1)  # never start the window on a tool result without its call
        return llm_service_pb2.StreamingGenerateRequest(
            request_id=f"{self.ctx.session.session_id}-{self.index}",
            messages=messages,
            tools=self.ctx.tool_definitions,
            adapter=self.ctx.adapter,
        )

    async def _generate(self, cacheable: bool) -> bool:
        """Model rounds until it answers without tools; tools run between rounds.

        Returns whether the answer may be cached: asked ``cacheable``, no personal tool ran, and
        the call goes on.
        """
        self.result.failed_service = "llm"
        used_personal_tool = False
        disclosures: list[str] = []
        for _ in range(self.ctx.max_tool_rounds):
            calls: dict[int, dict[str, str]] = {}
            started_text = len(self.result.answer)
            stream = self.ctx.llm.StreamingGenerate(self._request(), timeout=self.ctx.llm_timeout_s)
            async for reply in stream:
                kind = reply.WhichOneof("output")
                if kind == "text_delta":
                    self.result.failed_service = "tts"
                    await self._text(reply.text_delta)
                    self.result.failed_service = "llm"
                    if reply.elapsed_ms > 0:
                        self._delta_marks.append((len(self.result.answer), self._llm_rounds_ms + reply.elapsed_ms))
                elif kind == "tool_call_delta":
                    delta = reply.tool_call_delta
                    if self._first_token_at is None:
                        self._first_token_at = time.monotonic()
                    call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments_json": ""})
                    call["id"] = call["id"] or delta.id
                    call["name"] = call["name"] or delta.name
                    call["arguments_json"] += delta.arguments_delta
                elif kind == "end":
                    # Engine time the caller waited for: a tool-call round's whole generation (its
                    # arguments must be complete), then the answering round's time to first token.
                    end = reply.end
                    waited = (
                        end.total_ms
                        if end.finish_reason == llm_service_pb2.FINISH_REASON_TOOL_CALLS
                        else end.time_to_first_token_ms
                    )
                    self.result.latency.llm_compute_ms += waited
                    self._llm_rounds_ms += end.total_ms
            said = self.result.answer[started_text:]
            if not calls:
                self.ctx.session.messages.append({"role": "assistant", "content": said})
                break
            ordered = [calls[i] for i in sorted(calls)]
            self.ctx.session.messages.append({"role": "assistant", "content": said, "tool_calls": ordered})
            self._start_filler()
            for call in ordered:
                outcome = await self._run_tool(call)
                used_personal_tool = used_personal_tool or not outcome.cacheable
                if outcome.disclosure and outcome.disclosure not in disclosures:
                    disclosures.append(outcome.disclosure)
                if outcome.action != NO_ACTION:
                    self.result.action, self.result.action_detail = outcome.action, outcome.detail
        else:
            await self._fixed(APOLOGY)
        self.result.failed_service = "tts"
        for disclosure in disclosures:  # compliance does not depend on the model's phrasing
            if disclosure not in self.result.answer:
                await self._fixed(disclosure)
                if self.ctx.session.messages[-1]["role"] == "assistant":
                    self.ctx.session.messages[-1]["content"] += " " + disclosure
        if self.result.action == TRANSFER_ACTION and TRANSFER not in self.result.answer:
            await self._fixed(TRANSFER)
        if self.result.action == END_CALL_ACTION and not self.result.answer.strip():
            await self._fixed(GOODBYE)
        return cacheable and not used_personal_tool and self.result.action == NO_ACTION

    async def _run_tool(self, call: dict[str, str]) -> ToolOutcome:
        started = time.monotonic()
        outcome = await self.ctx.tools.run(call["name"], call["arguments_json"], self.ctx.session)
        self.result.intent = outcome.intent or self.result.intent or call["name"]
        self.ctx.session.messages.append(
            {"role": "tool", "content": outcome.content, "tool_call_id": call["id"], "name": call["name"]}
        )
        self.result.tool_events.append(
            analytics_pb.ToolCalled(
                name=call["name"],
                arguments_json=redact(call["arguments_json"]),
                ok=outcome.ok,
                duration_ms=_ms_since(started),
                turn_index=self.index,
            )
        )
        return outcome

    def cache_scope(self) -> cache_service_pb2.CacheScope:
        """Where this call's answers are cached: its tenant and language."""
        return cache_scope(self.ctx.tenant, self.ctx.language_code)

    async def _store(self, question: str, answer: str) -> None:
        if not answer or contains_pii(answer):
            return
        request = cache_service_pb2.StoreRequest(
            query=question,
            answer=answer,
            scope=self.cache_scope(),
            metadata={"intent": self.result.intent, "source": "orchestrator"},
        )
        try:
            await self.ctx.cache.Store(request, timeout=self.ctx.cache_timeout_s)
        except grpc.aio.AioRpcError as exc:
            log.info("cache store skipped: %s", exc.code().name)

    def _finish_latency(self) -> None:
        latency = self.result.latency
        given = self.given
        latency.final_transcript_ms = max(0, int((given.final_transcript_at - given.speech_end_at) * 1000))
        latency.stt_compute_ms = given.stt_compute_ms
        if self._first_token_at is not None:
            latency.first_token_ms = max(0, int((self._first_token_at - given.speech_end_at) * 1000))
        if self.speaker.first_audio_at is not None:
            latency.first_audio_ms = max(0, int((self.speaker.first_audio_at - given.speech_end_at) * 1000))
        latency.tts_compute_ms = self.speaker.tts_compute_ms
        spoken_after = self._llm_ms_to_first_segment()
        if spoken_after is not None:
            latency.llm_compute_ms = spoken_after

    def _llm_ms_to_first_segment(self) -> int | None:
        """Model time until it had written the text of the first spoken segment, as llm_svc reported it.

        Speech starts once tts_svc has a whole first segment (a sentence or a first clause), so
        the model's time to write that text, not just its first token, is engine time the caller
        waited for. None when the first audio was not answer text (a cached answer, the filler)
        or llm_svc did not report per-delta times.
        """
        segment = self.speaker.first_segment_text.strip()
        start = self.result.answer.find(segment) if segment else -1
        if start < 0 or not self._delta_marks:
            return None
        end = start + len(segment)
        return next((ms for length, ms in self._delta_marks if length >= end), None)


def tool_definitions(definitions: list[dict[str, Any]]) -> list[llm_service_pb2.ToolDefinition]:
    """Tool definitions as the model receives them, from ``{"name", "description", "parameters"}`` dicts."""
    return [
        llm_service_pb2.ToolDefinition(
            name=d["name"], description=d.get("description", ""), parameters_json_schema=json.dumps(d["parameters"])
        )
        for d in definitions
    ]
