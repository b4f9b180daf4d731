"""Soak: memory growth of one orchestrator process over many short calls.

Boots the whole mesh on the ``timed`` engines (at short latencies, so calls are quick), then
places ``--calls`` short calls, ``--concurrency`` at a time, against the one orchestrator: each
call sends its config, acknowledges the greeting, says one turn (typed, or every second call
spoken as tone bursts sent as fast as the mesh takes them), waits for the answer and hangs up.
Tenants cycle over 100 names, so some turns hit the semantic cache and some run the model and
its tool loop.

The orchestrator's RSS (``VmRSS`` of ``/proc/<pid>/status``) is sampled every 1,000 calls after
a warm-up of ``--warmup`` calls; growth per 1,000 calls is the least-squares slope of those
samples. The in-memory session store keeps an ended session for ``session_ttl_s`` (resumable
reads, ``GetSession``), so the run sets it to ``--session-ttl-s`` (default 5 s): growth then
measures leaks, not retention. ``--session-ttl-s 3600`` (the default setting) shows the retention
(the final "after the TTL" sample is taken only for TTLs up to 60 s).

    python benchmarks/soak.py                         # 10,000 calls, about 3-5 minutes
    python benchmarks/soak.py --calls 3000 --warmup 500
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.load import ACK, HANG_UP, SILENCE, TONE, cpu_seconds, is_tone, rss_mb, timed_env
from mesh import dial
from orchestrator.caller import caller_format
from tests.conftest import free_port
from tests.integration.conftest import start_mesh
from voicebot.v1 import orchestrator_service_pb2 as pb
from voicebot.v1 import orchestrator_service_pb2_grpc

CALL_TIMEOUT_S = 30.0
SAMPLE_EVERY = 1000
TENANTS = 100
# Longest session TTL the run waits out at the end to show the settled RSS, in seconds.
SETTLE_MAX_S = 60
SPEECH_FRAMES = 24  # 480 ms of tone bursts
QUIET_FRAMES = 30  # 600 ms of silence: past the 500 ms endpoint


def soak_env(metrics_port: int, session_ttl_s: int) -> dict[str, str]:
    """The load test's timed mesh at short latencies, with the session TTL of the run."""
    env = timed_env(metrics_port)
    env.update(
        {
            "VOICEBOT_STT_TIMED_DECODE_MS": "10",
            "VOICEBOT_LLM_TIMED_TTFT_MS": "10",
            "VOICEBOT_LLM_TIMED_TOKEN_MS": "2",
            "VOICEBOT_TTS_TIMED_SYNTHESIS_MS": "5",
            "VOICEBOT_ORCHESTRATOR_SESSION_TTL_S": str(session_ttl_s),
        }
    )
    return env


async def short_call(stub: orchestrator_service_pb2_grpc.OrchestratorServiceStub, number: int, slot: int) -> None:
    """One call: config, greeting acknowledged, one turn, hang-up; raises on any failure."""
    call = stub.Converse(timeout=CALL_TIMEOUT_S)
    config = pb.SessionConfig(input_format=caller_format(), caller_id=f"soak-{slot}", tenant=f"t{number % TENANTS}")
    await call.write(pb.ConverseRequest(config=config))
    turn_ended = False
    wrote_turn = False
    async for reply in call:
        kind = reply.WhichOneof("output")
        if kind == "bot_audio" and not wrote_turn:
            wrote_turn = True
            await call.write(ACK)
            if number % 2:
                for frame in range(SPEECH_FRAMES + QUIET_FRAMES):
                    await call.write(TONE if frame < SPEECH_FRAMES and is_tone(frame) else SILENCE)
            else:
                await call.write(pb.ConverseRequest(control=pb.CallControl(text="what are your branch hours")))
        elif kind == "event" and reply.event.type == pb.CALL_EVENT_TYPE_TURN_ENDED and not turn_ended:
            turn_ended = True
            await call.write(ACK)
            await call.write(HANG_UP)
            await call.done_writing()
    if not turn_ended:
        raise RuntimeError("call ended before its turn did")


