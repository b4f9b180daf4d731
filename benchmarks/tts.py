"""tts_svc speed per engine: first audio after a sentence completes, real-time factor, streams in real time.

For each engine the same loaded model is measured two ways in one run:

- ``direct``: the baseline, the engine's ``run_tts`` called in-process on the normalised sentence
  (no gRPC, no segmenter, no resampling or chunking);
- ``gRPC``: a client streaming to ``tts_svc`` on loopback (``MeshServer`` with every interceptor),
  once speaking whole sentences (``first_clause_alone`` off: the service's own overhead) and once
  as configured (by default a long sentence's first clause is synthesised on its own).
  Each sentence is sent as two deltas; the clock starts when the delta that completes the
  sentence (``". "``) is written and stops when the first audio chunk of that sentence arrives.
  Half of the sentences open with a short clause ("Sure, ..."), as a bot's replies often do.

Real-time factor is compute (or, over gRPC, sentence-complete to last chunk) over audio
duration. "Streams in real time" is the largest number of concurrent streams (1, 2, 4, ...)
where every stream, each sent all its sentences at once, plays without an underrun: after its
first chunk, every chunk arrives before the audio before it has finished playing.

    python benchmarks/tts.py                      # piper and kokoro, ~2 minutes on 2 busy cores
    python benchmarks/tts.py --engines piper --sentences 24 --max-streams 32
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import grpc

import mesh
from tts_svc.app import TtsApp
from tts_svc.config import TtsSettings
from tts_svc.engine import SpeechRequest, TtsEngine
from tts_svc.normalize import normalize
from voicebot.v1 import tts_service_pb2, tts_service_pb2_grpc

Request = tts_service_pb2.StreamingSynthesizeRequest

SENTENCES = [
    "Sure, your current balance is $1,234.56.",
    "Your next payment of $350 is due on March 15.",
    "Okay, the interest rate on your savings account is 4.5%.",
    "Would you like to hear your recent transactions?",
    "Yes, I can help you apply for a personal loan today.",
    "Your card ending in 4321 has been locked.",
    "Thanks for waiting, a transfer of $2,500 was sent on the 3rd of June.",
    "Is there anything else I can help you with?",
    "Our branches open at 9 a.m. on weekdays.",
    "Of course, your mortgage statement is ready to view online.",
    "The minimum payment on your credit card is $25.",
    "Thank you for banking with us.",
]
UNDERRUN_TOLERANCE_S = 0.02


@dataclass
class Result:
    first_audio_s: list[float] = field(default_factory=list)
    work_s: float = 0.0
    audio_s: float = 0.0
    streams: int = 0

    @property
    def rtf(self) -> float:
        return self.work_s / self.audio_s if self.audio_s else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --- direct: the engine alone --------------------------------------------------------------


async def direct_sentence(
    engine: TtsEngine, voice: str, sentence: str
) -> tuple[float, float, list[tuple[float, float]]]:
    """(first piece s, total s, [(arrival s, audio s)]) for one sentence spoken by the engine."""
    started = time.perf_counter()
    arrivals: list[tuple[float, float]] = []
    async for piece in engine.run_tts(SpeechRequest(normalize(sentence), voice, 1.0)):
        arrivals.append((time.perf_counter(), len(piece.samples) / piece.sample_rate_hertz))
    return arrivals[0][0] - started, time.perf_counter() - started, arrivals


async def direct_stream_in_real_time(engine: TtsEngine, voice: str, sentences: Sequence[str]) -> bool:
    arrivals: list[tuple[float, float]] = []
    for sentence in sentences:
        arrivals += (await direct_sentence(engine, voice, sentence))[2]
    return plays_without_underrun(arrivals)


# --- gRPC: the whole service ---------------------------------------------------------------------


async def latency(app: TtsApp, stub: tts_service_pb2_grpc.TtsServiceStub, sentences: Sequence[str]) -> list[Result]:
    """First audio and real-time factor: direct, gRPC speaking whole sentences, gRPC as configured.

    The three are interleaved sentence by sentence (rotating which goes first), so that the
    noise of a shared machine falls on all of them alike.
    """
    engine, voice = app.engine, app.engine.voices[0].name
    direct, whole, remote = Result(), Result(), Result()
    call = stub.StreamingSynthesize(timeout=600)
    await call.write(Request(config=tts_service_pb2.SynthesisConfig()))

    async def over_grpc(sentence: str, result: Result, first_clause_alone: bool) -> None:
        app.synthesizer.first_clause_alone = first_clause_alone
        await call.write(Request(text=sentence[:-1]))
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        await call.write(Request(text=sentence[-1] + " "))
        response = await call.read()
        result.first_audio_s.append(time.perf_counter() - started)
        result.audio_s += response.duration_ms / 1000
        while not response.segment_end:
            response = await call.read()
            result.audio_s += response.duration_ms / 1000
        result.work_s += time.perf_counter() - started

    async def in_process(sentence: str) -> None:
        first, total, arrivals = await direct_sentence(engine, voice, sentence)
        direct.first_audio_s.append(first)
        direct.work_s += total
        direct.audio_s += sum(a for _, a in arrivals)

    configured = app.settings.first_clause_alone
    paths = [
        in_process,
        lambda s: over_grpc(s, whole, False),
        lambda s: over_grpc(s, remote, configured),
    ]
    for i, sentence in enumerate(sentences):
        for k in range(3):
            await paths[(i + k) % 3](sentence)
    app.synthesizer.first_clause_alone = configured
    await call.done_writing()
    while await call.read() != grpc.aio.EOF:
        pass
    return [direct, whole, remote]


async def grpc_stream_in_real_time(stub: tts_service_pb2_grpc.TtsServiceStub, sentences: Sequence[str]) -> bool:
    async def requests():  # type: ignore[no-untyped-def]
        yield Request(config=tts_service_pb2.SynthesisConfig())
        yield Request(text=" ".join(sentences))

    arrivals = [
        (time.perf_counter(), r.duration_ms / 1000) async for r in stub.StreamingSynthesize(requests(), timeout=600)
    ]
    return plays_without_underrun(arrivals)


def plays_without_underrun(arrivals: Sequence[tuple[float, float]]) -> bool:
    """True when, playing from the first arrival, every piece arrives before the audio before it ends."""
    if not arrivals:
        return False
    start = arrivals[0][0]
    played = 0.0
    for arrival, duration in arrivals:
        if arrival > start + played + UNDERRUN_TOLERANCE_S:
            return False
        played += duration
    return True


async def max_streams(check: object, levels: Sequence[int]) -> int:
    best = 0
    for n in levels:
        results = await asyncio.gather(*(check() for _ in range(n)))  # type: ignore[operator]
        if not all(results):
            break
        best = n
    return best


async def bench_engine(engine_name: str, n_sentences: int, stream_sentences: int, levels: Sequence[int]) -> list[str]:
    settings = TtsSettings.from_env(host="127.0.0.1", port=0, metrics_port=-1, engine=engine_name)
    app = TtsApp(settings)
    loaded = time.perf_counter()
    async with mesh.MeshServer(app, settings) as server:
        start_s = time.perf_counter() - loaded
        channel = mesh.dial(f"127.0.0.1:{server.port}")
        stub = tts_service_pb2_grpc.TtsServiceStub(channel)
        voice = app.engine.voices[0]
        sentences = (SENTENCES * 4)[:n_sentences]
        streamed = sentences[:stream_sentences]
        await direct_sentence(app.engine, voice.name, sentences[0])  # one more warm-up
        direct, whole, remote = await latency(app, stub, sentences)
        direct.streams = await max_streams(lambda: direct_stream_in_real_time(app.engine, voice.name, streamed), levels)
        remote.streams = await max_streams(lambda: grpc_stream_in_real_time(stub, streamed), levels)
        app.synthesizer.first_clause_alone = False
        whole.streams = await max_streams(lambda: grpc_stream_in_real_time(stub, streamed), levels)
        app.synthesizer.first_clause_alone = app.settings.first_clause_alone
        await channel.close()
    rows = []
    for path, r in (
        ("direct (baseline)", direct),
        ("gRPC, whole sentences", whole),
        ("gRPC, first clause alone (default)", remote),
    ):
        p50 = statistics.median(r.first_audio_s) * 1000
        p90 = percentile(r.first_audio_s, 0.9) * 1000
        ratio = statistics.median(r.first_audio_s) / statistics.median(direct.first_audio_s)
        rows.append(
            f"| {engine_name} ({voice.name}, {voice.sample_rate_hertz} Hz) | {path} | {p50:.0f} | {p90:.0f} | "
            f"{ratio:.2f}x | {r.rtf:.3f} | {r.streams} |"
        )
    print(f"{engine_name}: started (load + warm-up) in {start_s:.1f} s", file=sys.stderr)
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="piper,kokoro")
    parser.add_argument("--sentences", type=int, default=8, help="sentences timed one by one (piper)")
    parser.add_argument("--stream-sentences", type=int, default=4, help="sentences per stream in the real-time test")
    parser.add_argument("--max-streams", type=int, default=16, help="highest concurrency tried (piper)")
    args = parser.parse_args()
    rows = []
    for name in args.engines.split(","):
        slow = name == "kokoro"  # about ten times the compute of Piper on CPU: fewer sentences
        rows += await bench_engine(
            name,
            n_sentences=max(2, args.sentences // 3) if slow else args.sentences,
            stream_sentences=2 if slow else args.stream_sentences,
            levels=[n for n in (1, 2, 4, 8, 16, 32) if n <= (2 if slow else args.max_streams)],
        )
    print(f"\ncpu cores: {os.cpu_count()}; load average at end: {os.getloadavg()[0]:.2f}\n")
    print(
        "| engine (voice) | path | first audio p50 ms | p90 ms | vs direct | real-time factor | streams in real time |"
    )
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print("\nTarget (embedded, piper): first audio <= 150 ms after its sentence completes.")


if __name__ == "__main__":
    asyncio.run(main())
