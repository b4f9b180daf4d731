"""Live session watching: stored events first, then events as they are committed.

``WatchHub`` fans committed events out to the watchers of their session, each through a queue
of ``watcher_queue_size`` events. Publishing never waits: a watcher whose queue is full is
dropped (its stream ends with RESOURCE_EXHAUSTED) so that a slow monitor cannot stall ingest.

``watch`` subscribes before it replays the store, and skips live events whose ``seq`` the
replay already covered, so nothing is lost or repeated between the two.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from analytics_svc import metrics
from analytics_svc.engine import EventKind, EventStore, StoredEvent
from mesh.errors import ResourceExhausted

# Stored events read per replay query.
REPLAY_PAGE = 500


class Watcher:
    """One WatchSession stream's queue of live events."""

    def __init__(self, session_id: str, queue_size: int) -> None:
        """Create an empty queue for ``session_id``."""
        self.session_id = session_id
        self.queue_size = queue_size
        self.queue: asyncio.Queue[StoredEvent | None] = asyncio.Queue(queue_size)
        self.overflowed = False
        self.closed = False

    def offer(self, event: StoredEvent) -> bool:
        """Queue ``event``; False (and the watcher is marked overflowed) when the queue is full."""
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            return False
        return True

    def close(self) -> None:
        """End the stream after what is queued."""
        self.closed = True
        if not self.queue.full():
            self.queue.put_nowait(None)

    async def next(self) -> StoredEvent | None:
        """The next live event; None when the watcher was closed.

        Raises:
            ResourceExhausted: the watcher fell ``queue_size`` events behind.
        """
        if not self.overflowed and not self.closed:
            event = await self.queue.get()
        else:
            event = None
        if self.overflowed:
            raise ResourceExhausted(
                f"watcher fell more than {self.queue_size} events behind (watcher_queue_size) and was dropped; "
                "watch again with skip_history to resume"
            )
        return event


class WatchHub:
    """Watchers by session; ``publish`` is called on the event loop in commit order."""

    def __init__(self, max_per_session: int, queue_size: int) -> None:
        """Allow ``max_per_session`` watchers per session, each queueing ``queue_size`` events."""
        self.max_per_session = max_per_session
        self.queue_size = queue_size
        self._watchers: dict[str, set[Watcher]] = {}

    def subscribe(self, session_id: str) -> Watcher:
        """Start receiving a session's events.

        Raises:
            ResourceExhausted: the session has ``max_per_session`` watchers already.
        """
        watchers = self._watchers.setdefault(session_id, set())
        if len(watchers) >= self.max_per_session:
            raise ResourceExhausted(
                f"the session has {len(watchers)} watchers already (max_watchers_per_session={self.max_per_session})"
            )
        watcher = Watcher(session_id, self.queue_size)
        watchers.add(watcher)
        metrics.WATCHERS.inc()
        return watcher

    def unsubscribe(self, watcher: Watcher) -> None:
        """Stop delivering to ``watcher``; safe to call twice."""
        watchers = self._watchers.get(watcher.session_id)
        if watchers is None or watcher not in watchers:
            return
        watchers.discard(watcher)
        metrics.WATCHERS.dec()
        if not watchers:
            del self._watchers[watcher.session_id]

    def publish(self, events: Sequence[StoredEvent]) -> None:
        """Deliver committed events to their sessions' watchers; drop watchers that are full."""
        if not self._watchers:
            return
        for event in events:
            watchers = self._watchers.get(event.record.session_id)
            if not watchers:
                continue
            for watcher in list(watchers):
                if not watcher.offer(event):
                    metrics.WATCHERS_DROPPED.inc()
                    self.unsubscribe(watcher)

    def close(self) -> None:
        """End every watch (the server stops)."""
        for watchers in list(self._watchers.values()):
            for watcher in list(watchers):
                watcher.close()
                self.unsubscribe(watcher)

    def count(self, session_id: str) -> int:
        """Watchers of ``session_id`` now."""
        return len(self._watchers.get(session_id, ()))


async def watch(
    hub: WatchHub, store: EventStore, session_id: str, *, skip_history: bool = False
) -> AsyncIterator[StoredEvent]:
    """A session's events: stored ones (unless ``skip_history``), then live ones, until CALL_ENDED.

    With ``skip_history`` a session whose call already ended yields nothing.

    Raises:
        ResourceExhausted: too many watchers on the session, or this one fell behind.
    """
    watcher = hub.subscribe(session_id)
    try:
        last_seq = 0
        if skip_history:
            state = await store.session_state(session_id)
            if state.ended:
                return
            last_seq = state.last_seq
        else:
            while True:
                page = await store.session_events(session_id, last_seq, REPLAY_PAGE)
                for event in page:
                    last_seq = event.seq
                    yield event
                    if event.record.kind is EventKind.CALL_ENDED:
                        return
                if len(page) < REPLAY_PAGE:
                    break
        while (live := await watcher.next()) is not None:
            if live.seq <= last_seq:
                continue
            yield live
            if live.record.kind is EventKind.CALL_ENDED:
                return
    finally:
        hub.unsubscribe(watcher)
