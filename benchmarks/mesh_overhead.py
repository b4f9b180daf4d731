"""What the mesh runtime costs: bidi echo through ``MeshServer`` vs a bare ``grpc.aio`` server.

Each round trip is one 640-byte frame (20 ms of 16 kHz LINEAR16) written on a bidi stream and
read back. Both servers run the same echo handler in their own process, so client and server
each get a core; the mesh server has every interceptor on (request ids, bearer-token auth,
Prometheus metrics, OpenTelemetry spans with an in-process span processor, error mapping).
Variants are interleaved over several rounds and the median round is reported, because these
machines are noisy.

    python benchmarks/mesh_overhead.py            # ~1 minute
    python benchmarks/mesh_overhead.py --frames 1000 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

METHOD = "/bench.Echo/Echo"
TOKEN = "bench-token"
FRAME = bytes(640)


async def _echo(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    async for frame in requests:
        yield frame


def _echo_handler() -> grpc.GenericRpcHandler:
    handler = grpc.stream_stream_rpc_method_handler(_echo)  # bytes in, bytes out: no serialisation cost
    return grpc.method_handlers_generic_handler("bench.Echo", {"Echo": handler})


async def _serve(kind: str, port: int) -> None:
    if kind == "bare":
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((_echo_handler(),))
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        print("ready", flush=True)
        await server.wait_for_termination()
        return

    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from mesh.server import MeshServer, ServicerApp
    from mesh.settings import ServiceSettings

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)

    class EchoApp(ServicerApp):
        name = "bench"
        engine_name = "echo"

        def register(self, server: grpc.aio.Server) -> Sequence[str]:
            server.add_generic_rpc_handlers((_echo_handler(),))
            return ["bench.Echo"]

    class BenchSettings(ServiceSettings):
        service = "bench"

    settings = BenchSettings.from_env({}, host="127.0.0.1", port=port, metrics_port=-1, auth_token=TOKEN)
    mesh = MeshServer(EchoApp(), settings)
    await mesh.start()
    print("ready", flush=True)
    await mesh.wait()


async def _stream(channel: grpc.aio.Channel, frames: int, metadata: tuple[tuple[str, str], ...]) -> list[float]:
    call = channel.stream_stream(METHOD)(metadata=metadata)
    rtts = []
    for _ in range(frames):
        started = time.perf_counter()
        await call.write(FRAME)
        await call.read()
        rtts.append(time.perf_counter() - started)
    await call.done_writing()
    await call.code()
    return rtts


async def _measure(
    port: int, streams: int, frames: int, metadata: tuple[tuple[str, str], ...]
) -> tuple[float, float, float]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        await _stream(channel, 50, metadata)  # warm the connection and the server's code paths
        started = time.perf_counter()
        results = await asyncio.gather(*(_stream(channel, frames, metadata) for _ in range(streams)))
        elapsed = time.perf_counter() - started
    rtts = sorted(r for result in results for r in result)
    p50 = rtts[len(rtts) // 2] * 1000
    p99 = rtts[min(len(rtts) - 1, int(len(rtts) * 0.99))] * 1000
    return len(rtts) / elapsed, p50, p99


def _start(kind: str, port: int) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, "--port", str(port)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        raise RuntimeError(f"{kind} server did not start")
    return process


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    """Run the comparison and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", choices=["bare", "mesh"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--frames", type=int, default=300, help="round trips per stream (a call's worth of frames)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per variant; the median is reported")
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve, args.port))
        return

    servers = {kind: (port := _free_port(), _start(kind, port)) for kind in ("bare", "mesh")}
    metadata = {"bare": (), "mesh": (("authorization", f"Bearer {TOKEN}"),)}
    results: dict[tuple[str, int], list[tuple[float, float, float]]] = {}
    try:
        for _ in range(args.rounds):
            for streams in (1, 100):
                for kind in ("bare", "mesh"):
                    port = servers[kind][0]
                    measured = asyncio.run(_measure(port, streams, args.frames, metadata[kind]))
                    results.setdefault((kind, streams), []).append(measured)
    finally:
        for _, process in servers.values():
            process.terminate()
            process.wait()

    def median(kind: str, streams: int) -> tuple[float, float, float]:
        runs = results[(kind, streams)]
        return tuple(statistics.median(r[i] for r in runs) for i in range(3))  # type: ignore[return-value]

    print(
        f"bidi echo, 640-byte frames, {args.frames} round trips per stream,"
        f" median of {args.rounds} interleaved rounds\n"
    )
    print("| streams | server | msgs/s | p50 ms | p99 ms | throughput vs bare | added p99 ms |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for streams in (1, 100):
        bare = median("bare", streams)
        for kind in ("bare", "mesh"):
            rate, p50, p99 = median(kind, streams)
            ratio = f"{rate / bare[0]:.2f}x" if kind == "mesh" else "1.00x"
            added = f"{p99 - bare[2]:+.2f}" if kind == "mesh" else ""
            print(f"| {streams} | {kind} | {rate:,.0f} | {p50:.2f} | {p99:.2f} | {ratio} | {added} |")
    print("\ntargets: mesh throughput >= 0.85x bare; added p99 <= 1 ms")


if __name__ == "__main__":
    main()
