"""Fuzz every OrchestratorService RPC against the five in-process peers (embedded engines).

Caller rate limits are off in this module: every case comes from one peer, and the limiter would
answer nearly all of them RESOURCE_EXHAUSTED before the call code ran.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mesh import MeshServer
from orchestrator.app import OrchestratorApp
from orchestrator.config import OrchestratorSettings
from tests.fuzz.conftest import (
    ALWAYS_ALLOWED,
    END_MODES,
    ENUMS,
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
    raw_unary,
    text,
    unary,
)
from voicebot.v1 import audio_pb2, orchestrator_service_pb2_grpc
from voicebot.v1 import orchestrator_service_pb2 as pb

pytestmark = pytest.mark.slow  # loads the speech models

SERVICE = "/voicebot.v1.OrchestratorService/"
CONVERSE_ALLOWED = ALWAYS_ALLOWED | {C.NOT_FOUND, C.FAILED_PRECONDITION, C.UNAVAILABLE}
HALF_CLOSED_DEADLINE_S = 60.0
"""A half-closed call finishes its turn first (LLM, TTS on two busy cores), then must end by itself."""
LOCAL = {"host": "127.0.0.1", "port": 0, "metrics_port": -1}


@pytest.fixture(scope="module")
def h(peers: Peers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    tmp = tmp_path_factory.mktemp("orchestrator")
    with harness("orchestrator", peers) as h:
        targets = peers.all()
        settings = OrchestratorSettings.from_env(
            {},
            events_spill_dir=str(tmp / "spill"),
            rate_limit_calls_per_minute=0,
            rate_limit_max_concurrent=0,
            prompt_warmup_s=0,  # prompts are synthesised in the background instead
            **LOCAL,
            **targets,
        )
        channel = h.run(h.connect(h.run(h.serve(MeshServer(OrchestratorApp(settings), settings)), timeout=300)))
        stub = orchestrator_service_pb2_grpc.OrchestratorServiceStub(channel)
        call = [
            pb.ConverseRequest(config=pb.SessionConfig(text_only=True, caller_id="healthy")),
            pb.ConverseRequest(control=pb.CallControl(text="what are your branch opening hours")),
            pb.ConverseRequest(control=pb.CallControl(hang_up=pb.HangUp())),
        ]

        async def healthy() -> None:
            responses = [r async for r in stub.Converse(iter(call), timeout=120)]
            answer = "".join(r.bot_text.delta for r in responses if r.HasField("bot_text"))
            assert answer
            assert responses[-1].event.type == pb.CALL_EVENT_TYPE_CALL_ENDED

        yield from fuzz_beside(h, healthy, 180)


def stub(h: Harness) -> orchestrator_service_pb2_grpc.OrchestratorServiceStub:
    return orchestrator_service_pb2_grpc.OrchestratorServiceStub(h.channel)


FORMATS = audio_formats(
    st.sampled_from(
        [
            audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_LINEAR16, sample_rate_hertz=16000),
            audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_MULAW, sample_rate_hertz=8000),
        ]
    )
)
SESSION_IDS = st.one_of(st.just(""), st.just(""), text(140))


def config(
    session_id: str,
    caller_id: str,
    language: str,
    voice: str,
    tenant: str,
    text_only: bool,
    fmt_in: audio_pb2.AudioFormat | None,
    fmt_out: audio_pb2.AudioFormat | None,
    barge_in: int,
) -> pb.ConverseRequest:
    message = pb.SessionConfig(
        session_id=session_id,
        caller_id=caller_id,
        language_code=language,
        voice=voice,
        tenant=tenant,
        text_only=text_only,
        barge_in_min_speech_ms=barge_in,
    )
    if fmt_in is not None:
        message.input_format.CopyFrom(fmt_in)
    if fmt_out is not None:
        message.output_format.CopyFrom(fmt_out)
    return pb.ConverseRequest(config=message)


SHORT = st.one_of(st.just(""), text(20))
CONFIGS = st.builds(
    config,
    SESSION_IDS,
    SHORT,
    SHORT,
    st.one_of(st.just(""), st.just(""), text(20)),
    SHORT,
    st.booleans(),
    FORMATS,
    st.one_of(st.none(), st.none(), FORMATS),
    st.one_of(st.just(0), st.just(0), INT32),
)
VALID_CONFIGS = st.builds(
    config,
    st.just(""),
    st.just(""),
    st.just(""),
    st.just(""),
    st.just(""),
    st.booleans(),
    st.sampled_from(
        [
            audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_LINEAR16, sample_rate_hertz=16000),
            audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_MULAW, sample_rate_hertz=8000),
        ]
    ),
    st.none(),
    st.just(0),
)
TURN_TEXT = st.one_of(
    text(40), st.sampled_from(["what are your branch hours", "my card number is 4111 1111 1111 1111", "goodbye"])
)
CONTROLS = st.one_of(
    st.builds(lambda r: pb.CallControl(hang_up=pb.HangUp(reason=r)), text(140)),
    st.builds(lambda t: pb.CallControl(text=t), TURN_TEXT),
    st.builds(lambda d: pb.CallControl(dtmf=d), st.one_of(st.text(alphabet="0123456789*#", max_size=34), text(8))),
    st.builds(lambda p: pb.CallControl(playback_position_ms=p), INT32),
    st.just(pb.CallControl()),
)
MESSAGES = st.one_of(
    CONFIGS,
    st.builds(lambda b: pb.ConverseRequest(audio=b), blobs(1600)),
    st.builds(lambda c: pb.ConverseRequest(control=c), CONTROLS),
    st.just(pb.ConverseRequest()),
)
AFTER_CONFIG = st.one_of(
    st.builds(lambda b: pb.ConverseRequest(audio=b[: len(b) // 2 * 2]), blobs(1600)),
    st.builds(lambda c: pb.ConverseRequest(control=c), CONTROLS),
    MESSAGES,
)
ORDERS = st.one_of(
    st.builds(lambda c, rest: [c, *rest], VALID_CONFIGS, st.lists(AFTER_CONFIG, max_size=3)),
    st.lists(MESSAGES, max_size=4),  # audio before config, config twice, empty messages, ...
)


@examples(ci=50, full=4000)
@given(requests=ORDERS, mode=END_MODES)
def test_converse(h: Harness, requests: list[pb.ConverseRequest], mode: str) -> None:
    call = stub(h).Converse
    h.run(bidi(h, "Converse", call, requests, mode, CONVERSE_ALLOWED, deadline_s=HALF_CLOSED_DEADLINE_S), timeout=90)


PAGE_TOKENS = st.one_of(
    st.just(""),
    text(40),
    st.builds(lambda n: base64.urlsafe_b64encode(str(n).encode()).decode(), st.integers(-(10**20), 10**20)),
)


@examples(ci=50, full=3000)
@given(
    kind=st.integers(0, 3),
    session_id=SESSION_IDS,
    reason=text(200),
    page_size=INT32,
    token=PAGE_TOKENS,
    state=ENUMS,
)
def test_unary_rpcs(
    h: Harness, kind: int, session_id: str, reason: str, page_size: int, token: str, state: int
) -> None:
    s = stub(h)
    allowed = ALWAYS_ALLOWED | {C.NOT_FOUND}
    if kind == 0:
        h.run(unary(h, "GetSession", s.GetSession, pb.GetSessionRequest(session_id=session_id), allowed))
    elif kind == 1:
        request = pb.ListSessionsRequest(page_size=page_size, page_token=token, state=state)  # type: ignore[arg-type]
        h.run(unary(h, "ListSessions", s.ListSessions, request, ALWAYS_ALLOWED))
    elif kind == 2:
        request_end = pb.EndSessionRequest(session_id=session_id, reason=reason)
        h.run(unary(h, "EndSession", s.EndSession, request_end, allowed))
    else:
        h.run(unary(h, "GetStatus", s.GetStatus, pb.GetStatusRequest(), {C.OK}))


UNARY = ["GetSession", "ListSessions", "EndSession", "GetStatus"]


@examples(ci=40, full=3000)
@given(method=st.sampled_from([*UNARY, "Converse"]), payloads=st.lists(GARBAGE, min_size=1, max_size=3))
def test_raw_bytes(h: Harness, method: str, payloads: list[bytes]) -> None:
    allowed = CONVERSE_ALLOWED | {C.DEADLINE_EXCEEDED} if method == "Converse" else ALWAYS_ALLOWED | {C.NOT_FOUND}
    if method == "Converse":
        h.run(raw_stream(h, SERVICE + method, "stream_stream", payloads, allowed))
    else:
        h.run(raw_unary(h, SERVICE + method, payloads[0], allowed))
