"""The bridge between the event loop and blocking engine code.

Model libraries (faster-whisper, Piper, faiss, SQLite) block. Each engine runs them through a
named ``WorkerBridge``: a bounded thread pool plus a bound on calls waiting for it, so the event
loop never blocks and a burst is refused with RESOURCE_EXHAUSTED instead of queueing forever.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from mesh import metrics
from mesh.errors import ResourceExhausted

P = ParamSpec("P")
R = TypeVar("R")


class WorkerBridge:
    """Runs blocking calls in ``workers`` threads, with at most ``max_pending`` admitted at once."""

    def __init__(self, name: str, workers: int, max_pending: int) -> None:
        """Create the bridge; threads start lazily."""
        if workers < 1 or max_pending < workers:
            raise ValueError("need workers >= 1 and max_pending >= workers")
        self.name = name
        self.max_pending = max_pending
        self.pending = 0
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._gauge = metrics.WORKER_QUEUE.labels(name)
        self._seconds = metrics.WORKER_SECONDS.labels(name)

    async def run(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn`` in a worker thread and return its result.

        The caller's context variables (request id, trace) go with it. Cancelling the awaiting
        task does not interrupt a call already running; engines that can stop early check a
        flag of their own between steps.

        Raises:
            ResourceExhausted: ``max_pending`` calls are already admitted.
        """
        if self.pending >= self.max_pending:
            raise ResourceExhausted(f"{self.name} is at capacity ({self.max_pending} calls pending); retry shortly")
        self.pending += 1
        self._gauge.inc()
        ctx = contextvars.copy_context()
        call: Callable[[], R] = functools.partial(ctx.run, self._timed, fn, *args, **kwargs)  # type: ignore[arg-type]
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, call)
        finally:
            self.pending -= 1
            self._gauge.dec()

    def _timed(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self._seconds.observe(time.perf_counter() - started)

    def close(self) -> None:
        """Stop the threads once running calls finish."""
        self._executor.shutdown(wait=False, cancel_futures=True)
