"""Fuzz harness: hypothesis profiles, one event loop per module that runs the service and the cases.

Hypothesis drives plain (sync) test functions; every case is a coroutine run to completion on the
module's own event loop, which also runs the in-process ``MeshServer`` and a healthy background
stream. So the server and the healthy stream only make progress while a case runs: the healthy
stream is concurrent with the fuzzing by construction.

Case counts: the default (CI) profile runs a small sample per RPC; ``VOICEBOT_FUZZ_FULL=1`` runs at
least 10,000 cases per service (``examples(ci, full)`` on each test says how many).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from mesh import MeshServer, dial
from voicebot.v1 import audio_pb2

FULL = os.environ.get("VOICEBOT_FUZZ_FULL") == "1"
CASE_DEADLINE_S = 5.0
"""gRPC deadline of every case unless it says otherwise."""
OPEN_DEADLINE_S = 0.2
"""Deadline of a stream the test leaves open on purpose (the server legitimately waits for more input)."""

C = grpc.StatusCode
ALWAYS_ALLOWED = frozenset({C.OK, C.INVALID_ARGUMENT, C.RESOURCE_EXHAUSTED})
"""Codes any RPC may answer bad input with. INTERNAL and UNKNOWN are never allowed."""

settings.register_profile(
    "fuzz-ci",
    deadline=None,
    derandomize=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile("fuzz-full", parent=settings.get_profile("fuzz-ci"))
settings.load_profile("fuzz-full" if FULL else "fuzz-ci")

T = TypeVar("T")


def examples(ci: int, full: int) -> settings:
    """Hypothesis settings for one test: ``ci`` cases by default, ``full`` under VOICEBOT_FUZZ_FULL=1."""
    return settings(max_examples=full if FULL else ci)


class Harness:
    """One module's loop, servers, channel and tally of outcomes."""

    def __init__(self, name: str, loop: asyncio.AbstractEventLoop) -> None:
        """A harness on ``loop`` (shared by the session); nothing is started yet."""
        self.name = name
        self.loop = loop
        self.stack = contextlib.AsyncExitStack()
        self.channel: grpc.aio.Channel | None = None
        self.target = ""
        self.tally: collections.Counter[str] = collections.Counter()
        self.cases = 0
        self.started = time.monotonic()
        self._background: list[asyncio.Task[None]] = []
        self.healthy_runs = 0
        self.slowest: list[tuple[float, str]] = []
        self._last = time.monotonic()

    def run(self, coro: Awaitable[T], timeout: float = 60.0) -> T:
        """Run one coroutine on the module loop; a case that outlives ``timeout`` is a hang and fails."""

        async def bounded() -> T:
            try:
                return await asyncio.wait_for(coro, timeout)
            except TimeoutError:
                pytest.fail(f"case hung: no outcome within {timeout} s")

        return self.loop.run_until_complete(bounded())

    async def serve(self, server: MeshServer) -> str:
        """Start ``server`` on the loop (stopped at teardown) and return its address."""
        await self.stack.enter_async_context(server)
        return f"127.0.0.1:{server.port}"

    async def connect(self, target: str) -> grpc.aio.Channel:
        """Dial ``target``; the channel is the one every case of the module uses."""
        self.target = target
        self.channel = dial(target)
        self._last = self.started = time.monotonic()
        return self.channel

    def background(self, healthy: Callable[[], Awaitable[None]]) -> None:
        """Run ``healthy`` over and over while the module fuzzes; teardown checks every run passed."""

        async def repeat() -> None:
            while True:
                await healthy()
                self.healthy_runs += 1
                await asyncio.sleep(0.05)

        self._background.append(self.loop.create_task(repeat()))

    def finish_background(self) -> int:
        """Stop the healthy streams; raises what any of them raised; returns how many runs completed."""
        for task in self._background:
            if task.done():
                task.result()  # raises the healthy stream's failure
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                self.loop.run_until_complete(task)
        return self.healthy_runs

    def record(self, rpc: str, code: grpc.StatusCode) -> None:
        """Count one case's outcome."""
        self.cases += 1
        self.tally[f"{rpc} {code.name}"] += 1
        now = time.monotonic()
        self.slowest = sorted([*self.slowest, (now - self._last, f"{rpc} {code.name}")], reverse=True)[:3]
        self._last = now
        report = os.environ.get("VOICEBOT_FUZZ_REPORT")
        if report and self.cases % 500 == 0:  # progress survives a run that is killed part way
            Path(f"{report}.{self.name}.progress").write_text(self.summary() + "\n", encoding="utf-8")

    def close(self) -> None:
        """Stop servers and the loop."""

        async def stop() -> None:
            if self.channel is not None:
                await self.channel.close()
            await self.stack.aclose()

        self.loop.run_until_complete(stop())

    def summary(self) -> str:
        """One line per RPC and code, plus the case count and rate."""
        elapsed = time.monotonic() - self.started
        lines = [f"fuzz {self.name}: {self.cases} cases in {elapsed:.1f} s ({self.cases / max(elapsed, 1e-9):.1f}/s)"]
        lines += [f"  {key}: {count}" for key, count in sorted(self.tally.items())]
        lines += [f"  slowest: {label} {seconds:.1f} s" for seconds, label in self.slowest]
        lines += [f"  healthy concurrent runs: {self.healthy_runs}"]
        return "\n".join(lines)


