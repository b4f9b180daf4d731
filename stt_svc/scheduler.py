"""Admission of decodes to the model's workers: finals first, interims only into idle workers.

Every stream of the service shares one loaded model and ``workers`` decode threads. Finals must
run, so they queue (first come, first served, bounded by ``max_waiting``); interim decodes are
best effort, so they run only when a worker is idle and are otherwise skipped. With two or more
workers one is kept free of interims, so a final never waits behind another stream's interim.
A busy service thus sheds interim results first and keeps finals prompt, and no queue grows
without bound.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from mesh.errors import ResourceExhausted
from mesh.workers import WorkerBridge

R = TypeVar("R")


class DecodeScheduler:
    """Runs blocking decodes through a ``WorkerBridge``, at most ``workers`` at a time."""

    def __init__(self, bridge: WorkerBridge, workers: int, max_waiting: int) -> None:
        """Share ``bridge``'s ``workers`` threads; at most ``max_waiting`` finals may wait for one."""
        self._bridge = bridge
        self._workers = workers
        self._interim_workers = max(1, workers - 1)
        self._interims = 0
        self._max_waiting = max_waiting
        self._busy = 0
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._running: set[asyncio.Future[Any]] = set()

    @property
    def busy(self) -> int:
        """Decodes running now."""
        return self._busy

    async def run(self, fn: Callable[[], R], *, must_run: bool) -> R | None:
        """Run ``fn`` in a worker thread and return its result.

        A decode whose caller is cancelled still finishes in its thread (CTranslate2 cannot be
        interrupted); its worker counts as busy until then.

        Args:
            fn: The blocking call.
            must_run: Wait for a worker when all are busy (finals); otherwise return None at once.

        Raises:
            ResourceExhausted: ``must_run`` and ``max_waiting`` finals are already waiting.
        """
        if not must_run:
            if self._busy >= self._workers or self._interims >= self._interim_workers:
                return None
            self._busy += 1
            self._interims += 1
        elif self._busy < self._workers:
            self._busy += 1
        else:
            if len(self._waiting) >= self._max_waiting:
                raise ResourceExhausted(
                    f"speech decoder is at capacity ({self._max_waiting} decodes waiting); retry shortly"
                )
            turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiting.append(turn)
            try:
                await turn
            except asyncio.CancelledError:
                if turn.done() and not turn.cancelled():
                    self._release()  # the slot was handed to us just as we were cancelled
                else:
                    self._waiting.remove(turn)
                raise
        task: asyncio.Future[R] = asyncio.ensure_future(self._bridge.run(fn))
        self._running.add(task)
        task.add_done_callback(self._finished if must_run else self._interim_finished)
        return await asyncio.shield(task)

    def _interim_finished(self, task: asyncio.Future[Any]) -> None:
        self._interims -= 1
        self._finished(task)

    def _finished(self, task: asyncio.Future[Any]) -> None:
        self._running.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved here so an abandoned decode's error is not logged as lost
        self._release()

    def _release(self) -> None:
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(None)  # the worker passes straight to the next final
                return
        self._busy -= 1
