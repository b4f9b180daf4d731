"""Load: how many simultaneous real-time calls one orchestrator process sustains.

Boots the whole mesh as processes with the ``timed`` engines (fixed output at production-like
latencies and no model compute, see ``stt_svc/engines/timed.py`` and its llm and tts siblings), so
what is measured is the mesh. Then, for each step N (10, 25, 50, 100, ...), N callers talk at once
for ``--step-s`` seconds. Each caller streams 20 ms frames at real-time pace for the whole call
(silence while it listens), acknowledges the greeting, and speaks ``--turns`` turns of synthetic
speech-like audio (tone bursts, ``--speech-ms`` long), each once the previous answer ended; then
hangs up and calls again with a new tenant (so each call's first question misses the cache).

Measured per step:

- **frame forwarding delay**: ``voicebot_frame_forward_seconds`` from the orchestrator's
  ``/metrics`` (caller frame received -> handed to the stt stream), p95 over the step;
- **send lag**: client side, a frame's real-time due time -> written to the call (the load
  generator shares the 2 cores, so this shows when the client itself falls behind);
- **voice-to-voice**: client side, the last speech frame written -> the first bot audio of that
  turn; its overhead is that minus what the timed engines take by construction (endpointing
  silence, decode, model rounds to the first sentence end, one synthesis);
- orchestrator CPU (from /proc, % of one core) and RSS, failed calls.

The run stops at the first step that does not hold: p95 forwarding delay over 20 ms, more than
1 % of calls failed, or the client's own send lag p95 over 100 ms (then the load generator, which
shares the cores, no longer offers real-time load); the largest step that held is reported.

    python benchmarks/load.py                       # steps 10 25 50 75 100 150 200, 20 s each
    python benchmarks/load.py --nice 10             # the rest of the mesh and the client niced
    python benchmarks/load.py --steps 5 --step-s 8  # the smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mesh import audio, dial
from orchestrator.caller import CALLER_RATE, FRAME_MS, caller_format
from orchestrator.launcher import LocalMesh
from tests.conftest import free_port
from tests.integration.conftest import start_mesh
from voicebot.v1 import orchestrator_service_pb2 as pb
from voicebot.v1 import orchestrator_service_pb2_grpc

FRAME_S = FRAME_MS / 1000
# Timed engine settings of the run (also what "the engines' own latency" is computed from).
ENDPOINT_MS = 500  # stt_svc's default endpointing silence (the orchestrator sends 0)
DECODE_MS = 100
TTFT_MS = 150
TOKEN_MS = 30
SYNTH_MS = 100
TOOL_ARGUMENTS = '{"principal": 20000, "annual_rate_percent": 6, "term_months": 60}'
ANSWER = "Our branches are open Monday to Friday from nine to five. Is there anything else I can help you with?"
CALLS_PER_CHANNEL = 50
TURN_TIMEOUT_S = 30.0
FORWARD_LIMIT_S = 0.020
# A step whose client fell further behind real time than this did not offer real-time load.
CLIENT_LAG_LIMIT_S = 0.100


def timed_env(metrics_port: int) -> dict[str, str]:
    """Environment of a mesh on the timed engines with limits above any step."""
    return {
        "VOICEBOT_STT_ENGINE": "timed",
        "VOICEBOT_LLM_ENGINE": "timed",
        "VOICEBOT_TTS_ENGINE": "timed",
        "VOICEBOT_STT_TIMED_DECODE_MS": str(DECODE_MS),
        "VOICEBOT_LLM_TIMED_TTFT_MS": str(TTFT_MS),
        "VOICEBOT_LLM_TIMED_TOKEN_MS": str(TOKEN_MS),
        "VOICEBOT_LLM_TIMED_ANSWER": ANSWER,
        "VOICEBOT_LLM_TIMED_TOOL_ARGUMENTS": TOOL_ARGUMENTS,
        "VOICEBOT_TTS_TIMED_SYNTHESIS_MS": str(SYNTH_MS),
        "VOICEBOT_STT_MAX_STREAMS": "5000",
        "VOICEBOT_TTS_MAX_STREAMS": "5000",
        "VOICEBOT_TTS_MAX_PENDING": "6000",
        "VOICEBOT_MAX_CONCURRENT_RPCS": "20000",
        "VOICEBOT_ORCHESTRATOR_MAX_CALLS": "5000",
        "VOICEBOT_ORCHESTRATOR_RATE_LIMIT_CALLS_PER_MINUTE": "0",
        "VOICEBOT_ORCHESTRATOR_RATE_LIMIT_MAX_CONCURRENT": "0",
        "VOICEBOT_ORCHESTRATOR_METRICS_PORT": str(metrics_port),
        "VOICEBOT_LOG_LEVEL": "WARNING",
    }


def engines_ms() -> tuple[float, float]:
    """What the timed engines take from end of speech to first audio: a model turn, a cache-hit turn.

    Model turn: endpointing silence, decode, the tool-call round whole, the answering round up to
    the end of its first sentence, one synthesis delay. A cache hit skips both model rounds.
    """
    pieces = math.ceil(len(TOOL_ARGUMENTS) / 16)
    first_sentence_words = len(ANSWER.split(".")[0].split())
    tool_round = TTFT_MS + pieces * TOKEN_MS
    answer_round = TTFT_MS + (first_sentence_words - 1) * TOKEN_MS
    model = ENDPOINT_MS + DECODE_MS + tool_round + answer_round + SYNTH_MS
    return model, ENDPOINT_MS + DECODE_MS + SYNTH_MS


def frame_requests() -> tuple[pb.ConverseRequest, pb.ConverseRequest]:
    """One 20 ms frame of tone and one of silence, as ready requests (reused for every frame)."""
    fmt = audio.PcmFormat(audio.LINEAR16, CALLER_RATE)
    t = np.arange(CALLER_RATE * FRAME_MS // 1000) / CALLER_RATE
    tone = (0.3 * np.sin(2 * np.pi * 250 * t)).astype(np.float32)  # 5 whole cycles: frames join smoothly
    silence = np.zeros_like(tone)
    return (
        pb.ConverseRequest(audio=audio.encode(tone, fmt)),
        pb.ConverseRequest(audio=audio.encode(silence, fmt)),
    )


TONE, SILENCE = frame_requests()
ACK = pb.ConverseRequest(control=pb.CallControl(playback_position_ms=3_600_000))
HANG_UP = pb.ConverseRequest(control=pb.CallControl(hang_up=pb.HangUp(reason="load test done")))


def is_tone(frame: int) -> bool:
    """Speech-like bursts: 240 ms of tone, 60 ms of quiet."""
    return frame % 15 < 12


@dataclass
class Step:
    """What one step's callers saw."""

    calls: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    lags: list[float] = field(default_factory=list)
    v2v_model: list[float] = field(default_factory=list)
    v2v_cached: list[float] = field(default_factory=list)
    orchestrator_v2v: list[float] = field(default_factory=list)


