"""Cache lookups started before the caller has finished speaking.

While the caller speaks, speech-to-text sends interim transcripts with a stability score. Once an
interim is stable (its words stopped changing), its cache lookup starts at once; when the final
transcript says the same words (case and punctuation aside), the turn takes that lookup's
answer instead of asking again, so a cache hit costs the turn no lookup time at all. Any other
final transcript cancels it. At most one lookup per call is in flight.
"""

from __future__ import annotations

import asyncio
import re

from mesh.pii import redact
from orchestrator.metrics import CACHE_PREFETCHES
from voicebot.v1 import cache_service_pb2, cache_service_pb2_grpc

_NOT_WORD = re.compile(r"[^a-z0-9']+")


def same_words(text: str) -> str:
    """``text`` reduced to its lower-case words: what two transcripts must share to count as the same."""
    return " ".join(_NOT_WORD.split(text.lower())).strip()


class CachePrefetch:
    """One call's early cache lookup; see the module docstring."""

    def __init__(
        self, cache: cache_service_pb2_grpc.CacheServiceStub, scope: cache_service_pb2.CacheScope, timeout_s: float
    ) -> None:
        """Look up in ``scope`` through ``cache``, each lookup with a ``timeout_s`` deadline."""
        self._cache = cache
        self._scope = scope
        self._timeout_s = timeout_s
        self._words = ""
        self._task: asyncio.Task[cache_service_pb2.LookupResponse] | None = None

    def start(self, text: str) -> None:
        """Look ``text`` up now, unless a lookup of the same words is already running (idempotent)."""
        words = same_words(text)
        if not words or words == self._words:
            return
        self.cancel()
        request = cache_service_pb2.LookupRequest(query=redact(text), scope=self._scope)
        self._words = words
        self._task = asyncio.ensure_future(self._cache.Lookup(request, timeout=self._timeout_s))
        self._task.add_done_callback(_retrieve)

    def take(self, final_text: str) -> asyncio.Task[cache_service_pb2.LookupResponse] | None:
        """The lookup for ``final_text`` when one was started for the same words, else None (and it is cancelled)."""
        task, words = self._task, self._words
        self._task, self._words = None, ""
        if task is None:
            return None
        if words != same_words(final_text):
            task.cancel()
            CACHE_PREFETCHES.labels("dropped").inc()
            return None
        CACHE_PREFETCHES.labels("used").inc()
        return task

    def cancel(self) -> None:
        """Drop the lookup in flight, if any."""
        if self._task is not None:
            self._task.cancel()
            CACHE_PREFETCHES.labels("dropped").inc()
        self._task, self._words = None, ""


def _retrieve(task: asyncio.Future[cache_service_pb2.LookupResponse]) -> None:
    """Mark a lookup's failure as seen: an unused lookup that failed is not worth a log line."""
    if not task.cancelled():
        task.exception()
