"""Session state: history, verification and life cycle, in memory or shared through Redis.

A call holds its session with a lease that it renews while it runs. Another replica may
resume a session whose lease has lapsed (the call ended, or its replica died in a rollout);
while the lease is live a resume is refused with FAILED_PRECONDITION. Ending a session from
anywhere (EndSession) marks it ENDED; the call holding it notices on its next renewal.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from mesh.errors import FailedPrecondition, NotFound, Unavailable
from mesh.pii import mask_digits

ACTIVE = "active"
DETACHED = "detached"
ENDED = "ended"


@dataclass
class SessionState:
    """Everything a call needs to carry on on any replica. Texts are stored masked."""

    session_id: str
    caller_id: str
    language_code: str
    tenant: str
    voice: str
    adapter: str
    state: str = ACTIVE
    replica: str = ""
    start_time: float = field(default_factory=time.time)
    update_time: float = field(default_factory=time.time)
    turn_count: int = 0
    last_intent: str = ""
    messages: list[dict[str, Any]] = field(default_factory=list)
    verified: bool = False
    verification_failures: int = 0
    ended_reason: str = ""

    @property
    def masked_caller_id(self) -> str:
        """Caller id with all but the last four digits masked."""
        return mask_digits(self.caller_id)

    def to_json(self) -> str:
        """Serialise for the store."""
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> SessionState:
        """Deserialise from the store."""
        return cls(**json.loads(text))


def new_session_id() -> str:
    """A fresh, unguessable session id."""
    return uuid.uuid4().hex


class SessionStore(Protocol):
    """Where sessions live. Every method is safe to call from many calls at once."""

    async def create(self, state: SessionState, replica: str) -> None:
        """Store a new session and take its lease."""
        ...

    async def resume(self, session_id: str, replica: str) -> SessionState:
        """Take the lease of a detached session.

        Raises:
            NotFound: unknown or expired session.
            FailedPrecondition: the session ended, or a live call holds it.
        """
        ...

    async def save(self, state: SessionState, replica: str) -> bool:
        """Write the state and renew the lease; False when the session was ended meanwhile."""
        ...

    async def release(self, state: SessionState, ended: bool) -> None:
        """Give the lease back; the session becomes DETACHED, or ENDED when ``ended``."""
        ...

    async def get(self, session_id: str) -> SessionState:
        """Read a session. Raises NotFound."""
        ...

    async def list(self, limit: int, offset: int, state: str | None) -> tuple[list[SessionState], bool]:
        """Sessions newest first; the flag says whether more follow."""
        ...

    async def end(self, session_id: str, reason: str) -> bool:
        """Mark a session ENDED; True when it was not ended before. Raises NotFound."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class MemorySessionStore:
    """Sessions in this process: for one replica and for tests."""

    def __init__(self, ttl_s: int, lease_s: float) -> None:
        """Keep detached sessions ``ttl_s`` seconds; leases last ``lease_s``."""
        self.ttl_s = ttl_s
        self.lease_s = lease_s
        self._sessions: dict[str, SessionState] = {}
        self._leases: dict[str, tuple[str, float]] = {}
        # Session ids, least recently written first: expiry looks at the front only (O(1) amortised).
        self._by_update: OrderedDict[str, None] = OrderedDict()

    def _store(self, state: SessionState) -> None:
        self._sessions[state.session_id] = SessionState.from_json(state.to_json())
        self._by_update[state.session_id] = None
        self._by_update.move_to_end(state.session_id)

    def _expire(self) -> None:
        now = time.time()
        for _ in range(len(self._by_update)):
            sid = next(iter(self._by_update))
            state = self._sessions.get(sid)
            if state is not None and now - state.update_time <= self.ttl_s:
                return
            del self._by_update[sid]
            if state is not None and self._lease_live(sid):
                self._by_update[sid] = None  # a call still holds it: look again later
            else:
                self._sessions.pop(sid, None)
                self._leases.pop(sid, None)

    def _lease_live(self, session_id: str) -> bool:
        lease = self._leases.get(session_id)
        return lease is not None and lease[1] > time.monotonic()

    async def create(self, state: SessionState, replica: str) -> None:
        """Store a new session and take its lease."""
        self._expire()
        state.replica = replica
        self._store(state)
        self._leases[state.session_id] = (replica, time.monotonic() + self.lease_s)

    async def resume(self, session_id: str, replica: str) -> SessionState:
        """Take the lease of a detached session."""
        self._expire()
        state = self._sessions.get(session_id)
        if state is None:
            raise NotFound(f"session {session_id} is unknown or expired; start a new call without session_id")
        if state.state == ENDED:
            raise FailedPrecondition(
                f"session {session_id} has ended ({state.ended_reason or 'ended'}); start a new call"
            )
        if self._lease_live(session_id):
            raise FailedPrecondition(f"session {session_id} is active on another call; hang that call up first")
        state.state, state.replica = ACTIVE, replica
        self._leases[session_id] = (replica, time.monotonic() + self.lease_s)
        return SessionState.from_json(state.to_json())

    async def save(self, state: SessionState, replica: str) -> bool:
        """Write the state and renew the lease."""
        stored = self._sessions.get(state.session_id)
        if stored is not None and stored.state == ENDED:
            return False
        state.update_time = time.time()
        self._store(state)
        self._leases[state.session_id] = (replica, time.monotonic() + self.lease_s)
        return True

    async def release(self, state: SessionState, ended: bool) -> None:
        """Give the lease back."""
        stored = self._sessions.get(state.session_id)
        if stored is not None and stored.state == ENDED:
            state.state, state.ended_reason = ENDED, stored.ended_reason
        elif ended:
            state.state = ENDED
        else:
            state.state = DETACHED
        state.replica = ""
        state.update_time = time.time()
        self._store(state)
        self._leases.pop(state.session_id, None)

    async def get(self, session_id: str) -> SessionState:
        """Read a session."""
        state = self._sessions.get(session_id)
        if state is None:
            raise NotFound(f"session {session_id} is unknown or expired")
        return SessionState.from_json(state.to_json())

    async def list(self, limit: int, offset: int, state: str | None) -> tuple[list[SessionState], bool]:
        """Sessions newest first."""
        self._expire()
        rows = sorted(self._sessions.values(), key=lambda s: s.start_time, reverse=True)
        if state is not None:
            rows = [s for s in rows if s.state == state]
        page = rows[offset : offset + limit]
        return [SessionState.from_json(s.to_json()) for s in page], offset + limit < len(rows)

    async def end(self, session_id: str, reason: str) -> bool:
        """Mark a session ENDED."""
        state = self._sessions.get(session_id)
        if state is None:
            raise NotFound(f"session {session_id} is unknown or expired")
        if state.state == ENDED:
            return False
        state.state, state.ended_reason = ENDED, reason
        return True

    async def close(self) -> None:
        """Nothing to release."""