async def run(calls: int, concurrency: int, warmup: int, session_ttl_s: int) -> None:
    metrics_port = free_port()
    samples: list[tuple[int, float]] = []
    failures: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        print("starting the mesh on the timed engines ...", file=sys.stderr)
        mesh = await asyncio.to_thread(start_mesh, Path(tmp), **soak_env(metrics_port, session_ttl_s))
        try:
            orchestrator = mesh.child("orchestrator")
            pid = orchestrator.process.pid
            channel = dial(orchestrator.target)
            stub = orchestrator_service_pb2_grpc.OrchestratorServiceStub(channel)
            next_call = 0
            done = 0
            rss_start = rss_mb(pid)
            cpu0, wall0 = cpu_seconds(pid), time.monotonic()

            async def worker(slot: int) -> None:
                nonlocal next_call, done
                while next_call < calls:
                    number = next_call
                    next_call += 1
                    try:
                        await asyncio.wait_for(short_call(stub, number, slot), CALL_TIMEOUT_S)
                    except Exception as exc:  # counted and reported: a soak must not stop on one failure
                        key = type(exc).__name__ + (f" {exc.code().name}" if hasattr(exc, "code") else "")
                        failures[key] = failures.get(key, 0) + 1
                    done += 1
                    if done >= warmup and (done - warmup) % SAMPLE_EVERY == 0:
                        samples.append((done, rss_mb(pid)))
                        print(f"{done} calls: RSS {samples[-1][1]:.1f} MB", file=sys.stderr)

            await asyncio.gather(*(worker(i) for i in range(concurrency)))
            wall = time.monotonic() - wall0
            cpu = cpu_seconds(pid) - cpu0
            await channel.close()
            settled = math.nan
            if session_ttl_s <= SETTLE_MAX_S:
                await asyncio.sleep(session_ttl_s + 1)
                # Expiry is lazy (at the next session created): one more call, then the settled RSS.
                channel = dial(orchestrator.target)
                with contextlib.suppress(Exception):
                    await short_call(orchestrator_service_pb2_grpc.OrchestratorServiceStub(channel), calls, 0)
                await channel.close()
                settled = rss_mb(pid)
        finally:
            await asyncio.to_thread(mesh.stop)
    slope = per_thousand(samples)
    print(
        f"\n{calls} calls, {concurrency} at a time, session TTL {session_ttl_s} s, one orchestrator process "
        f"({calls / wall:.0f} calls/s, orchestrator CPU {100 * cpu / wall:.0f} % of a core)\n"
    )
    print("| calls done | orchestrator RSS MB | growth since first sample MB |")
    print("|---:|---:|---:|")
    first = samples[0][1] if samples else math.nan
    print(f"| 0 | {rss_start:.1f} | |")
    for done_at, rss in samples:
        print(f"| {done_at} | {rss:.1f} | {rss - first:+.1f} |")
    if not math.isnan(settled):
        print(f"| after TTL + 1 s | {settled:.1f} | {settled - first:+.1f} |")
    print(
        f"\ngrowth after the {warmup}-call warm-up: {slope:.2f} MB per 1,000 calls "
        f"(least-squares slope of {len(samples)} samples; target <= 1 MB); failed calls: {sum(failures.values())}"
        + (f" {failures}" if failures else "")
    )
    print(json.dumps({"samples": samples, "settled_mb": settled, "failures": failures}), file=sys.stderr)


def per_thousand(samples: list[tuple[int, float]]) -> float:
    """Least-squares slope of RSS (MB) against calls, per 1,000 calls."""
    if len(samples) < 2:
        return math.nan
    xs = [x for x, _ in samples]
    ys = [y for _, y in samples]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return 1000 * sum((x - mx) * (y - my) for x, y in samples) / sum((x - mx) ** 2 for x in xs)


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000, help="calls in all (after them, one more)")
    parser.add_argument("--concurrency", type=int, default=50, help="calls at once")
    parser.add_argument("--warmup", type=int, default=1000, help="calls before the first RSS sample")
    parser.add_argument("--session-ttl-s", type=int, default=5, help="VOICEBOT_ORCHESTRATOR_SESSION_TTL_S")
    args = parser.parse_args()
    asyncio.run(run(args.calls, args.concurrency, args.warmup, args.session_ttl_s))


if __name__ == "__main__":
    main()