class Caller:
    """One call: frames at real-time pace from start to hang-up, the turns scripted on top."""

    def __init__(self, stub: orchestrator_service_pb2_grpc.OrchestratorServiceStub, name: str, turns: int) -> None:
        self.stub = stub
        self.name = name
        self.turns = turns
        self.greeted = asyncio.Event()
        self.turn_ended = asyncio.Event()
        self.speech_end: float | None = None
        self.first_audio: float | None = None
        self.latency_ms: float | None = None
        self.llm_ms = 0
        self.ended_detail = ""
        self.phase = "config"

    async def run(self, step: Step, speech_frames: int) -> None:
        call = self.stub.Converse(timeout=120)
        config = pb.SessionConfig(input_format=caller_format(), caller_id=self.name, tenant=self.name)
        reader = asyncio.create_task(self._read(call))
        try:
            await call.write(pb.ConverseRequest(config=config))
            await self._talk(call, step, speech_frames)
            await call.done_writing()
            await asyncio.wait_for(reader, TURN_TIMEOUT_S)
            step.calls += 1
        except Exception as exc:  # counted, whatever broke: the step's verdict needs every failure
            step.calls += 1
            step.failed += 1
            key = type(exc).__name__ + (f" {exc.code().name}" if hasattr(exc, "code") else "")
            if isinstance(exc, asyncio.InvalidStateError):  # the orchestrator ended the call: say how
                key += (
                    f" (call ended: {(await call.code()).name}, CALL_ENDED {self.ended_detail!r}, "
                    f"caller in phase {self.phase!r})"
                )
            step.errors[key] = step.errors.get(key, 0) + 1
            call.cancel()
        finally:
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader

    async def _read(self, call: object) -> None:
        async for reply in call:  # type: ignore[attr-defined]
            kind = reply.WhichOneof("output")
            if kind == "bot_audio":
                self.greeted.set()
                if self.speech_end is not None and self.first_audio is None:
                    self.first_audio = time.monotonic()
            elif kind == "latency":
                self.latency_ms, self.llm_ms = reply.latency.first_audio_ms, reply.latency.llm_compute_ms
            elif kind == "event" and reply.event.type == pb.CALL_EVENT_TYPE_TURN_ENDED:
                self.turn_ended.set()
            elif kind == "event" and reply.event.type == pb.CALL_EVENT_TYPE_CALL_ENDED:
                self.ended_detail = reply.event.detail

    async def _talk(self, call: object, step: Step, speech_frames: int) -> None:
        write = call.write  # type: ignore[attr-defined]
        started = time.monotonic()
        frame = 0
        phase, phase_frames, turns_done = "greeting", 0, 0
        phase_deadline = started + TURN_TIMEOUT_S
        while True:
            due = started + frame * FRAME_S
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            speaking = phase == "speak"
            await write(TONE if speaking and is_tone(phase_frames) else SILENCE)
            now = time.monotonic()
            step.lags.append(now - due)
            frame += 1
            phase_frames += 1
            self.phase = f"{phase}, turn {turns_done + 1}"
            if phase == "greeting" and self.greeted.is_set():
                await write(ACK)
                phase, phase_frames = "pause", 0
            elif phase == "pause" and phase_frames >= 15:
                phase, phase_frames = "speak", 0
            elif phase == "speak" and phase_frames >= speech_frames and not is_tone(phase_frames):
                self.speech_end, self.first_audio, self.latency_ms = now, None, None
                self.turn_ended.clear()
                phase, phase_frames, phase_deadline = "answer", 0, now + TURN_TIMEOUT_S
            elif phase == "answer" and self.turn_ended.is_set():
                if self.first_audio is None or self.speech_end is None:
                    raise RuntimeError("turn ended without bot audio")
                v2v = (self.first_audio - self.speech_end) * 1000
                (step.v2v_model if self.llm_ms > 0 else step.v2v_cached).append(v2v)
                if self.latency_ms is not None:
                    step.orchestrator_v2v.append(self.latency_ms)
                self.speech_end = None
                await write(ACK)
                turns_done += 1
                if turns_done >= self.turns:
                    await write(HANG_UP)
                    return
                phase, phase_frames = "pause", 0
            if now > phase_deadline and phase in ("greeting", "answer"):
                raise TimeoutError(f"no {phase} within {TURN_TIMEOUT_S:.0f} s")


