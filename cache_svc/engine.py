"""What the cache speaks: the embedder and storage Protocols and their domain types.

The embedder (picked by ``VOICEBOT_CACHE_ENGINE``) turns questions into L2-normalised vectors;
the storage (``VOICEBOT_CACHE_STORAGE``) holds the entries and is the source of truth; the
faiss index that finds neighbours lives in each replica and is rebuilt from the storage.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from cache_svc.guards import normalize

Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    """Turns text into unit vectors whose inner product is the cosine similarity.

    ``embed`` blocks (model inference); callers run it in a ``WorkerBridge``.
    """

    name: str
    dim: int
    default_threshold: float

    def load(self) -> None:
        """Load the model; raises ``FailedPrecondition`` naming what is missing."""
        ...

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Vectors of ``texts``, shape ``(len(texts), dim)``, float32, each of norm 1 (or 0 for no text)."""
        ...


@dataclass(frozen=True)
class Scope:
    """Partition of the cache: a lookup sees only entries of exactly the same scope.

    The language code is case-folded (BCP-47 tags are case-insensitive); tenant and intent are
    compared exactly.
    """

    tenant: str = ""
    language_code: str = ""
    intent: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "language_code", self.language_code.casefold())

    @property
    def key(self) -> str:
        """A short stable hash of the scope, used in storage keys."""
        raw = "\x1f".join((self.tenant, self.language_code, self.intent))
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


def entry_id(query: str, scope: Scope) -> str:
    """Id of the entry for ``query`` in ``scope``: stable under case, spacing and trailing punctuation."""
    raw = "\x1f".join((scope.tenant, scope.language_code, scope.intent, normalize(query)))
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Entry:
    """One cached question and answer.

    Times are Unix epoch milliseconds. ``vector`` is the query's embedding by ``embedder``,
    kept so that replicas rebuild their index without re-embedding.
    """

    id: str
    query: str
    answer: str
    scope: Scope
    metadata: Mapping[str, str]
    created_ms: int
    updated_ms: int
    expires_ms: int
    vector: bytes = b""
    embedder: str = ""


@dataclass(frozen=True)
class LookupResult:
    """A hit (``entry`` set) or a miss.

    ``similarity`` is that of the best candidate that passed the safety rules, hit or not.
    """

    entry: Entry | None
    similarity: float
    embed_us: int
    search_us: int


@dataclass(frozen=True)
class StoreItem:
    """One question/answer pair to store; ``ttl_s`` already resolved (> 0)."""

    query: str
    answer: str
    scope: Scope
    ttl_s: int
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StoreOutcome:
    """What became of one ``StoreItem``: stored (``entry_id`` set) or refused (``refusal`` set)."""

    entry_id: str = ""
    created: bool = False
    refusal: str | None = None


@dataclass(frozen=True)
class Stats:
    """GetStats of one replica."""

    entries: int
    hits: int
    misses: int
    hit_ratio: float
    lookup_p50_ms: float
    lookup_p99_ms: float
    memory_bytes: int
    embedder: str
    index_type: str
    storage: str


@dataclass(frozen=True)
class Upserted:
    """Another replica stored or refreshed these entries."""

    entries: Sequence[Entry]


@dataclass(frozen=True)
class Deleted:
    """Another replica (or eviction) removed these entries."""

    ids: Sequence[str]


@dataclass(frozen=True)
class Cleared:
    """Another replica cleared the whole cache."""


@dataclass(frozen=True)
class Resync:
    """Events may have been missed (the storage was unreachable): reconcile with the storage."""


Change = Upserted | Deleted | Cleared | Resync


class Storage(Protocol):
    """Where entries live; the source of truth that each replica's index is rebuilt from.

    Every method may raise ``mesh.errors.Unavailable`` when the backing store cannot be reached.
    """

    name: str

    async def start(self) -> None:
        """Connect; raises ``Unavailable`` when the store cannot be reached."""
        ...

    async def close(self) -> None:
        """Disconnect."""
        ...

    def check_available(self) -> None:
        """Raise ``Unavailable`` at once when the store is known to be unreachable."""
        ...

    async def put(self, entries: Sequence[Entry]) -> list[bool]:
        """Store or refresh ``entries``; per entry, True when it was new.

        A refresh keeps the entry's ``created_ms`` and replaces everything else.
        """
        ...

    async def get(self, entry_id: str) -> Entry | None:
        """The live entry with ``entry_id``, or None (absent or expired)."""
        ...

    async def delete(self, ids: Sequence[str]) -> int:
        """Remove entries by id; returns how many existed."""
        ...

    async def delete_scope(self, scope: Scope) -> list[str]:
        """Remove every entry of ``scope``; returns the ids that existed."""
        ...

    async def clear(self) -> int:
        """Remove every entry; returns how many there were."""
        ...

    def load(self) -> AsyncIterator[list[Entry]]:
        """Every live entry, in batches (index rebuild at start)."""
        ...

    async def expiries(self) -> dict[str, int]:
        """Id to expiry time (epoch ms) of every live entry (reconciliation)."""
        ...

    async def get_many(self, ids: Sequence[str]) -> list[Entry]:
        """The live entries among ``ids``."""
        ...

    async def evict(self, max_entries: int) -> list[str]:
        """Remove the entries closest to expiry until at most ``max_entries`` remain; returns their ids."""
        ...

    async def sweep(self, now_ms: int) -> None:
        """Drop bookkeeping of entries that expired before ``now_ms``."""
        ...

    def changes(self) -> AsyncIterator[Change]:
        """Writes made by other replicas, as they happen; never ends (memory storage yields nothing)."""
        ...

    def memory_bytes(self) -> int:
        """Approximate bytes this process holds for entries (0 when they live elsewhere)."""
        ...
