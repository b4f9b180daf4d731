"""Voice-to-voice latency: the streaming pipeline against a sequential baseline, in the same run.

Starts the whole mesh on its embedded engines (each service its own process) and speaks a
scripted set of caller questions in real time (20 ms frames), each with different figures so the
semantic cache cannot answer them:

- **streaming**: through the orchestrator (``Converse``): the answer is spoken sentence by
  sentence while the model is still generating. Voice-to-voice is measured at the caller: from
  the end of the caller's speech (the last speech frame sent) to the first bot audio received.
- **sequential**: the same services called one after another by this script: the whole
  transcript (stt_svc), then the whole answer with the same tool loop (llm_svc plus the banking
  tools), then the whole synthesis (tts_svc); voice-to-voice ends when the last audio arrives.

The mesh's own share is, per streaming turn, voice-to-voice as the orchestrator measured it minus
what the engines reported: the recogniser's endpointing and decode (end of speech to final
transcript), the model's time, the cache lookup and the first sentence's synthesis.

    python benchmarks/voice_latency.py              # 6 questions each way, about 3 minutes
    python benchmarks/voice_latency.py --turns 12
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mesh import audio, dial
from orchestrator.banking.runner import BankingToolRunner
from orchestrator.banking.store import AccountStore
from orchestrator.caller import CALLER_RATE, FRAME_MS, caller_format
from orchestrator.demo import speak_lines
from orchestrator.sessions import SessionState
from orchestrator.tools import SYSTEM_PROMPT, TOOLS
from orchestrator.turn import tool_definitions
from tests.integration.conftest import start_mesh
from voicebot.v1 import (
    llm_service_pb2,
    llm_service_pb2_grpc,
    orchestrator_service_pb2_grpc,
    stt_service_pb2,
    stt_service_pb2_grpc,
    tts_service_pb2,
    tts_service_pb2_grpc,
)
from voicebot.v1 import orchestrator_service_pb2 as pb

PCM = audio.PcmFormat(audio.LINEAR16, CALLER_RATE)
SILENCE_S = 1.2


def questions(count: int) -> list[str]:
    """Caller questions with figures no earlier question had."""
    base = [
        "I'd like a quote for a loan of {a} thousand dollars over {y} years at {r} percent.",
        "How much would a mortgage of {b} thousand dollars cost per month over thirty years at {r} percent?",
        "What are the opening hours of your riverside branch on saturday?",
    ]
    out = []
    for i in range(count):
        template = base[i % len(base)]
        out.append(template.format(a=11 + 3 * i, y=2 + i % 5, r=4 + i % 4, b=150 + 25 * i))
    return out


def frames(samples: np.ndarray) -> tuple[list[bytes], int]:
    """Wire frames of the utterance plus trailing silence, and how many frames are speech."""
    speech = audio.split_chunks(audio.encode(samples, PCM), PCM, FRAME_MS)
    silence = audio.split_chunks(bytes(PCM.bytes_for_ms(SILENCE_S * 1000)), PCM, FRAME_MS)
    return speech + silence, len(speech)


async def paced(chunks: list[bytes], speech_frames: int, marks: dict[str, float]) -> AsyncIterator[bytes]:
    started = time.monotonic()
    for index, chunk in enumerate(chunks):
        await asyncio.sleep(max(0.0, started + index * FRAME_MS / 1000 - time.monotonic()))
        yield chunk
        if index == speech_frames - 1:
            marks["speech_end"] = time.monotonic()


async def stream_one(stub: orchestrator_service_pb2_grpc.OrchestratorServiceStub, samples: np.ndarray) -> dict | None:
    """One call through the orchestrator asking one question; its figures, or None if no answer came."""
    chunks, speech_frames = frames(samples)
    marks: dict[str, float] = {}
    outbox: asyncio.Queue[pb.ConverseRequest | None] = asyncio.Queue()

    async def requests() -> AsyncIterator[pb.ConverseRequest]:
        yield pb.ConverseRequest(config=pb.SessionConfig(input_format=caller_format()))
        while (request := await outbox.get()) is not None:
            yield request

    async def talk() -> None:
        async for chunk in paced(chunks, speech_frames, marks):
            await outbox.put(pb.ConverseRequest(audio=chunk))

    sender: asyncio.Task[None] | None = None
    latency = None
    async for reply in stub.Converse(requests(), timeout=120):
        kind = reply.WhichOneof("output")
        if kind == "bot_audio" and sender is None:
            # The greeting is playing: acknowledge it as played, then speak.
            await outbox.put(pb.ConverseRequest(control=pb.CallControl(playback_position_ms=60_000)))
            sender = asyncio.create_task(talk())
        elif kind == "bot_audio" and "speech_end" in marks and "first_audio" not in marks:
            marks["first_audio"] = time.monotonic()
        elif kind == "latency":
            latency = reply.latency
        elif kind == "event" and reply.event.type == pb.CALL_EVENT_TYPE_TURN_ENDED and latency is not None:
            await outbox.put(pb.ConverseRequest(control=pb.CallControl(hang_up=pb.HangUp())))
            await outbox.put(None)
    if sender is not None:
        await sender
    if latency is None or "first_audio" not in marks:
        return None
    engines = latency.final_transcript_ms + latency.llm_compute_ms + latency.tts_compute_ms + latency.cache_ms
    return {
        "voice_to_voice_ms": (marks["first_audio"] - marks["speech_end"]) * 1000,
        "orchestrator_v2v_ms": latency.first_audio_ms,
        "mesh_share_ms": latency.first_audio_ms - engines,
        "final_transcript_ms": latency.final_transcript_ms,
        "first_token_ms": latency.first_token_ms,
        "stt_ms": latency.stt_compute_ms,
        "llm_ms": latency.llm_compute_ms,
        "tts_ms": latency.tts_compute_ms,
        "cache_ms": latency.cache_ms,
    }


async def streaming(target: str, utterances: list[np.ndarray]) -> list[dict]:
    """One call per question through the orchestrator; returns per-turn figures."""
    async with dial(target) as channel:
        stub = orchestrator_service_pb2_grpc.OrchestratorServiceStub(channel)
        results = [await stream_one(stub, samples) for samples in utterances]
    return [r for r in results if r is not None]


async def sequential(targets: dict[str, str], utterances: list[np.ndarray], runner: BankingToolRunner) -> list[float]:
    """Whole transcript, then whole answer, then whole synthesis; returns voice-to-voice per question."""
    tools = tool_definitions(list(TOOLS))
    out = []
    async with dial(targets["stt"]) as stt_ch, dial(targets["llm"]) as llm_ch, dial(targets["tts"]) as tts_ch:
        stt = stt_service_pb2_grpc.SttServiceStub(stt_ch)
        llm = llm_service_pb2_grpc.LlmServiceStub(llm_ch)
        tts = tts_service_pb2_grpc.TtsServiceStub(tts_ch)
        for samples in utterances:
            chunks, speech_frames = frames(samples)
            marks: dict[str, float] = {}

            async def recognize() -> AsyncIterator[stt_service_pb2.StreamingRecognizeRequest]:
                config = stt_service_pb2.RecognitionConfig(audio_format=caller_format())
                yield stt_service_pb2.StreamingRecognizeRequest(config=config)
                async for chunk in paced(chunks, speech_frames, marks):  # noqa: B023
                    yield stt_service_pb2.StreamingRecognizeRequest(audio=chunk)

            transcript = ""
            async for reply in stt.StreamingRecognize(recognize(), timeout=60):
                if reply.WhichOneof("streaming_response") == "result" and reply.result.is_final:
                    transcript = reply.result.transcript
                    break
            session = SessionState("bench", "", "en-US", "demo-bank", "", "")
            messages = [
                llm_service_pb2.ChatMessage(role=llm_service_pb2.ROLE_SYSTEM, content=SYSTEM_PROMPT),
                llm_service_pb2.ChatMessage(role=llm_service_pb2.ROLE_USER, content=transcript),
            ]
            answer = ""
            for _ in range(4):
                request = llm_service_pb2.StreamingGenerateRequest(messages=messages, tools=tools)
                calls: dict[int, dict[str, str]] = {}
                text = ""
                async for reply in llm.StreamingGenerate(request, timeout=30):
                    if reply.WhichOneof("output") == "text_delta":
                        text += reply.text_delta
                    elif reply.WhichOneof("output") == "tool_call_delta":
                        d = reply.tool_call_delta
                        call = calls.setdefault(d.index, {"id": "", "name": "", "arguments_json": ""})
                        call["id"] = call["id"] or d.id
                        call["name"] = call["name"] or d.name
                        call["arguments_json"] += d.arguments_delta
                answer += text
                if not calls:
                    break
                made = [llm_service_pb2.ToolCall(**c) for c in calls.values()]
                messages.append(
                    llm_service_pb2.ChatMessage(role=llm_service_pb2.ROLE_ASSISTANT, content=text, tool_calls=made)
                )
                for call in calls.values():
                    outcome = await runner.run(call["name"], call["arguments_json"], session)
                    messages.append(
                        llm_service_pb2.ChatMessage(
                            role=llm_service_pb2.ROLE_TOOL,
                            content=outcome.content,
                            tool_call_id=call["id"],
                            name=call["name"],
                        )
                    )

            async def speak() -> AsyncIterator[tts_service_pb2.StreamingSynthesizeRequest]:
                yield tts_service_pb2.StreamingSynthesizeRequest(config=tts_service_pb2.SynthesisConfig())
                yield tts_service_pb2.StreamingSynthesizeRequest(text=answer)  # noqa: B023
                yield tts_service_pb2.StreamingSynthesizeRequest(flush=True)

            async for _ in tts.StreamingSynthesize(speak(), timeout=60):
                pass
            out.append((time.monotonic() - marks["speech_end"]) * 1000)
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def run(turns: int) -> None:
    print(f"synthesising {turns} caller questions with Piper ...", file=sys.stderr)
    lines = questions(turns)
    utterances = speak_lines(tuple(lines))
    with tempfile.TemporaryDirectory() as tmp:
        print("starting the mesh ...", file=sys.stderr)
        mesh = await asyncio.to_thread(start_mesh, Path(tmp))
        try:
            targets = {c.info.name: c.target for c in mesh.children}
            store = AccountStore(":memory:")
            await store.open()
            runner = BankingToolRunner(store)
            print("streaming pipeline ...", file=sys.stderr)
            stream = await streaming(targets["orchestrator"], utterances)
            print("sequential baseline ...", file=sys.stderr)
            baseline = await sequential(targets, utterances, runner)
            store.close()
        finally:
            await asyncio.to_thread(mesh.stop)
    v2v = [r["voice_to_voice_ms"] for r in stream]
    share = [r["mesh_share_ms"] for r in stream]
    print(f"\nvoice-to-voice over {len(v2v)} spoken questions (real-time caller audio, embedded engines)\n")
    print("| pipeline | p50 ms | p95 ms | vs sequential (p50) |")
    print("|---|---:|---:|---:|")
    seq50, seq95 = pct(baseline, 0.5), pct(baseline, 0.95)
    print(f"| sequential (whole transcript → whole answer → whole synthesis) | {seq50:.0f} | {seq95:.0f} | 1.00x |")
    ratio = pct(v2v, 0.5) / seq50
    print(f"| streaming (orchestrator) | {pct(v2v, 0.5):.0f} | {pct(v2v, 0.95):.0f} | {ratio:.2f}x |")
    print(
        f"\nmesh's own share of streaming voice-to-voice: p50 {pct(share, 0.5):.1f} ms, p95 {pct(share, 0.95):.1f} ms"
    )
    print("targets: streaming <= 0.6x sequential; mesh share <= 20 ms p95")
    print("\nstreaming turns as the orchestrator measured them, ms from the end of the caller's speech:\n")
    print(
        "| final transcript | first token | first audio | stt decode | llm | tts first segment | cache | mesh share |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in stream:
        print(
            f"| {r['final_transcript_ms']} | {r['first_token_ms']} | {r['orchestrator_v2v_ms']} | {r['stt_ms']}"
            f" | {r['llm_ms']} | {r['tts_ms']} | {r['cache_ms']} | {r['mesh_share_ms']} |"
        )
    print(json.dumps({"stream": stream, "sequential_ms": baseline}), file=sys.stderr)


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=6, help="questions per pipeline")
    args = parser.parse_args()
    asyncio.run(run(args.turns))


if __name__ == "__main__":
    main()
