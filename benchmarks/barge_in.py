"""Barge-in: how fast speaking over the bot stops its model and synthesis streams (target <= 100 ms).

Boots the whole mesh on the ``timed`` engines (see ``benchmarks/load.py``), with a long answer so
the model is still generating when the caller interrupts. Each call, at real-time pace: the caller
hears the greeting, asks a question (speech-like tone bursts), waits for the answer's first audio,
waits ``--wait-ms`` more and speaks over it. The timed recogniser's first interim transcript comes
after 400 ms of speech, which passes the 300 ms barge-in threshold, so the orchestrator interrupts
on it. Measured:

- **orchestrator**: ``voicebot_barge_in_seconds`` from its ``/metrics`` (the decision -> the model
  stream and the synthesis stream cancelled and settled, BARGE_IN queued);
- **caller**: the triggering interim transcript's arrival -> the BARGE_IN event's arrival (both
  sent by the orchestrator, so this is its reaction as the caller sees it);
- **baseline, same run**: the final transcript's arrival -> TURN_STARTED of the question turn, the
  orchestrator's reaction to a transcript when there is nothing to cancel;
- bot audio of the interrupted turn that still reached the caller after BARGE_IN (must be 0), and
  llm_svc's cancelled generations (every interruption must cancel one).

    python benchmarks/barge_in.py                 # 20 interruptions
    python benchmarks/barge_in.py --calls 5       # the smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.load import ACK, HANG_UP, SILENCE, TONE, histogram_quantile, is_tone, metric_buckets, pct, timed_env
from mesh import dial
from orchestrator.caller import FRAME_MS, caller_format
from orchestrator.launcher import LocalMesh
from tests.conftest import free_port
from tests.integration.conftest import start_mesh
from voicebot.v1 import orchestrator_service_pb2 as pb
from voicebot.v1 import orchestrator_service_pb2_grpc

FRAME_S = FRAME_MS / 1000
TARGET_MS = 100.0
# Twelve sentences at 30 ms a word: the model is still writing seconds after the first audio.
LONG_ANSWER = " ".join(f"Point {n}: our branches are open Monday to Friday from nine to five." for n in range(12))


class Interrupter:
    """One call: greeting, a question, then speech over the answer; frames at real-time pace throughout."""

    def __init__(self) -> None:
        self.responses: list[tuple[float, pb.ConverseResponse]] = []
        self.arrived = asyncio.Event()

    async def _read(self, call: Any) -> None:
        async for response in call:
            self.responses.append((time.monotonic(), response))
            self.arrived.set()

    def _seen(self, predicate: Any, after: float = 0.0) -> tuple[float, pb.ConverseResponse] | None:
        return next(((t, r) for t, r in self.responses if t >= after and predicate(r)), None)

    async def run(
        self, stub: orchestrator_service_pb2_grpc.OrchestratorServiceStub, wait_ms: int, tenant: str
    ) -> dict[str, Any]:
        """Place the call (in its own cache ``tenant``, so the model answers); returns what was measured."""
        call = stub.Converse(timeout=120)
        reader = asyncio.create_task(self._read(call))
        config = pb.SessionConfig(input_format=caller_format(), tenant=tenant)
        await call.write(pb.ConverseRequest(config=config))
        started, frame = time.monotonic(), 0
        plan: list[tuple[str, int]] = [("greeting", 0), ("pause", 10), ("ask", 60), ("answer", 0), ("wait", 0)]
        plan += [("interrupt", 40), ("quiet", 50)]
        asked_at = interrupt_at = 0.0
        for phase, frames in plan:
            count = 0
            while True:
                if phase == "greeting" and self._seen(lambda r: r.WhichOneof("output") == "bot_audio"):
                    await call.write(ACK)
                    break
                if phase == "answer" and self._seen(_is_answer_audio, asked_at):
                    break
                if phase == "wait" and count * FRAME_MS >= wait_ms:
                    break
                if phase not in ("greeting", "answer", "wait") and count >= frames:
                    break
                speaking = phase in ("ask", "interrupt") and is_tone(count)
                if phase == "interrupt" and count == 0:
                    interrupt_at = time.monotonic()
                if phase == "ask" and count == 0:
                    asked_at = time.monotonic()
                await asyncio.sleep(max(0.0, started + frame * FRAME_S - time.monotonic()))
                await call.write(TONE if speaking else SILENCE)
                frame, count = frame + 1, count + 1
                if time.monotonic() - started > 60:
                    raise TimeoutError(f"stuck in phase {phase}")
        await call.write(HANG_UP)
        await call.done_writing()
        await asyncio.wait_for(reader, 30)
        return self._measure(asked_at, interrupt_at)

    def _measure(self, asked_at: float, interrupt_at: float) -> dict[str, Any]:
        barge = self._seen(_is_event(pb.CALL_EVENT_TYPE_BARGE_IN), interrupt_at)
        turn = self._seen(_is_event(pb.CALL_EVENT_TYPE_TURN_STARTED), asked_at)
        if barge is None or turn is None:
            raise RuntimeError("no barge-in" if barge is None else "no turn")
        barge_at, event = barge
        trigger_at = max(t for t, r in self.responses if t <= barge_at and r.WhichOneof("output") == "transcript")
        final_at = max(t for t, r in self.responses if t <= turn[0] and r.WhichOneof("output") == "transcript")
        late = sum(
            1
            for t, r in self.responses
            if t > barge_at and r.WhichOneof("output") == "bot_audio" and r.turn_index == event.turn_index
        )
        return {
            "barge_ms": (barge_at - trigger_at) * 1000,
            "baseline_ms": (turn[0] - final_at) * 1000,
            "late_audio": late,
            "position_ms": event.event.playback_position_ms,
        }


def _is_event(kind: int) -> Any:
    return lambda r: r.WhichOneof("output") == "event" and r.event.type == kind


def _is_answer_audio(response: pb.ConverseResponse) -> bool:
    return response.WhichOneof("output") == "bot_audio" and "Point" in response.bot_audio.segment_text


def cancelled_generations(port: int) -> float:
    """llm_svc's StreamingGenerate RPCs that ended CANCELLED."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    total = 0.0
    for labels, value in re.findall(r"^voicebot_rpc_total\{([^}]*)\} (\S+)$", text, re.M):
        if 'code="CANCELLED"' in labels and 'StreamingGenerate"' in labels:
            total += float(value)
    return total