CLIENT_SEND_FAILED = "Internal error from Core"
"""What grpc-aio's *client* reports when it is still writing a request stream after the server ended
the call (it aborted on an earlier message). The server never sends this text: an unhandled server
exception reads "internal error (request id ...)". So it is not a server status and is not a failure."""


def check(h: Harness, rpc: str, code: grpc.StatusCode, details: str | None, allowed: Iterable[grpc.StatusCode]) -> None:
    """Fail unless ``code`` is one ``rpc`` documents; INTERNAL and UNKNOWN always fail."""
    if code == C.INTERNAL and details == CLIENT_SEND_FAILED:
        h.record(rpc, C.ABORTED)  # tallied apart: the server ended the call while the client wrote
        return
    h.record(rpc, code)
    allowed = set(allowed)
    assert code not in (C.INTERNAL, C.UNKNOWN), f"{rpc}: {code.name} (unhandled exception): {details}"
    assert code in allowed, f"{rpc}: {code.name} not among {sorted(c.name for c in allowed)}: {details}"


async def unary(
    h: Harness,
    rpc: str,
    call: Callable[..., Any],
    request: Any,
    allowed: Iterable[grpc.StatusCode],
    *,
    deadline_s: float = CASE_DEADLINE_S,
) -> Any:
    """Run one unary (or client-stream) call with a deadline; check its status; return the response."""
    try:
        response = await call(request, timeout=deadline_s)
    except grpc.aio.AioRpcError as exc:
        check(h, rpc, exc.code(), exc.details(), allowed)
        return None
    check(h, rpc, C.OK, None, allowed)
    return response


async def paced(requests: Sequence[Any], *, gap_s: float = 0.0, hold_open: bool = False) -> AsyncIterator[Any]:
    """Yield ``requests`` with ``gap_s`` between them; then half-close, or (``hold_open``) never close."""
    for request in requests:
        yield request
        if gap_s:
            await asyncio.sleep(gap_s)
    if hold_open:
        await asyncio.Event().wait()


async def stream(
    h: Harness,
    rpc: str,
    call: Callable[..., Any],
    requests: Any,
    allowed: Iterable[grpc.StatusCode],
    *,
    deadline_s: float = CASE_DEADLINE_S,
    cancel_after: int | None = None,
    read_gap_s: float = 0.0,
) -> list[Any]:
    """Run one streaming call: read every response (slowly with ``read_gap_s``), or cancel after
    ``cancel_after`` responses (or 0.3 s, whichever comes first; 0: right away); check the final status;
    return the responses read.
    """
    responses: list[Any] = []
    rpc_call = call(requests, timeout=deadline_s)
    timer = None
    if cancel_after is not None:
        # Cancel after ``cancel_after`` responses, or abruptly after a short while when fewer come.
        timer = asyncio.get_running_loop().call_later(0.01 if cancel_after == 0 else 0.3, rpc_call.cancel)
    try:
        async for response in rpc_call:
            responses.append(response)
            if cancel_after is not None and len(responses) >= cancel_after:
                rpc_call.cancel()
                break
            if read_gap_s:
                await asyncio.sleep(read_gap_s)
        code = await rpc_call.code()
        details = await rpc_call.details()
    except grpc.aio.AioRpcError as exc:
        code, details = exc.code(), exc.details()
    except asyncio.CancelledError:
        code, details = C.CANCELLED, "cancelled by the test"
    finally:
        if timer is not None:
            timer.cancel()
    if cancel_after is not None:
        allowed = {*allowed, C.CANCELLED}
    check(h, rpc, code, details, allowed)
    return responses