def metric_buckets(port: int, name: str = "voicebot_frame_forward_seconds") -> dict[float, float]:
    """Cumulative bucket counts of histogram ``name`` (one without labels) from the ``/metrics`` on ``port``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    buckets = {}
    for le, count in re.findall(rf'^{name}_bucket\{{le="([^"]+)"\}} (\S+)$', text, re.M):
        buckets[math.inf if le == "+Inf" else float(le)] = float(count)
    return buckets


def histogram_quantile(before: dict[float, float], after: dict[float, float], q: float) -> tuple[float, int]:
    """The ``q`` quantile (seconds, linear within a bucket, as Prometheus does) of the observations between."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0.0
    if total <= 0:
        return math.nan, 0
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if count >= rank:
            if math.isinf(bound):
                return lower, int(total)
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0), int(total)
        lower, below = bound, count
    return lower, int(total)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def run_step(target: str, n: int, step_s: float, turns: int, speech_ms: int, label: str) -> Step:
    """``n`` callers, each calling again until ``step_s`` has passed."""
    step = Step()
    channels = [dial(target) for _ in range(math.ceil(n / CALLS_PER_CHANNEL))]
    stubs = [orchestrator_service_pb2_grpc.OrchestratorServiceStub(c) for c in channels]
    end_at = time.monotonic() + step_s
    speech_frames = max(1, speech_ms // FRAME_MS)

    async def slot(index: int) -> None:
        await asyncio.sleep(index * FRAME_S / max(1, n) + (index % 10) * 0.1)  # spread the frame phases
        number = 0
        while time.monotonic() < end_at:
            caller = Caller(stubs[index // CALLS_PER_CHANNEL], f"{label}-{index}-{number}", turns)
            await caller.run(step, speech_frames)
            number += 1

    try:
        await asyncio.gather(*(slot(i) for i in range(n)))
    finally:
        for channel in channels:
            await channel.close()
    return step


async def run(
    steps: list[int], step_s: float, turns: int, speech_ms: int, nice: int, max_failed: float, workdir: str
) -> None:
    metrics_port = free_port()
    model_ms, cached_ms = engines_ms()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        print("starting the mesh on the timed engines ...", file=sys.stderr)
        mesh: LocalMesh = await asyncio.to_thread(start_mesh, Path(workdir or tmp), **timed_env(metrics_port))
        try:
            orchestrator = mesh.child("orchestrator")
            pid, target = orchestrator.process.pid, orchestrator.target
            if nice:
                for child in mesh.children:
                    if child is not orchestrator:
                        os.setpriority(os.PRIO_PROCESS, child.process.pid, nice)
                os.setpriority(os.PRIO_PROCESS, 0, nice)
            await run_step(target, 2, 3.0, 1, speech_ms, "warmup")
            for n in steps:
                print(f"step: {n} calls for {step_s:.0f} s ...", file=sys.stderr)
                before, cpu0, wall0 = metric_buckets(metrics_port), cpu_seconds(pid), time.monotonic()
                step = await run_step(target, n, step_s, turns, speech_ms, f"n{n}")
                after, cpu1, wall1 = metric_buckets(metrics_port), cpu_seconds(pid), time.monotonic()
                p95, frames = histogram_quantile(before, after, 0.95)
                p50, _ = histogram_quantile(before, after, 0.50)
                row = {
                    "n": n,
                    "calls": step.calls,
                    "failed": step.failed,
                    "errors": step.errors,
                    "frames": frames,
                    "forward_p50_ms": p50 * 1000,
                    "forward_p95_ms": p95 * 1000,
                    "lag_p95_ms": pct(step.lags, 0.95) * 1000,
                    "lag_p99_ms": pct(step.lags, 0.99) * 1000,
                    "v2v_model_p50_ms": pct(step.v2v_model, 0.5),
                    "v2v_model_p95_ms": pct(step.v2v_model, 0.95),
                    "v2v_cached_p50_ms": pct(step.v2v_cached, 0.5),
                    "orch_v2v_p50_ms": pct(step.orchestrator_v2v, 0.5),
                    "turns_model": len(step.v2v_model),
                    "turns_cached": len(step.v2v_cached),
                    "cpu_pct": 100 * (cpu1 - cpu0) / (wall1 - wall0),
                    "rss_mb": rss_mb(pid),
                }
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
                if not held(row, max_failed) or not frames:
                    break
        finally:
            await asyncio.to_thread(mesh.stop)
    report(rows, model_ms, cached_ms, step_s, turns, speech_ms, max_failed)


def held(row: dict[str, Any], max_failed: float) -> bool:
    """Whether a step held: forwarding p95 within 20 ms, few failures, and the client kept real time."""
    return bool(
        row["forward_p95_ms"] <= FORWARD_LIMIT_S * 1000
        and row["failed"] <= max_failed * row["calls"]
        and row["lag_p95_ms"] <= CLIENT_LAG_LIMIT_S * 1000
    )


def report(
    rows: list[dict[str, Any]],
    model_ms: float,
    cached_ms: float,
    step_s: float,
    turns: int,
    speech_ms: int,
    max_failed: float,
) -> None:
    """Print the markdown tables."""
    good = [r for r in rows if held(r, max_failed)]
    print(
        f"\n{step_s:.0f} s per step, {turns} turns per call, {speech_ms} ms of caller speech per turn, "
        f"timed engines (end of speech -> first audio: model turn {model_ms:.0f} ms, "
        f"cache-hit turn {cached_ms:.0f} ms)\n"
    )
    print(
        "| calls at once | calls done | failed | frame fwd p50 ms | frame fwd p95 ms | send lag p95 ms "
        "| v2v model p50 ms | v2v model p95 ms | overhead p50 ms | overhead p50 vs N=first | v2v cache hit p50 ms "
        "| orchestrator CPU % of a core | RSS MB |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    base = rows[0]["v2v_model_p50_ms"] - model_ms if rows else math.nan
    for r in rows:
        overhead = r["v2v_model_p50_ms"] - model_ms
        print(
            f"| {r['n']} | {r['calls']} | {r['failed']} | {r['forward_p50_ms']:.2f} | {r['forward_p95_ms']:.2f} "
            f"| {r['lag_p95_ms']:.1f} | {r['v2v_model_p50_ms']:.0f} | {r['v2v_model_p95_ms']:.0f} | {overhead:.0f} "
            f"| {overhead / base if base > 0 else math.nan:.2f}x | {r['v2v_cached_p50_ms']:.0f} "
            f"| {r['cpu_pct']:.0f} | {r['rss_mb']:.0f} |"
        )
    if good:
        best = good[-1]
        print(
            f"\nlargest N that held (p95 frame forwarding <= 20 ms, <= {100 * max_failed:g} % failed, "
            f"client send lag p95 <= {CLIENT_LAG_LIMIT_S * 1000:.0f} ms): "
            f"{best['n']} calls; "
            f"voice-to-voice p50 {best['v2v_model_p50_ms']:.0f} ms = timed engines {model_ms:.0f} ms "
            f"+ {best['v2v_model_p50_ms'] - model_ms:.0f} ms overhead (target >= 100 calls)"
        )
    else:
        print("\nno step held")


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 25, 50, 75, 100, 150, 200], help="calls at once")
    parser.add_argument("--step-s", type=float, default=20.0, help="seconds each step runs")
    parser.add_argument("--turns", type=int, default=2, help="turns per call")
    parser.add_argument("--speech-ms", type=int, default=1500, help="caller speech per turn, ms")
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="niceness for the other five services and this load generator (e.g. 10), so that on a shared "
        "machine the orchestrator gets the CPU first",
    )
    parser.add_argument("--max-failed-pct", type=float, default=1.0, help="failed calls a step may have, %%")
    parser.add_argument("--workdir", default="", help="keep the services' logs and state here (default: a temp dir)")
    args = parser.parse_args()
    asyncio.run(
        run(args.steps, args.step_s, args.turns, args.speech_ms, args.nice, args.max_failed_pct / 100, args.workdir)
    )


if __name__ == "__main__":
    main()
