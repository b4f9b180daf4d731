"""Running a blocking ONNX synthesiser from the event loop, stoppable at once.

Piper and kokoro-onnx are blocking libraries that call ``session.run`` on an onnxruntime
session. ``BlockingEngine`` steps an engine's synchronous generator of audio one piece at a
time in a ``WorkerBridge``. Each segment has a ``CancelToken``; the session is wrapped in a
``CancellableSession`` that hands every run an ``onnxruntime.RunOptions`` registered with
the calling segment's token. Cancelling the token sets ``RunOptions.terminate`` on the run in
progress (onnxruntime stops it between graph nodes, within milliseconds) and refuses any
later run, so a barged-in stream costs no more compute.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from typing import Any

import numpy as np
import onnxruntime as ort

from mesh.workers import WorkerBridge
from tts_svc.engine import AudioPiece, EngineStats, SpeechRequest, Voice

log = logging.getLogger("tts_svc.engine")


class SynthesisCancelled(Exception):
    """The segment's stream was cancelled; raised in the worker thread only."""


class CancelToken:
    """Cancellation of one segment's synthesis, shared between the event loop and a worker."""

    def __init__(self) -> None:
        """A token that is not cancelled."""
        self._lock = threading.Lock()
        self._cancelled = False
        self._runs: set[ort.RunOptions] = set()

    @property
    def cancelled(self) -> bool:
        """True once ``cancel`` was called."""
        return self._cancelled

    def cancel(self) -> None:
        """Stop the run in progress and refuse later ones."""
        with self._lock:
            self._cancelled = True
            for options in self._runs:
                options.terminate = True

    def begin_run(self) -> ort.RunOptions:
        """Register a new run.

        Raises:
            SynthesisCancelled: the token is already cancelled.
        """
        options = ort.RunOptions()
        with self._lock:
            if self._cancelled:
                raise SynthesisCancelled
            self._runs.add(options)
        return options

    def end_run(self, options: ort.RunOptions) -> None:
        """Forget a finished run."""
        with self._lock:
            self._runs.discard(options)


_current_token: contextvars.ContextVar[CancelToken | None] = contextvars.ContextVar("tts_cancel_token", default=None)


class CancellableSession:
    """An onnxruntime session whose runs obey the calling segment's ``CancelToken``.

    It stands in for the session inside Piper and kokoro-onnx (attribute access is passed
    through), and counts the runs: the engine's unit of work.
    """

    def __init__(self, session: ort.InferenceSession) -> None:
        """Wrap ``session``."""
        self._session = session
        self._lock = threading.Lock()
        self.runs_started = 0
        self.runs_cancelled = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    def run(self, output_names: Sequence[str] | None, input_feed: dict[str, Any], run_options: Any = None) -> Any:
        """Run the model; stops early when the calling segment is cancelled.

        Raises:
            SynthesisCancelled: the segment was cancelled before or during the run.
        """
        token = _current_token.get()
        if token is None:
            self._count(started=True)
            return self._session.run(output_names, input_feed, run_options)
        try:
            options = token.begin_run()
        except SynthesisCancelled:
            self._count(cancelled=True)
            raise
        self._count(started=True)
        try:
            return self._session.run(output_names, input_feed, options)
        except Exception:
            if token.cancelled:
                self._count(cancelled=True)
                raise SynthesisCancelled from None
            raise
        finally:
            token.end_run(options)

    def _count(self, *, started: bool = False, cancelled: bool = False) -> None:
        with self._lock:
            self.runs_started += started
            self.runs_cancelled += cancelled