class RedisSessionStore:
    """Sessions in Redis, shared by every orchestrator replica.

    Keys: ``voicebot:session:<id>`` (JSON, TTL = session TTL), ``voicebot:lease:<id>`` (replica
    name, TTL = lease), and the sorted set ``voicebot:sessions`` (id by start time) for listing.
    """

    PREFIX = "voicebot:"

    def __init__(self, url: str, ttl_s: int, lease_s: float, timeout_s: float = 2.0) -> None:
        """Connect lazily to ``url``; every command has a ``timeout_s`` deadline."""
        import redis.asyncio as redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.ttl_s = ttl_s
        self.lease_s = lease_s
        # One retry on a fresh connection: after Redis restarts, every pooled connection is broken
        # and would otherwise fail one command each (a new call refused with UNAVAILABLE).
        self._redis = redis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry_on_timeout=False,
            retry=Retry(NoBackoff(), 1),
        )

    def _key(self, kind: str, session_id: str) -> str:
        return f"{self.PREFIX}{kind}:{session_id}"

    async def _call(self, coro: Any) -> Any:
        from redis.exceptions import RedisError

        try:
            return await coro
        except RedisError as exc:
            raise Unavailable(f"session store (Redis) is unreachable: {exc}") from None

    async def _write(self, state: SessionState) -> None:
        pipe = self._redis.pipeline()
        pipe.set(self._key("session", state.session_id), state.to_json(), ex=self.ttl_s)
        pipe.zadd(f"{self.PREFIX}sessions", {state.session_id: state.start_time})
        await self._call(pipe.execute())

    async def create(self, state: SessionState, replica: str) -> None:
        """Store a new session and take its lease."""
        state.replica = replica
        await self._write(state)
        await self._call(self._redis.set(self._key("lease", state.session_id), replica, px=int(self.lease_s * 1000)))

    async def resume(self, session_id: str, replica: str) -> SessionState:
        """Take the lease of a detached session (SET NX, so two replicas cannot both win)."""
        raw = await self._call(self._redis.get(self._key("session", session_id)))
        if raw is None:
            raise NotFound(f"session {session_id} is unknown or expired; start a new call without session_id")
        state = SessionState.from_json(raw)
        if state.state == ENDED:
            raise FailedPrecondition(
                f"session {session_id} has ended ({state.ended_reason or 'ended'}); start a new call"
            )
        took = await self._call(
            self._redis.set(self._key("lease", session_id), replica, px=int(self.lease_s * 1000), nx=True)
        )
        if not took:
            raise FailedPrecondition(f"session {session_id} is active on another call; hang that call up first")
        state.state, state.replica = ACTIVE, replica
        await self._write(state)
        return state

    async def save(self, state: SessionState, replica: str) -> bool:
        """Write the state and renew the lease; False when the session was ended meanwhile."""
        raw = await self._call(self._redis.get(self._key("session", state.session_id)))
        if raw is not None and SessionState.from_json(raw).state == ENDED:
            return False
        state.update_time = time.time()
        await self._write(state)
        await self._call(self._redis.set(self._key("lease", state.session_id), replica, px=int(self.lease_s * 1000)))
        return True

    async def release(self, state: SessionState, ended: bool) -> None:
        """Give the lease back."""
        raw = await self._call(self._redis.get(self._key("session", state.session_id)))
        stored = SessionState.from_json(raw) if raw is not None else None
        if stored is not None and stored.state == ENDED:
            state.state, state.ended_reason = ENDED, stored.ended_reason
        else:
            state.state = ENDED if ended else DETACHED
        state.replica = ""
        state.update_time = time.time()
        await self._write(state)
        await self._call(self._redis.delete(self._key("lease", state.session_id)))

    async def get(self, session_id: str) -> SessionState:
        """Read a session."""
        raw = await self._call(self._redis.get(self._key("session", session_id)))
        if raw is None:
            raise NotFound(f"session {session_id} is unknown or expired")
        return SessionState.from_json(raw)

    async def list(self, limit: int, offset: int, state: str | None) -> tuple[list[SessionState], bool]:
        """Sessions newest first; expired ids are pruned from the index as they are met."""
        rows: list[SessionState] = []
        cursor = offset
        batch = max(limit * 2, 50)
        while len(rows) < limit + 1:
            ids = await self._call(self._redis.zrevrange(f"{self.PREFIX}sessions", cursor, cursor + batch - 1))
            if not ids:
                break
            cursor += len(ids)
            raws = await self._call(self._redis.mget([self._key("session", i.decode()) for i in ids]))
            stale = [i for i, raw in zip(ids, raws, strict=True) if raw is None]
            if stale:
                await self._call(self._redis.zrem(f"{self.PREFIX}sessions", *stale))
                cursor -= len(stale)
            for raw in raws:
                if raw is not None:
                    session = SessionState.from_json(raw)
                    if state is None or session.state == state:
                        rows.append(session)
        return rows[:limit], len(rows) > limit

    async def end(self, session_id: str, reason: str) -> bool:
        """Mark a session ENDED."""
        state = await self.get(session_id)
        if state.state == ENDED:
            return False
        state.state, state.ended_reason = ENDED, reason
        await self._write(state)
        return True

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()
