"""The default embedder: hashed character n-grams and words, no model, no torch, no download.

Each question becomes a bag of features: light-stemmed content words (weight 1), adjacent
content-word pairs (0.6), stop words (0.15) and the character 3- to 5-grams of each content
word (together weight 0.8, so a typo still shares most of its n-grams). A small banking
lexicon first folds common synonyms ("cash machine" and "ATM", "cost" and "fee"). Each feature
is hashed (BLAKE2b) to one of 384 dimensions with a hashed sign, and the sum is L2-normalised.

Good at: reworded questions that share words ("what are your opening hours" / "when are your
branches open"), word order, plurals, a typo here and there, and speed (about 0.1 ms a question).
Bad at: paraphrases without shared words ("how do I pay someone" / "how do I transfer money"),
anything needing world knowledge, and languages other than English beyond shared n-grams.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from cache_svc.engine import Vectors
from cache_svc.guards import normalize

DIM = 384

_STOP = frozenset(
    """a an the i me my we our you your it its is are was were be been am do does did doing have has had
    can could would should will shall may might must to of in on at by for from with about as into than
    then so if or and but this that these those there here what which who whom whose how when where why
    please there's it's i'm i'd i'll let us any some""".split()  # noqa: SIM905
)

# Multi-word synonyms first, then single words; both fold into one canonical word.
_PHRASES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(rf"\b{pattern}\b"), canonical)
    for pattern, canonical in (
        (r"cash ?(?:machine|point)s?", "atm"),
        (r"customer (?:service|support|care)", "support"),
        (r"help ?desk", "support"),
        (r"phone number", "phone"),
        (r"pin (?:number|code)", "pin"),
        (r"bank (?:transfer|wire)", "transfer"),
        (r"direct debits?", "directdebit"),
        (r"standing orders?", "standingorder"),
        (r"opening (?:hours|times)", "hours open"),
        (r"business days?", "workday"),
        (r"working days?", "workday"),
        (r"sign up", "apply"),
        (r"log ?in", "login"),
        (r"sign ?in", "login"),
        (r"how much", "fee"),
        (r"mobile app", "app"),
        (r"bank app", "app"),
    )
)
_SYNONYMS: dict[str, str] = {
    "cashpoint": "atm",
    "passcode": "pin",
    "cost": "fee",
    "costs": "fee",
    "charge": "fee",
    "charges": "fee",
    "price": "fee",
    "pricing": "fee",
    "commission": "fee",
    "wire": "transfer",
    "acct": "account",
    "help": "support",
    "assistance": "support",
    "abroad": "foreign",
    "overseas": "foreign",
    "international": "foreign",
    "modify": "change",
    "update": "change",
    "edit": "change",
    "alter": "change",
    "forgot": "reset",
    "forgotten": "reset",
    "recover": "reset",
    "cash": "money",
    "funds": "money",
    "cell": "phone",
    "telephone": "phone",
    "require": "need",
    "required": "need",
    "requirement": "need",
    "requirements": "need",
    "application": "apply",
    "stolen": "lost",
    "missing": "lost",
    "misplaced": "lost",
    "hours": "hour",
    "time": "hour",
    "times": "hour",
    "documents": "document",
    "paperwork": "document",
    "id": "identification",
    "identity": "identification",
    "branches": "branch",
    "office": "branch",
    "location": "branch",
    "nearest": "near",
    "closest": "near",
    "limits": "limit",
    "maximum": "limit",
    "interest": "rate",
    "apr": "rate",
    "long": "duration",
    "takes": "duration",
    "take": "duration",
}

# Words that most banking questions share: they say little about which question it is.
_GENERIC = frozenset(
    """account accounts bank banking card change get need do make want know use possible able way process
    step steps new help find see tell give like go""".split()  # noqa: SIM905
)
STOP_WEIGHT = 0.15
GENERIC_WEIGHT = 0.35
WORD_WEIGHT = 1.0
GRAM_WEIGHT = 0.8
BIGRAM_WEIGHT = 0.6

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_SUFFIXES = ("ing", "ed", "es", "s")


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def _tokens(text: str) -> list[str]:
    text = normalize(text).replace("n't", " not").replace("cannot", "can not")
    for pattern, canonical in _PHRASES:
        text = pattern.sub(canonical, text)
    return [_SYNONYMS.get(t, t) for t in _TOKEN.findall(text)]


def features(text: str) -> dict[str, float]:
    """Weighted hashed-feature names of ``text`` (exposed for tests and tuning)."""
    feats: dict[str, float] = {}

    def add(name: str, weight: float) -> None:
        feats[name] = feats.get(name, 0.0) + weight

    content: list[str] = []
    for token in _tokens(text):
        if token in _STOP:
            add(f"s:{token}", STOP_WEIGHT)
            continue
        stem = _stem(token)
        content.append(stem)
        scale = GENERIC_WEIGHT if token in _GENERIC else 1.0
        add(f"w:{stem}", WORD_WEIGHT * scale)
        padded = f"<{token}>"
        grams = [padded[i : i + n] for n in (3, 4, 5) for i in range(len(padded) - n + 1)]
        for gram in grams:
            add(f"c:{gram}", GRAM_WEIGHT * scale / len(grams))
    for left, right in zip(content, content[1:], strict=False):
        add(f"b:{left} {right}", BIGRAM_WEIGHT)
    return feats


@lru_cache(maxsize=262_144)
def _bucket(feature: str) -> tuple[int, float]:
    digest = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")
    return digest % DIM, 1.0 if (digest >> 32) & 1 else -1.0


class HashingEmbedder:
    """Hashed n-gram + word features, 384 dims, L2-normalised; deterministic across processes."""

    name = "hashing-ngram-384"
    dim = DIM
    default_threshold = 0.6

    def load(self) -> None:
        """Nothing to load."""

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Vectors of ``texts``; an empty or stop-word-free text still gets its stop-word features."""
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for row, text in enumerate(texts):
            for name, weight in features(text).items():
                index, sign = _bucket(name)
                out[row, index] += sign * weight
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out
