"""Wires llm_svc's engine and servicer into the mesh runtime, and keeps its health honest."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from llm_svc.config import LlmSettings
from llm_svc.engine import LlmEngine
from llm_svc.engines.banking import BankingEngine
from llm_svc.engines.vllm import VllmEngine
from llm_svc.servicer import LlmServicer
from mesh.errors import MeshError
from mesh.server import HealthControl, Registrar, ServicerApp
from mesh.settings import SettingsError
from voicebot.v1 import llm_service_pb2, llm_service_pb2_grpc

log = logging.getLogger("llm_svc")

ENGINES = ("banking", "vllm", "timed")


def build_engine(settings: LlmSettings) -> LlmEngine:
    """The engine ``settings.engine`` names.

    Raises:
        SettingsError: an unknown engine name.
    """
    if settings.engine == "banking":
        return BankingEngine(settings)
    if settings.engine == "vllm":
        return VllmEngine(settings)
    if settings.engine == "timed":
        from llm_svc.engines.timed import TimedEngine

        return TimedEngine(settings)
    raise SettingsError(f"VOICEBOT_LLM_ENGINE={settings.engine!r}: choose one of {', '.join(ENGINES)}")


class LlmApp(ServicerApp):
    """LlmService on the configured engine.

    ``start`` returns only once the engine generated a token: while the model server is not up
    it logs why and retries every ``startup_retry_s`` with health NOT_SERVING (a startup probe
    decides how long to wait). Afterwards a monitor re-checks with a real one-token generation
    every ``health_interval_s`` (at once after a request failed to reach the server) and flips
    health to NOT_SERVING while it fails.
    """

    name = "llm"
    admin_methods = frozenset({"/voicebot.v1.LlmService/LoadAdapter", "/voicebot.v1.LlmService/UnloadAdapter"})

    def __init__(self, settings: LlmSettings, engine: LlmEngine | None = None) -> None:
        """Build the engine; nothing connects until ``start``."""
        self.settings = settings
        self.engine = engine or build_engine(settings)
        self.engine_name = self.engine.name
        self._monitor: asyncio.Task[None] | None = None

    def servicers(self) -> Sequence[Registrar]:
        """The LlmService servicer."""
        return [
            (
                llm_service_pb2_grpc.add_LlmServiceServicer_to_server,
                LlmServicer(self.engine, self.settings),
                llm_service_pb2.DESCRIPTOR.services_by_name["LlmService"],
            )
        ]

    async def start(self, health: HealthControl) -> None:
        """Warm the engine up, retrying until it generates; then start the health monitor."""
        attempt = 0
        while True:
            attempt += 1
            try:
                await self.engine.start()
                break
            except MeshError as exc:
                log.warning(
                    "engine not ready, health stays NOT_SERVING; retrying in %g s (attempt %d): %s",
                    self.settings.startup_retry_s,
                    attempt,
                    exc.message,
                    extra={"engine": self.engine.name},
                )
                await asyncio.sleep(self.settings.startup_retry_s)
        log.info("engine warmed up", extra={"engine": self.engine.name, "attempts": attempt})
        if self.settings.health_interval_s > 0:
            self._monitor = asyncio.create_task(self._watch(health), name="llm-health")

    async def _watch(self, health: HealthControl) -> None:
        interval = self.settings.health_interval_s
        trouble = self.engine.trouble
        serving = True
        while True:
            if serving:
                # A failed request wakes the check early, but checks never run closer than a second.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(trouble.wait(), interval)
                await asyncio.sleep(min(1.0, interval))
            else:
                await asyncio.sleep(interval)
            try:
                await self.engine.check()
                ok, why = True, ""
            except MeshError as exc:
                ok, why = False, exc.message
            trouble.clear()
            if ok != serving:
                serving = ok
                if ok:
                    log.info("engine generates again: SERVING", extra={"engine": self.engine.name})
                else:
                    log.warning("engine health check failed: NOT_SERVING: %s", why, extra={"engine": self.engine.name})
                await health.set_serving(ok)

    async def stop(self) -> None:
        """Stop the monitor and release the engine."""
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
            self._monitor = None
        await self.engine.close()