async def raw_unary(h: Harness, method: str, payload: bytes, allowed: Iterable[grpc.StatusCode]) -> None:
    """Send ``payload`` as the serialized request of a unary ``method`` (bytes-level stub)."""
    assert h.channel is not None
    call = h.channel.unary_unary(method, request_serializer=None, response_deserializer=None)
    await unary(h, f"{method} raw", call, payload, allowed)


async def raw_stream(
    h: Harness, method: str, kind: str, payloads: list[bytes], allowed: Iterable[grpc.StatusCode]
) -> None:
    """Send ``payloads`` as serialized requests of a streaming ``method``; ``kind`` is unary_stream,
    stream_unary or stream_stream."""
    assert h.channel is not None
    factory = getattr(h.channel, kind)
    call = factory(method, request_serializer=None, response_deserializer=None)
    if kind == "unary_stream":
        await stream(h, f"{method} raw", call, payloads[0] if payloads else b"", allowed)
    elif kind == "stream_unary":
        await unary(h, f"{method} raw", call, paced(payloads), allowed)
    else:
        await stream(h, f"{method} raw", call, paced(payloads), allowed)


async def health_serving(h: Harness) -> None:
    """Assert the service's health is SERVING."""
    assert h.channel is not None
    stub = health_pb2_grpc.HealthStub(h.channel)
    reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=CASE_DEADLINE_S)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def fuzz_beside(h: Harness, healthy: Callable[[], Awaitable[None]], final_timeout: float = 60.0) -> Iterator[Harness]:
    """Yield ``h`` while ``healthy`` runs over and over beside the cases (a module fixture's body).

    Afterwards every healthy run must have passed (at least one), health must say SERVING, and
    one more healthy run must pass within ``final_timeout``: the service came through unharmed.
    """
    h.background(healthy)
    yield h
    assert h.finish_background() >= 1
    h.run(health_serving(h))
    h.run(healthy(), timeout=final_timeout)


