"""Entries in Redis: the source of truth shared by every cache_svc replica.

Keys (``P`` is ``VOICEBOT_CACHE_REDIS_PREFIX``):

* ``P:e:<id>`` a hash per entry (query, answer, scope, metadata, times, embedding), with a
  Redis expiry at the entry's expiry time;
* ``P:idx`` a sorted set of every entry id scored by expiry time (enumeration, eviction);
* ``P:s:<scope hash>`` the same per scope (invalidation by scope), and ``P:scopes`` their names;
* ``P:events`` a stream of writes (``upsert``, ``delete``, ``clear``), capped at about
  ``stream_maxlen`` records, that every replica reads to keep its index in step.

Every command has a deadline (``timeout_s``); an unreachable Redis marks the storage down, and
every call answers UNAVAILABLE at once until the stream reader reaches Redis again, then
reports :class:`~cache_svc.engine.Resync` so that the replica reconciles its index.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from cache_svc.engine import Change, Cleared, Deleted, Entry, Resync, Scope, Upserted
from mesh.errors import Unavailable

log = logging.getLogger("cache_svc.redis")

_BATCH = 256
_EVENT_IDS = 500
_BLOCK_S = 1.0
_DOWN_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError)


def now_ms() -> int:
    """Wall-clock time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisStorage:
    """Entries in Redis with TTLs, and a stream of changes for the other replicas."""

    name = "redis"

    def __init__(self, url: str, *, prefix: str, timeout_s: float, stream_maxlen: int, replica_id: str) -> None:
        """Prepare clients for ``url``; nothing connects until :meth:`start`."""
        parts = urlsplit(url)
        self.where = f"{parts.hostname or 'localhost'}:{parts.port or 6379}"
        self._prefix = prefix
        self._timeout_s = timeout_s
        self._maxlen = stream_maxlen
        self._replica = replica_id
        # One retry on a fresh connection hides a pooled connection that a Redis restart broke.
        # redis-py's return types are unions over sync/async and RESP2/RESP3; the clients are used as Any.
        self._r: Any = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 1),
            health_check_interval=15,
        )
        # The stream reader blocks for _BLOCK_S, so its reads need a longer socket timeout.
        self._rx: Any = aioredis.Redis.from_url(
            url,
            socket_timeout=_BLOCK_S + timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        self._stream = f"{prefix}:events"
        self._idx = f"{prefix}:idx"
        self._scopes = f"{prefix}:scopes"
        self._last_id = "0-0"
        self._down_since: float | None = None
        self._down_reason = ""

    def _entry_key(self, entry_id: str) -> str:
        return f"{self._prefix}:e:{entry_id}"

    def _scope_key(self, scope_key: str) -> str:
        return f"{self._prefix}:s:{scope_key}"

    # --- availability ---------------------------------------------------------------------

    def check_available(self) -> None:
        """Raise ``Unavailable`` while Redis is known to be unreachable."""
        if self._down_since is not None:
            down_s = time.monotonic() - self._down_since
            raise Unavailable(
                f"cache storage unavailable: redis at {self.where} has been unreachable for {down_s:.1f} s "
                f"({self._down_reason}); reconnecting in the background, retry shortly"
            )

    def _mark_down(self, exc: BaseException) -> None:
        reason = str(exc) or type(exc).__name__
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning("redis unreachable", extra={"redis": self.where, "error": reason})
        self._down_reason = reason

    @asynccontextmanager
    async def _op(self, what: str) -> AsyncIterator[None]:
        """Deadline and error mapping around one storage operation."""
        self.check_available()
        try:
            async with asyncio.timeout(self._timeout_s * 4):
                yield
        except _DOWN_ERRORS as exc:
            self._mark_down(exc)
            reason = str(exc) or f"no answer within {self._timeout_s} s"
            raise Unavailable(
                f"cache storage unavailable: redis at {self.where} failed during {what} ({reason}); retry shortly"
            ) from None
        except RedisError as exc:
            raise Unavailable(f"cache storage error: redis at {self.where} refused {what}: {exc}") from None

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Check Redis answers and remember where the change stream ends now.

        Raises:
            Unavailable: Redis cannot be reached.
        """
        self._down_since = None
        async with self._op("start"):
            await self._r.ping()
            last = await self._r.xrevrange(self._stream, count=1)
            self._last_id = _text(last[0][0]) if last else "0-0"

    async def close(self) -> None:
        """Close both connection pools."""
        await self._r.aclose()
        await self._rx.aclose()

    # --- entries --------------------------------------------------------------------------

    def _encode(self, entry: Entry) -> dict[str, bytes | str | int]:
        return {
            "q": entry.query,
            "a": entry.answer,
            "t": entry.scope.tenant,
            "l": entry.scope.language_code,
            "i": entry.scope.intent,
            "m": json.dumps(dict(entry.metadata), separators=(",", ":")),
            "u": entry.updated_ms,
            "x": entry.expires_ms,
            "v": entry.vector,
            "e": entry.embedder,
        }

    @staticmethod
    def _decode(entry_id: str, raw: dict[bytes, bytes]) -> Entry | None:
        if not raw or b"q" not in raw:
            return None
        try:
            return Entry(
                id=entry_id,
                query=raw[b"q"].decode(),
                answer=raw[b"a"].decode(),
                scope=Scope(raw[b"t"].decode(), raw[b"l"].decode(), raw[b"i"].decode()),
                metadata=json.loads(raw[b"m"]),
                created_ms=int(raw.get(b"c", raw[b"u"])),
                updated_ms=int(raw[b"u"]),
                expires_ms=int(raw[b"x"]),
                vector=raw.get(b"v", b""),
                embedder=raw.get(b"e", b"").decode(),
            )
        except (KeyError, ValueError):
            log.warning("skipping malformed cache entry", extra={"entry_id": entry_id})
            return None

    async def put(self, entries: Sequence[Entry]) -> list[bool]:
        """Store or refresh entries in one transaction per batch, then announce them."""
        created: list[bool] = []
        async with self._op("store"):
            for start in range(0, len(entries), _BATCH):
                batch = entries[start : start + _BATCH]
                pipe = self._r.pipeline(transaction=True)
                for entry in batch:
                    key = self._entry_key(entry.id)
                    pipe.exists(key)
                    pipe.hsetnx(key, "c", entry.created_ms)
                    pipe.hset(key, mapping=self._encode(entry))
                    pipe.pexpireat(key, entry.expires_ms)
                    pipe.zadd(self._idx, {entry.id: entry.expires_ms})
                    pipe.zadd(self._scope_key(entry.scope.key), {entry.id: entry.expires_ms})
                    pipe.sadd(self._scopes, entry.scope.key)
                self._announce(pipe, "upsert", [e.id for e in batch])
                results = await pipe.execute()
                created.extend(results[i * 7] == 0 for i in range(len(batch)))
        return created

    def _announce(self, pipe: Any, op: str, ids: Sequence[str] = ()) -> None:
        chunks = list(_chunks(ids, _EVENT_IDS)) if ids else [()]
        for chunk in chunks:
            fields = {"op": op, "ids": ",".join(chunk), "origin": self._replica}
            pipe.xadd(self._stream, fields, maxlen=self._maxlen, approximate=True)

    async def get(self, entry_id: str) -> Entry | None:
        """The live entry, or None."""
        async with self._op("lookup"):
            raw = await self._r.hgetall(self._entry_key(entry_id))
        entry = self._decode(entry_id, raw)
        return entry if entry is not None and entry.expires_ms > now_ms() else None

    async def get_many(self, ids: Sequence[str]) -> list[Entry]:
        """The live entries among ``ids``."""
        async with self._op("read"):
            return await self._fetch(ids)

    async def _fetch(self, ids: Sequence[str]) -> list[Entry]:
        found: list[Entry] = []
        now = now_ms()
        for chunk in _chunks(ids, _BATCH):
            pipe = self._r.pipeline(transaction=False)
            for entry_id in chunk:
                pipe.hgetall(self._entry_key(entry_id))
            for entry_id, raw in zip(chunk, await pipe.execute(), strict=True):
                entry = self._decode(entry_id, raw)
                if entry is not None and entry.expires_ms > now:
                    found.append(entry)
        return found

    async def delete(self, ids: Sequence[str]) -> int:
        """Remove entries by id and announce it; returns how many existed."""
        if not ids:
            return 0
        async with self._op("invalidate"):
            pipe = self._r.pipeline(transaction=True)
            for entry_id in ids:
                pipe.delete(self._entry_key(entry_id))
            pipe.zrem(self._idx, *ids)
            self._announce(pipe, "delete", ids)
            results = await pipe.execute()
        return sum(int(r) for r in results[: len(ids)])

    async def delete_scope(self, scope: Scope) -> list[str]:
        """Remove every entry of ``scope`` atomically (WATCH on the scope's set) and announce it."""
        scope_key = self._scope_key(scope.key)
        ids: list[str] = []

        async def transaction(pipe: Any) -> None:
            ids[:] = [_text(i) for i in await pipe.zrange(scope_key, 0, -1)]
            pipe.multi()
            for entry_id in ids:
                pipe.delete(self._entry_key(entry_id))
            if ids:
                pipe.zrem(self._idx, *ids)
                self._announce(pipe, "delete", ids)
            pipe.delete(scope_key)

        async with self._op("invalidate"):
            results = await self._r.transaction(transaction, scope_key)
        return [entry_id for entry_id, gone in zip(ids, results, strict=False) if int(gone)]

    async def clear(self) -> int:
        """Remove every entry and the bookkeeping, then announce it."""
        count = 0
        async with self._op("clear"):
            batch: list[bytes] = []
            async for key in self._r.scan_iter(match=f"{self._prefix}:e:*", count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    count += await self._r.delete(*batch)
                    batch.clear()
            if batch:
                count += await self._r.delete(*batch)
            scopes = [self._scope_key(_text(s)) for s in await self._r.smembers(self._scopes)]
            pipe = self._r.pipeline(transaction=True)
            pipe.delete(self._idx, self._scopes, *scopes)
            self._announce(pipe, "clear")
            await pipe.execute()
        return count

    async def load(self) -> AsyncIterator[list[Entry]]:
        """Every live entry, in batches, with its stored embedding."""
        async with self._op("load"):
            ids = [_text(i) for i in await self._r.zrangebyscore(self._idx, now_ms() + 1, "+inf")]
        for chunk in _chunks(ids, 2000):
            async with self._op("load"):
                entries = await self._fetch(chunk)
            yield entries

    async def expiries(self) -> dict[str, int]:
        """Id to expiry time of every live entry, from the sorted set."""
        async with self._op("reconcile"):
            pairs = await self._r.zrangebyscore(self._idx, now_ms() + 1, "+inf", withscores=True)
        return {_text(member): int(score) for member, score in pairs}

    async def evict(self, max_entries: int) -> list[str]:
        """Remove the entries closest to expiry beyond ``max_entries``, and announce it."""
        async with self._op("evict"):
            await self._r.zremrangebyscore(self._idx, "-inf", now_ms())
            excess = await self._r.zcard(self._idx) - max_entries
            if excess <= 0:
                return []
            popped = [_text(member) for member, _ in await self._r.zpopmin(self._idx, excess)]
            pipe = self._r.pipeline(transaction=True)
            for entry_id in popped:
                pipe.delete(self._entry_key(entry_id))
            self._announce(pipe, "delete", popped)
            await pipe.execute()
        return popped

    async def sweep(self, now_ms: int) -> None:
        """Drop expired ids from the sorted sets (their hashes are already gone by Redis expiry)."""
        async with self._op("sweep"):
            scopes = [self._scope_key(_text(s)) for s in await self._r.smembers(self._scopes)]
            pipe = self._r.pipeline(transaction=False)
            for key in (self._idx, *scopes):
                pipe.zremrangebyscore(key, "-inf", now_ms)
            await pipe.execute()

    def memory_bytes(self) -> int:
        """Entries live in Redis, not in this process."""
        return 0

    # --- changes from other replicas ------------------------------------------------------

    async def changes(self) -> AsyncIterator[Change]:
        """Read the change stream forever; skips this replica's own writes.

        While Redis is unreachable, retries with backoff (up to 2 s); when it answers again,
        yields :class:`Resync` first, since changes may have been missed.
        """
        backoff = 0.1
        while True:
            try:
                async with asyncio.timeout(_BLOCK_S + self._timeout_s * 2):
                    reply = await self._rx.xread({self._stream: self._last_id}, count=256, block=int(_BLOCK_S * 1000))
                    if self._down_since is None:
                        pending = None
                    else:
                        pending = await self._rx.xrevrange(self._stream, count=1)
            except _DOWN_ERRORS as exc:
                self._mark_down(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            except RedisError as exc:
                log.warning("change stream read failed", extra={"redis": self.where, "error": str(exc)})
                await asyncio.sleep(1.0)
                continue
            backoff = 0.1
            if pending is not None:
                # Back after an outage: start after the newest record and rebuild from the entries.
                self._last_id = _text(pending[0][0]) if pending else self._last_id
                self._down_since = None
                log.info("redis reachable again", extra={"redis": self.where})
                yield Resync()
                continue
            for _stream, records in reply or ():
                for record_id, fields in records:
                    self._last_id = _text(record_id)
                    change = await self._change(fields)
                    if change is not None:
                        yield change

    async def _change(self, fields: dict[bytes, bytes]) -> Change | None:
        if fields.get(b"origin", b"").decode() == self._replica:
            return None
        op = fields.get(b"op", b"").decode()
        ids = [i for i in fields.get(b"ids", b"").decode().split(",") if i]
        if op == "delete":
            return Deleted(ids)
        if op == "clear":
            return Cleared()
        if op == "upsert":
            try:
                async with asyncio.timeout(self._timeout_s * 4):
                    entries = await self._fetch(ids)
            except _DOWN_ERRORS as exc:
                self._mark_down(exc)
                return None
            # Ids without a live hash were deleted since; their delete record follows.
            return Upserted(entries)
        return None
