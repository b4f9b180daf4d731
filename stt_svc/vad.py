"""Silero voice activity detection, streamed 32 ms window by window.

The model is Silero VAD v6 as faster-whisper's wheel ships it (``faster_whisper/assets/
silero_vad_v6.onnx``). It scores 512-sample windows of 16 kHz audio, each seen with the 64
samples before it, and carries an LSTM state from window to window; run window by window it
gives exactly the probabilities faster-whisper's batch ``get_speech_timestamps`` computes. One
ONNX session serves every stream (onnxruntime's ``run`` is thread-safe); each stream keeps its
own ``VadState``. A window costs about 0.1 ms of one core.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stt_svc.engine import SAMPLE_RATE, ModelUnavailable

WINDOW = 512
"""Samples per VAD window (32 ms at 16 kHz)."""
WINDOW_MS = 1000 * WINDOW // SAMPLE_RATE
_CONTEXT = 64


def _default_model_path() -> Path:
    try:
        from faster_whisper.utils import get_assets_path
    except ImportError:
        raise ModelUnavailable(
            "Silero VAD ships in faster-whisper's wheel, which is not installed: pip install 'voicebot-mesh[stt]'"
        ) from None
    return Path(get_assets_path()) / "silero_vad_v6.onnx"


@dataclass
class VadState:
    """One stream's VAD state: LSTM memory, the previous window's tail, and samples not yet scored."""

    h: np.ndarray = field(default_factory=lambda: np.zeros((1, 1, 128), dtype=np.float32))
    c: np.ndarray = field(default_factory=lambda: np.zeros((1, 1, 128), dtype=np.float32))
    context: np.ndarray = field(default_factory=lambda: np.zeros(_CONTEXT, dtype=np.float32))
    pending: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))

    def hold(self, samples: np.ndarray) -> bool:
        """Keep ``samples`` for later when they do not complete a window; True when kept."""
        if self.pending.size + samples.size >= WINDOW:
            return False
        self.pending = np.concatenate((self.pending, samples))
        return True


class SileroVad:
    """The Silero VAD ONNX model, shared by all streams."""

    def __init__(self, path: Path | None = None) -> None:
        """Load the model (from faster-whisper's assets when ``path`` is None).

        Raises:
            ModelUnavailable: the model file is missing or onnxruntime cannot load it.
        """
        import onnxruntime

        self.path = path or _default_model_path()
        if not self.path.is_file():
            raise ModelUnavailable(f"Silero VAD model not found at {self.path}")
        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = 1
        options.log_severity_level = 4
        try:
            self._session = onnxruntime.InferenceSession(
                str(self.path), providers=["CPUExecutionProvider"], sess_options=options
            )
        except Exception as exc:
            raise ModelUnavailable(f"cannot load Silero VAD model {self.path}: {exc}") from exc

    def probabilities(self, state: VadState, samples: np.ndarray) -> np.ndarray:
        """Score every whole window that ``samples`` completes; blocking (run it in a worker).

        Samples that do not fill a window wait in ``state`` for the next call.

        Returns:
            One speech probability (0-1) per completed window, in order.
        """
        audio = np.concatenate((state.pending, samples)) if state.pending.size else samples
        count = len(audio) // WINDOW
        state.pending = audio[count * WINDOW :].copy()
        if count == 0:
            return np.zeros(0, dtype=np.float32)
        windows = audio[: count * WINDOW].reshape(count, WINDOW).astype(np.float32, copy=False)
        contexts = np.empty((count, _CONTEXT), dtype=np.float32)
        contexts[0] = state.context
        contexts[1:] = windows[:-1, -_CONTEXT:]
        batch = np.concatenate((contexts, windows), axis=1)
        probs, state.h, state.c = self._session.run(None, {"input": batch, "h": state.h, "c": state.c})
        state.context = windows[-1, -_CONTEXT:].copy()
        out: np.ndarray = np.asarray(probs, dtype=np.float32).reshape(-1)
        return out
