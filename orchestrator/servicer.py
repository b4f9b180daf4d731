"""OrchestratorService: validates requests and hands calls and session queries to the runtime."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from mesh import audio
from mesh.errors import InvalidArgument, NotFound, ResourceExhausted, Unavailable
from mesh.server import package_version
from orchestrator.call import Call, CallConfig, Runtime
from orchestrator.ratelimit import RateLimiter, peer_key
from orchestrator.sessions import ACTIVE, DETACHED, ENDED, SessionState, new_session_id
from voicebot.v1 import llm_service_pb2, orchestrator_service_pb2_grpc
from voicebot.v1 import orchestrator_service_pb2 as pb

INPUT_RATES = (8000, 16000, 44100, 48000)
OUTPUT_RATES = (8000, 16000, 22050, 24000)
STATES = {ACTIVE: pb.SESSION_STATE_ACTIVE, DETACHED: pb.SESSION_STATE_DETACHED, ENDED: pb.SESSION_STATE_ENDED}
STATE_NAMES = {value: key for key, value in STATES.items()}
ROLES = {
    "user": llm_service_pb2.ROLE_USER,
    "assistant": llm_service_pb2.ROLE_ASSISTANT,
    "tool": llm_service_pb2.ROLE_TOOL,
    "system": llm_service_pb2.ROLE_SYSTEM,
}
DEPENDENCIES = ("stt", "tts", "llm", "cache", "analytics")


def _limit(value: str, name: str, most: int) -> str:
    if len(value) > most:
        raise InvalidArgument(f"config.{name} must be at most {most} characters")
    return value


def validate_config(config: pb.SessionConfig, rt: Runtime) -> CallConfig:
    """Check a SessionConfig and fill in the defaults.

    Raises:
        InvalidArgument: naming the field and what it accepts.
    """
    s = rt.settings
    input_format = None
    if not config.text_only:
        if not config.HasField("input_format"):
            raise InvalidArgument("config.input_format is required for a voice call (or set text_only)")
        input_format = audio.validate_format(
            config.input_format, linear16_rates=INPUT_RATES, field="config.input_format"
        )
    if config.HasField("output_format"):
        output = audio.validate_format(
            config.output_format, linear16_rates=OUTPUT_RATES, max_channels=1, field="config.output_format"
        )
    elif input_format is None:
        output = audio.PcmFormat(audio.LINEAR16, 16000)
    elif input_format.encoding == audio.MULAW or input_format.sample_rate_hertz in OUTPUT_RATES:
        output = audio.PcmFormat(input_format.encoding, input_format.sample_rate_hertz)
    else:
        output = audio.PcmFormat(audio.LINEAR16, 24000)
    barge_in = config.barge_in_min_speech_ms or s.barge_in_min_speech_ms
    if not 100 <= barge_in <= 2000:
        raise InvalidArgument(f"config.barge_in_min_speech_ms must be 100-2000, got {config.barge_in_min_speech_ms}")
    return CallConfig(
        session_id=_limit(config.session_id, "session_id", 128),
        caller_id=_limit(config.caller_id, "caller_id", 64),
        language_code=_limit(config.language_code, "language_code", 16) or "en-US",
        voice=_limit(config.voice, "voice", 64) or s.default_voice,
        adapter=_limit(config.adapter, "adapter", 64) or s.default_adapter,
        tenant=_limit(config.tenant, "tenant", 64) or s.tenant,
        text_only=config.text_only,
        input_format=input_format,
        output_format=output,
        barge_in_min_speech_ms=barge_in,
    )


def _timestamp(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def session_proto(state: SessionState, with_messages: bool) -> pb.Session:
    """A session as the API shows it: caller id and texts masked."""
    session = pb.Session(
        session_id=state.session_id,
        caller_id=state.masked_caller_id,
        state=STATES.get(state.state, pb.SESSION_STATE_UNSPECIFIED),
        start_time=_timestamp(state.start_time),
        update_time=_timestamp(state.update_time),
        turn_count=state.turn_count,
        verified=state.verified,
        language_code=state.language_code,
        last_intent=state.last_intent,
        replica=state.replica,
    )
    if with_messages:
        for message in state.messages:
            if message.get("content"):
                session.messages.add(role=ROLES.get(message["role"], 0), text=message["content"])
    return session


class OrchestratorServicer(orchestrator_service_pb2_grpc.OrchestratorServiceServicer):
    """Translates OrchestratorService RPCs to calls and session-store operations."""

    def __init__(self, rt: Runtime) -> None:
        """Serve with the shared runtime ``rt``."""
        self.rt = rt
        s = rt.settings
        self.limiter = RateLimiter(
            s.rate_limit_calls_per_minute,
            s.rate_limit_burst,
            s.rate_limit_max_concurrent,
            s.rate_limit_max_callers,
            peer_scale=s.rate_limit_peer_scale,
        )

    async def Converse(
        self, request_iterator: AsyncIterator[pb.ConverseRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ConverseResponse]:
        """Run one call."""
        first = await anext(aiter(request_iterator), None)
        if first is None:
            raise InvalidArgument("the stream ended before the config message")
        if first.WhichOneof("streaming_request") != "config":
            raise InvalidArgument("the first message must carry config; audio and control come after it")
        config = validate_config(first.config, self.rt)
        if self.rt.draining:
            raise Unavailable("this replica is shutting down; place the call again (with session_id to resume)")
        if len(self.rt.calls) >= self.rt.settings.max_calls:
            raise ResourceExhausted(
                f"this replica runs its maximum of {self.rt.settings.max_calls} calls; retry shortly"
            )
        if config.caller_id:
            lease = self.limiter.acquire(config.caller_id)
        else:
            lease = self.limiter.acquire(peer_key(context.peer()), peer=True)
        try:
            async for response in self._run(config, request_iterator):
                yield response
        finally:
            lease.release()

    async def _run(
        self, config: CallConfig, request_iterator: AsyncIterator[pb.ConverseRequest]
    ) -> AsyncIterator[pb.ConverseResponse]:
        replica = self.rt.settings.replica
        if config.session_id:
            session = await self.rt.store.resume(config.session_id, replica)
            resumed = True
        else:
            session = SessionState(
                session_id=new_session_id(),
                caller_id=config.caller_id,
                language_code=config.language_code,
                tenant=config.tenant,
                voice=config.voice,
                adapter=config.adapter,
            )
            await self.rt.store.create(session, replica)
            resumed = False
        call = Call(self.rt, config, session, resumed)
        self.rt.calls[session.session_id] = call
        try:
            async for response in call.run(request_iterator):
                yield response
        finally:
            self.rt.calls.pop(session.session_id, None)

    async def GetSession(
        self, request: pb.GetSessionRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetSessionResponse:
        """Return one session with its (masked) conversation."""
        if not request.session_id:
            raise InvalidArgument("session_id is required")
        call = self.rt.calls.get(request.session_id)
        state = call.session if call is not None else await self.rt.store.get(request.session_id)
        return pb.GetSessionResponse(session=session_proto(state, with_messages=True))

    async def ListSessions(
        self, request: pb.ListSessionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListSessionsResponse:
        """Page through sessions, newest first."""
        size = request.page_size or 50
        if not 1 <= size <= 500:
            raise InvalidArgument(f"page_size must be 1-500, got {request.page_size}")
        offset = 0
        if request.page_token:
            try:
                offset = int(base64.urlsafe_b64decode(request.page_token.encode()).decode())
            except ValueError:
                raise InvalidArgument("page_token is not one this server issued") from None
        state = STATE_NAMES.get(request.state) if request.state else None
        rows, more = await self.rt.store.list(size, offset, state)
        token = base64.urlsafe_b64encode(str(offset + size).encode()).decode() if more else ""
        return pb.ListSessionsResponse(
            sessions=[session_proto(r, with_messages=False) for r in rows], next_page_token=token
        )

    async def EndSession(
        self, request: pb.EndSessionRequest, context: grpc.aio.ServicerContext
    ) -> pb.EndSessionResponse:
        """End a session and the call on it, if any runs here; other replicas notice on lease renewal."""
        if not request.session_id:
            raise InvalidArgument("session_id is required")
        reason = request.reason[:128] or "ended by operator"
        try:
            was_active = await self.rt.store.end(request.session_id, reason)
        except NotFound:
            if request.session_id not in self.rt.calls:
                raise
            was_active = True
        call = self.rt.calls.get(request.session_id)
        if call is not None:
            call.end("admin")
        return pb.EndSessionResponse(was_active=was_active)

    async def GetStatus(self, request: pb.GetStatusRequest, context: grpc.aio.ServicerContext) -> pb.GetStatusResponse:
        """Health, version and engine of the orchestrator and every dependency."""
        timeout = self.rt.settings.status_timeout_s
        rows = await asyncio.gather(*(self.rt.deps.status(name, timeout) for name in DEPENDENCIES))
        own = pb.ComponentStatus(
            service="orchestrator",
            target=f"{self.rt.settings.host}:{self.rt.settings.port}",
            state=pb.SERVING_STATE_SERVING,
            version=package_version(),
            engine=self.rt.settings.engine,
        )
        return pb.GetStatusResponse(
            components=[own, *rows], active_calls=len(self.rt.calls), replica=self.rt.settings.replica
        )