def session_options(threads: int) -> ort.SessionOptions:
    """Session options with ``threads`` intra-op threads (0: onnxruntime's default, one per core)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return options


class BlockingEngine:
    """Base of the engines built on a blocking library: ``run_tts`` over a worker bridge.

    Subclasses set ``name``, load their model in ``_load`` (in a worker thread) with a
    ``CancellableSession`` stored in ``self._session``, fill ``self._voices``, and yield float32
    audio from ``_pieces``; each ``next()`` of that generator runs in a worker thread.
    """

    name = ""
    warm_up_text = "Hello, your balance is one hundred dollars."

    def __init__(self, workers: int, max_pending: int) -> None:
        """Bridge at most ``workers`` runs at once, ``max_pending`` admitted."""
        self._bridge = WorkerBridge(f"tts-{self.name}", workers, max_pending)
        self._session: CancellableSession | None = None
        self._voices: list[Voice] = []

    @property
    def voices(self) -> Sequence[Voice]:
        """The voices, default first."""
        return tuple(self._voices)

    async def start(self) -> None:
        """Load the model in a worker thread, then speak a warm-up sentence."""
        started = time.perf_counter()
        await self._bridge.run(self._load)
        loaded = time.perf_counter()
        request = SpeechRequest(self.warm_up_text, self._voices[0].name, 1.0)
        async for _ in self.run_tts(request):
            pass
        log.info(
            "engine ready",
            extra={
                "engine": self.name,
                "voice": self._voices[0].name,
                "load_ms": round((loaded - started) * 1000),
                "warm_up_ms": round((time.perf_counter() - loaded) * 1000),
            },
        )

    async def run_tts(self, request: SpeechRequest) -> AsyncGenerator[AudioPiece, None]:
        """Speak one segment; pieces arrive as the workers make them; closing early cancels the work.

        Each part runs in one worker call, which hands each piece to the event loop as soon as
        it is made. All parts are submitted at once, in order, and each waits in its worker for
        the one before, so a later part runs right behind the first rather than behind whatever
        other streams submit meanwhile.
        """
        rate = self._rate(request.voice)
        token = CancelToken()
        loop = asyncio.get_running_loop()

        done = [threading.Event() for _ in request.parts]

        def produce(index: int, text: str, pieces: asyncio.Queue[AudioPiece | None]) -> None:
            _current_token.set(token)  # the bridge runs this in a copy of the caller's context
            try:
                # A later part holds its worker until the part before it is made: it must not
                # slow that part down, and must not let other streams' work in between.
                while index and not done[index - 1].wait(0.05):
                    if token.cancelled:
                        raise SynthesisCancelled
                started = time.perf_counter()
                for samples in self._pieces(text, request):
                    if token.cancelled:
                        raise SynthesisCancelled
                    now = time.perf_counter()
                    audio = np.asarray(samples, dtype=np.float32).reshape(-1)
                    piece = AudioPiece(audio, rate, (now - started) * 1000, index)
                    loop.call_soon_threadsafe(pieces.put_nowait, piece)
                    started = now
            finally:
                done[index].set()

        def finished(pieces: asyncio.Queue[AudioPiece | None]) -> Callable[[asyncio.Future[None]], None]:
            # Pieces are queued from the worker before the job's completion reaches the loop,
            # so this end marker always comes after the part's last piece.
            def done(future: asyncio.Future[None]) -> None:
                if not future.cancelled():
                    future.exception()  # marks it retrieved; ``result()`` below raises it again
                pieces.put_nowait(None)

            return done

        # Tasks start in creation order, so the parts reach the workers in order.
        jobs: list[tuple[asyncio.Task[None], asyncio.Queue[AudioPiece | None]]] = []
        for index, text in enumerate(request.parts):
            queue: asyncio.Queue[AudioPiece | None] = asyncio.Queue()
            task = asyncio.create_task(self._bridge.run(produce, index, text, queue))
            task.add_done_callback(finished(queue))
            jobs.append((task, queue))
        try:
            for task, queue in jobs:
                while (piece := await queue.get()) is not None:
                    yield piece
                task.result()
        finally:
            token.cancel()
            for task, _ in jobs:
                task.cancel()

    def _rate(self, voice: str) -> int:
        for candidate in self._voices:
            if candidate.name == voice:
                return candidate.sample_rate_hertz
        raise KeyError(voice)

    def stats(self) -> EngineStats:
        """Inference runs started and cancelled."""
        if self._session is None:
            return EngineStats(0, 0)
        return EngineStats(self._session.runs_started, self._session.runs_cancelled)

    async def stop(self) -> None:
        """Stop the worker threads."""
        self._bridge.close()

    def _load(self) -> None:
        raise NotImplementedError

    def _pieces(self, text: str, request: SpeechRequest) -> Iterator[np.ndarray]:
        """Speak ``text`` (a part of ``request``) in ``request``'s voice and speed; blocking."""
        raise NotImplementedError