class Peers:
    """The five non-orchestrator services, started in process once per session on the shared loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, workdir: Path) -> None:
        """Nothing starts until a module asks for a service."""
        self.loop = loop
        self.workdir = workdir
        self.stack = contextlib.AsyncExitStack()
        self.targets: dict[str, str] = {}

    def target(self, name: str) -> str:
        """host:port of service ``name`` (stt, tts, llm, cache, analytics), started on first use."""
        if name not in self.targets:
            app = _peer_app(name, self.workdir)
            server = MeshServer(app, app.settings)

            async def start() -> None:
                await asyncio.wait_for(self.stack.enter_async_context(server), 300)

            self.loop.run_until_complete(start())
            self.targets[name] = f"127.0.0.1:{server.port}"
        return self.targets[name]

    def all(self) -> dict[str, str]:
        """``<name>_target`` for every peer, as OrchestratorSettings takes them."""
        return {f"{name}_target": self.target(name) for name in ("stt", "tts", "llm", "cache", "analytics")}

    def close(self) -> None:
        """Stop every peer and the loop."""
        self.loop.run_until_complete(self.stack.aclose())
        # Request writers of streams the tests left open still wait for a next message: end them.
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()

        async def drain() -> None:
            await asyncio.gather(*pending, return_exceptions=True)

        self.loop.run_until_complete(drain())
        self.loop.close()


def _peer_app(name: str, workdir: Path) -> Any:
    local: dict[str, Any] = {"host": "127.0.0.1", "port": 0, "metrics_port": -1}
    if name == "stt":
        from stt_svc.app import SttApp
        from stt_svc.config import SttSettings

        return SttApp(SttSettings.from_env({}, **local))
    if name == "tts":
        from tts_svc.app import TtsApp
        from tts_svc.config import TtsSettings

        return TtsApp(TtsSettings.from_env({}, **local))
    if name == "llm":
        from llm_svc.app import LlmApp
        from llm_svc.config import LlmSettings

        return LlmApp(LlmSettings.from_env({}, **local))
    if name == "cache":
        from cache_svc.app import CacheApp
        from cache_svc.config import CacheSettings

        return CacheApp(CacheSettings.from_env({}, **local))
    from analytics_svc.app import AnalyticsApp
    from analytics_svc.config import AnalyticsSettings

    return AnalyticsApp(AnalyticsSettings.from_env({}, db_path=str(workdir / "analytics.db"), **local))


@pytest.fixture(scope="session")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peers]:
    """The shared loop and the in-process peers every fuzz module dials (each started once)."""
    running = Peers(asyncio.new_event_loop(), tmp_path_factory.mktemp("fuzz"))
    yield running
    running.close()


@contextlib.contextmanager
def harness(name: str, peers: Peers) -> Iterator[Harness]:
    """A harness on the session loop, closed at the end, printing its tally (``pytest -s`` shows it)."""
    h = Harness(name, peers.loop)
    try:
        yield h
    finally:
        print("\n" + h.summary())
        report = os.environ.get("VOICEBOT_FUZZ_REPORT")
        if report:
            with open(report, "a", encoding="utf-8") as out:
                out.write(h.summary() + "\n")
        h.close()


# Strategies shared by every module.

EDGE_INTS = st.sampled_from([0, 1, -1, 2**31 - 1, -(2**31), 2**15, 65535, 100, 1000, 8000, 16000, 60001])
INT32 = st.one_of(EDGE_INTS, st.integers(-(2**31), 2**31 - 1))
INT64 = st.one_of(EDGE_INTS, st.integers(-(2**63), 2**63 - 1))
FLOATS = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 2.0001, float("nan"), float("inf"), float("-inf"), 1e38]),
    st.floats(width=32),
)
ENUMS = st.one_of(st.integers(0, 4), st.integers(-(2**31), 2**31 - 1))
"""Enum values, unknown numbers included (proto3 enums are open)."""
HUGE = st.sampled_from([1025, 4097, 8193, 16385, 32769, 70000])


def audio_formats(
    plausible: st.SearchStrategy[audio_pb2.AudioFormat],
) -> st.SearchStrategy[audio_pb2.AudioFormat | None]:
    """An audio format: none at all, any field values, or one of ``plausible`` (close to what the service takes)."""
    anything = st.builds(audio_pb2.AudioFormat, encoding=ENUMS, sample_rate_hertz=INT32, channels=INT32)
    return st.one_of(st.none(), anything, plausible)


def text(max_size: int = 64) -> st.SearchStrategy[str]:
    """Strings: unicode of any category (lone surrogates excluded: protobuf refuses them), or huge."""
    small = st.text(max_size=max_size)
    huge = st.builds(lambda n, c: c * n, HUGE, st.sampled_from(["a", "é", "字", "😀", " ", "1"]))
    return st.one_of(small, small, small, huge)


def blobs(max_size: int = 4096) -> st.SearchStrategy[bytes]:
    """Bytes of odd and even lengths, empty, or just over the 64 KiB audio limit."""
    return st.one_of(
        st.binary(max_size=max_size),
        st.builds(lambda n: b"\x01" * n, st.sampled_from([0, 1, 3, 65535, 65536, 65537, 131072])),
    )


GARBAGE = st.one_of(
    st.binary(max_size=512),
    st.sampled_from([b"\xff", b"\x0a\xff\xff\xff\xff\x0f", b"\x08" + b"\xff" * 10, b"\x12\x05ab", b"\x00" * 8]),
)
"""Bytes that are mostly not a valid protobuf message (truncated lengths, bad varints, bad wire types)."""


END_MODES = st.sampled_from(["close", "close", "open", "cancel0", "cancel1", "slow"])
"""How a fuzzed stream ends: half-close, left open (the server waits for more), cancelled after 0 or 1
responses, or half-closed and read slowly."""


async def bidi(
    h: Harness,
    rpc: str,
    call: Callable[..., Any],
    requests: Sequence[Any],
    mode: str,
    allowed: Iterable[grpc.StatusCode],
    *,
    deadline_s: float = CASE_DEADLINE_S,
) -> list[Any]:
    """Run one bidi stream of ``requests`` ended the way ``mode`` says (see ``END_MODES``).

    A stream left open may end DEADLINE_EXCEEDED (it legitimately waits for more input); a half-closed
    one may not: it must end by itself within ``deadline_s``.
    """
    allowed = set(allowed)
    if mode == "open":
        return await stream(
            h,
            f"{rpc} open",
            call,
            paced(requests, hold_open=True),
            allowed | {C.DEADLINE_EXCEEDED},
            deadline_s=OPEN_DEADLINE_S,
        )
    if mode.startswith("cancel"):
        cancel_after = int(mode.removeprefix("cancel"))
        return await stream(
            h, f"{rpc} cancel", call, paced(requests, hold_open=True), allowed, cancel_after=cancel_after, deadline_s=2
        )
    gap = 0.02 if mode == "slow" else 0.0
    return await stream(h, rpc, call, paced(requests), allowed, deadline_s=deadline_s, read_gap_s=gap)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The full run's tests take longer than the suite's per-test timeout: give them an hour each."""
    if FULL:
        for item in items:
            if "tests/fuzz/" in str(item.path):
                item.add_marker(pytest.mark.timeout(3600))