async def run(calls: int, wait_ms: int) -> None:
    orchestrator_port, llm_port = free_port(), free_port()
    env = timed_env(orchestrator_port) | {
        "VOICEBOT_LLM_TIMED_ANSWER": LONG_ANSWER,
        "VOICEBOT_LLM_METRICS_PORT": str(llm_port),
        "VOICEBOT_LOG_LEVEL": "WARNING",
    }
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        print("starting the mesh on the timed engines ...", file=sys.stderr)
        mesh: LocalMesh = await asyncio.to_thread(start_mesh, Path(tmp), **env)
        try:
            before = metric_buckets(orchestrator_port, "voicebot_barge_in_seconds")
            cancelled_before = cancelled_generations(llm_port)
            async with dial(mesh.child("orchestrator").target) as channel:
                stub = orchestrator_service_pb2_grpc.OrchestratorServiceStub(channel)
                for number in range(calls):
                    row = await Interrupter().run(stub, wait_ms, f"barge-in-{number}")
                    rows.append(row)
                    print(f"call {number + 1}: {json.dumps(row)}", file=sys.stderr)
            after = metric_buckets(orchestrator_port, "voicebot_barge_in_seconds")
            cancelled = cancelled_generations(llm_port) - cancelled_before
        finally:
            await asyncio.to_thread(mesh.stop)
    report(rows, before, after, cancelled)


def report(rows: list[dict[str, Any]], before: dict[float, float], after: dict[float, float], cancelled: float) -> None:
    """Print the markdown table."""
    inside_p50, count = histogram_quantile(before, after, 0.50)
    inside_p95, _ = histogram_quantile(before, after, 0.95)
    barge = [r["barge_ms"] for r in rows]
    base = [r["baseline_ms"] for r in rows]
    print(f"\n{len(rows)} interruptions ({count} seen by the orchestrator), timed engines\n")
    print("| measure | p50 ms | p95 ms | p95 / 100 ms target | p50 / baseline p50 |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| orchestrator: decision -> model and synthesis cancelled, BARGE_IN queued | {inside_p50 * 1000:.1f} "
        f"| {inside_p95 * 1000:.1f} | {inside_p95 * 1000 / TARGET_MS:.2f} | |"
    )
    print(
        f"| caller: triggering interim -> BARGE_IN | {pct(barge, 0.5):.1f} | {pct(barge, 0.95):.1f} "
        f"| {pct(barge, 0.95) / TARGET_MS:.2f} | {pct(barge, 0.5) / pct(base, 0.5):.2f}x |"
    )
    print(
        f"| baseline: final transcript -> TURN_STARTED (nothing to cancel) | {pct(base, 0.5):.1f} "
        f"| {pct(base, 0.95):.1f} | | 1.00x |"
    )
    late = sum(r["late_audio"] for r in rows)
    print(
        f"\nbot audio of an interrupted turn after its BARGE_IN: {late}; "
        f"llm_svc generations cancelled: {cancelled:.0f} of {len(rows)}"
    )


def main() -> None:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20, help="interruptions to measure (one call each)")
    parser.add_argument("--wait-ms", type=int, default=300, help="answer audio heard before speaking over it")
    args = parser.parse_args()
    asyncio.run(run(args.calls, args.wait_ms))


if __name__ == "__main__":
    main()
