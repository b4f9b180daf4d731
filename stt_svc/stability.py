"""Stable prefixes for interim results: a streaming face for a model that re-decodes.

Whisper re-decodes the whole open utterance every few hundred milliseconds, and each decode may
revise any word. A word becomes *stable* when two successive decodes agree on it at the same
position (LocalAgreement-2, as in Macháček et al., "Turning Whisper into Real-Time Transcription
System", 2023); stable words are never revised afterwards, whatever later decodes say. The last
word of a decode is never made stable: it is often a word cut off mid-speech.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

_STRIP = string.punctuation + "\u2026\u201c\u201d\u2018\u2019"


def _norm(word: str) -> str:
    return word.strip(_STRIP).lower()


@dataclass(frozen=True)
class Interim:
    """One interim view of an utterance: stable words, the unstable tail, and its stability 0-1."""

    stable: str
    unstable: str
    stability: float


class StablePrefix:
    """Tracks one utterance's interim hypotheses and the prefix they have agreed on."""

    def __init__(self) -> None:
        """Start with nothing stable."""
        self.stable: list[str] = []
        self._previous_tail: list[str] = []

    def update(self, text: str, confidence: float) -> Interim:
        """Take the next decode of the utterance and return what to report.

        Args:
            text: The whole transcript of this decode.
            confidence: The decode's mean token probability, 0-1.
        """
        words = text.split()
        # Words at the stable positions are kept as they were reported, even when this decode
        # disagrees: the contract is that stable text never changes.
        tail = words[len(self.stable) :]
        agreed = 0
        for old, new in zip(self._previous_tail, tail[:-1], strict=False):
            if _norm(old) != _norm(new) or not _norm(new):
                break
            agreed += 1
        self.stable.extend(tail[:agreed])
        tail = tail[agreed:]
        previous = self._previous_tail[agreed:]
        self._previous_tail = tail
        if tail:
            same = sum(1 for old, new in zip(previous, tail, strict=False) if _norm(old) == _norm(new))
            stability = max(0.0, min(1.0, confidence)) * (0.5 + 0.5 * same / len(tail))
        else:
            stability = 1.0
        return Interim(" ".join(self.stable), " ".join(tail), round(stability, 3))
