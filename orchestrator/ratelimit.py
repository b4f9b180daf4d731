"""Per-caller limits on ``Converse``: a token bucket of call starts and a cap on concurrent calls.

Callers are keyed by ``SessionConfig.caller_id`` and, when a call names none, by the peer's host
(port dropped, so one client's connections share a bucket). A peer often carries many callers (a
telephony gateway, a proxy), so a peer's bucket gets the limits times ``peer_scale``. A bucket refills at
``calls_per_minute`` up to ``burst`` starts; a call start takes one token and holds one of the
caller's ``max_concurrent`` slots until it ends. Memory stays bounded: a bucket that is full and
holds no call says nothing a fresh bucket would not, so it is dropped; past ``max_callers`` the
least recently used idle buckets go first.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from mesh.errors import ResourceExhausted


@dataclass
class _Bucket:
    tokens: float
    stamp: float
    scale: int = 1
    active: int = 0


def peer_key(peer: str) -> str:
    """The host part of a gRPC peer string (``ipv4:1.2.3.4:5678`` -> ``ipv4:1.2.3.4``)."""
    if peer.startswith(("ipv4:", "ipv6:")):
        return peer.rsplit(":", 1)[0]
    return peer or "unknown-peer"


@dataclass
class Lease:
    """One admitted call; ``release()`` (idempotent) frees its concurrency slot."""

    limiter: RateLimiter
    key: str
    released: bool = False

    def release(self) -> None:
        """Give the caller's slot back."""
        if not self.released:
            self.released = True
            self.limiter._release(self.key)


@dataclass
class RateLimiter:
    """Token bucket of call starts plus a concurrency cap, per caller.

    Args:
        calls_per_minute: refill rate; 0 turns the bucket off.
        burst: bucket size, the call starts a caller may make back to back.
        max_concurrent: calls one caller may hold open at once; 0 turns the cap off.
        max_callers: buckets kept at most (idle ones are evicted first).
        peer_scale: multiplier of every limit for buckets keyed by peer (``acquire(key, peer=True)``);
            0 exempts calls with no caller id.
        clock: monotonic seconds (injectable for tests).
    """

    calls_per_minute: float
    burst: int
    max_concurrent: int
    max_callers: int = 100_000
    peer_scale: int = 1
    clock: Callable[[], float] = time.monotonic
    _buckets: OrderedDict[str, _Bucket] = field(default_factory=OrderedDict, repr=False)

    @property
    def _rate_per_s(self) -> float:
        return self.calls_per_minute / 60.0

    def __len__(self) -> int:
        """Buckets currently held."""
        return len(self._buckets)

    def _refill(self, bucket: _Bucket, now: float) -> None:
        if self.calls_per_minute > 0:
            full = float(self.burst * bucket.scale)
            bucket.tokens = min(full, bucket.tokens + (now - bucket.stamp) * self._rate_per_s * bucket.scale)
        bucket.stamp = now

    def acquire(self, key: str, *, peer: bool = False) -> Lease:
        """Admit one call of caller ``key`` (a peer host when ``peer``: limits times ``peer_scale``).

        Raises:
            ResourceExhausted: the caller holds ``max_concurrent`` calls already, or has used up its
                call starts; the message says when to retry.
        """
        scale = self.peer_scale if peer else 1
        if scale <= 0:
            return Lease(self, "", released=True)
        key = f"peer {key}" if peer else f"caller {key}"
        now = self.clock()
        self._evict(now)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(tokens=float(max(self.burst * scale, 1)), stamp=now, scale=scale)
            self._buckets[key] = bucket
        self._buckets.move_to_end(key)
        self._refill(bucket, now)
        who = "this caller" if not peer else "calls with no caller_id from this address"
        if self.max_concurrent > 0 and bucket.active >= self.max_concurrent * scale:
            raise ResourceExhausted(
                f"{who} already has {bucket.active} calls in progress (max_concurrent "
                f"{self.max_concurrent * scale}); retry when one ends"
            )
        if self.calls_per_minute > 0 and bucket.tokens < 1.0:
            wait_s = math.ceil((1.0 - bucket.tokens) / (self._rate_per_s * scale))
            raise ResourceExhausted(
                f"{who} started too many calls (limit {self.calls_per_minute * scale:g} per minute, burst "
                f"{self.burst * scale}); retry in {wait_s} s"
            )
        if self.calls_per_minute > 0:
            bucket.tokens -= 1.0
        bucket.active += 1
        return Lease(self, key)

    def _release(self, key: str) -> None:
        bucket = self._buckets.get(key)
        if bucket is not None and bucket.active > 0:
            bucket.active -= 1

    def _idle(self, bucket: _Bucket, now: float) -> bool:
        """True when the bucket holds no call and would be full by now (no different from a new one)."""
        if bucket.active:
            return False
        if self.calls_per_minute <= 0:
            return True
        return bucket.tokens + (now - bucket.stamp) * self._rate_per_s * bucket.scale >= self.burst * bucket.scale

    def _evict(self, now: float) -> None:
        # Oldest first, stepping over buckets that hold calls (at most the replica's max_calls): drop
        # idle ones up to the first that is still refilling (those after it were touched later).
        stale = []
        for key, bucket in self._buckets.items():
            if bucket.active:
                continue
            if not self._idle(bucket, now):
                break
            stale.append(key)
        for key in stale:
            del self._buckets[key]
        # Over the cap: forget the least recently used callers that hold no call.
        if len(self._buckets) >= self.max_callers:
            for key in [k for k, b in self._buckets.items() if not b.active][
                : len(self._buckets) - self.max_callers + 1
            ]:
                del self._buckets[key]
