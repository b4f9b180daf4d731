"""Entries in this process's memory: the embedded default, one replica, lost on restart."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Sequence

from cache_svc.engine import Change, Entry, Scope

_ENTRY_OVERHEAD = 400  # bytes of dataclass, dict slot and metadata around an entry's strings


def now_ms() -> int:
    """Wall-clock time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


class MemoryStorage:
    """A dict of entries with expiry; nothing to connect to, never unavailable.

    Vectors are not kept here (the index in the same process holds them).
    """

    name = "memory"

    def __init__(self) -> None:
        """An empty storage."""
        self._entries: dict[str, Entry] = {}
        self._by_scope: dict[Scope, set[str]] = {}
        self._closed = asyncio.Event()

    async def start(self) -> None:
        """Nothing to connect to."""

    async def close(self) -> None:
        """End :meth:`changes`."""
        self._closed.set()

    def check_available(self) -> None:
        """Always available."""

    def _live(self, entry_id: str, now: int) -> Entry | None:
        entry = self._entries.get(entry_id)
        if entry is not None and entry.expires_ms <= now:
            self._drop(entry_id)
            return None
        return entry

    def _drop(self, entry_id: str) -> bool:
        entry = self._entries.pop(entry_id, None)
        if entry is None:
            return False
        ids = self._by_scope.get(entry.scope)
        if ids is not None:
            ids.discard(entry_id)
            if not ids:
                del self._by_scope[entry.scope]
        return True

    async def put(self, entries: Sequence[Entry]) -> list[bool]:
        """Store or refresh entries; a refresh keeps ``created_ms``."""
        now = now_ms()
        created = []
        for entry in entries:
            old = self._live(entry.id, now)
            if old is not None:
                entry = dataclasses.replace(entry, created_ms=old.created_ms)
            self._entries[entry.id] = dataclasses.replace(entry, vector=b"")
            self._by_scope.setdefault(entry.scope, set()).add(entry.id)
            created.append(old is None)
        return created

    async def get(self, entry_id: str) -> Entry | None:
        """The live entry, or None."""
        return self._live(entry_id, now_ms())

    async def get_many(self, ids: Sequence[str]) -> list[Entry]:
        """The live entries among ``ids``."""
        now = now_ms()
        return [entry for entry in (self._live(i, now) for i in ids) if entry is not None]

    async def delete(self, ids: Sequence[str]) -> int:
        """Remove entries; returns how many existed."""
        return sum(self._drop(entry_id) for entry_id in ids)

    async def delete_scope(self, scope: Scope) -> list[str]:
        """Remove every entry of ``scope``."""
        ids = list(self._by_scope.get(scope, ()))
        for entry_id in ids:
            self._drop(entry_id)
        return ids

    async def clear(self) -> int:
        """Remove everything."""
        count = len(self._entries)
        self._entries.clear()
        self._by_scope.clear()
        return count

    async def load(self) -> AsyncIterator[list[Entry]]:
        """Every live entry (empty at start: nothing survives a restart)."""
        now = now_ms()
        live = [entry for entry in self._entries.values() if entry.expires_ms > now]
        for start in range(0, len(live), 1000):
            yield live[start : start + 1000]

    async def expiries(self) -> dict[str, int]:
        """Id to expiry time of every live entry."""
        now = now_ms()
        return {i: e.expires_ms for i, e in self._entries.items() if e.expires_ms > now}

    async def evict(self, max_entries: int) -> list[str]:
        """Drop the entries closest to expiry beyond ``max_entries``."""
        excess = len(self._entries) - max_entries
        if excess <= 0:
            return []
        victims = sorted(self._entries.values(), key=lambda e: e.expires_ms)[:excess]
        for entry in victims:
            self._drop(entry.id)
        return [entry.id for entry in victims]

    async def sweep(self, now_ms: int) -> None:
        """Drop expired entries."""
        for entry_id in [i for i, e in self._entries.items() if e.expires_ms <= now_ms]:
            self._drop(entry_id)

    async def changes(self) -> AsyncIterator[Change]:
        """No other replica writes here: waits until closed and yields nothing."""
        await self._closed.wait()
        return
        yield  # pragma: no cover - makes this an async generator

    def memory_bytes(self) -> int:
        """Approximate bytes of the stored strings and their bookkeeping."""
        return sum(
            len(e.query) + len(e.answer) + sum(len(k) + len(v) for k, v in e.metadata.items()) + _ENTRY_OVERHEAD
            for e in self._entries.values()
        )

    def bulk_load(self, entries: Sequence[Entry]) -> None:
        """Insert entries without any checks (benchmarks populate 100k entries this way)."""
        for entry in entries:
            self._entries[entry.id] = entry
            self._by_scope.setdefault(entry.scope, set()).add(entry.id)
