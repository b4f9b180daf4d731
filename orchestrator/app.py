"""Wires the orchestrator: dependencies, session store, prompts, tools, analytics sink, servicer."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from pathlib import Path

from mesh.server import HealthControl, Registrar, ServicerApp
from orchestrator.call import Runtime
from orchestrator.config import OrchestratorSettings
from orchestrator.deps import Dependencies
from orchestrator.events import EventSink
from orchestrator.prompts import PromptCache
from orchestrator.servicer import OrchestratorServicer
from orchestrator.sessions import MemorySessionStore, RedisSessionStore, SessionStore
from orchestrator.tooling import load_tools
from voicebot.v1 import orchestrator_service_pb2, orchestrator_service_pb2_grpc

# Seconds before the end of the shutdown grace at which calls still running are ended anyway.
DRAIN_MARGIN_S = 2.0


class OrchestratorApp(ServicerApp):
    """OrchestratorService on the streaming pipeline engine."""

    name = "orchestrator"
    engine_name = "pipeline"
    admin_methods = frozenset({"/voicebot.v1.OrchestratorService/EndSession"})

    def __init__(self, settings: OrchestratorSettings) -> None:
        """Prepare the runtime; channels are dialled on first use, prompts and tools load in ``start``."""
        self.settings = settings
        self.deps = Dependencies.connect(settings)
        store: SessionStore
        if settings.session_store == "redis":
            store = RedisSessionStore(settings.redis_url, settings.session_ttl_s, settings.lease_s)
        elif settings.session_store == "memory":
            store = MemorySessionStore(settings.session_ttl_s, settings.lease_s)
        else:
            raise ValueError(
                f"VOICEBOT_ORCHESTRATOR_SESSION_STORE must be memory or redis, got {settings.session_store!r}"
            )
        tools = load_tools(settings)
        self.accounts = tools.store
        self.runtime = Runtime(
            settings=settings,
            deps=self.deps,
            store=store,
            prompts=PromptCache(settings.default_voice, extra=tools.fixed_phrases),
            tools=tools.runner,
            tool_definitions=tools.definitions,
            system_prompt=tools.system_prompt,
            events=EventSink(lambda: self.deps.analytics, settings.events_buffer, Path(settings.events_spill_dir)),
        )
        self._warming: asyncio.Task[bool] | None = None

    def servicers(self) -> Sequence[Registrar]:
        """The OrchestratorService servicer."""
        return [
            (
                orchestrator_service_pb2_grpc.add_OrchestratorServiceServicer_to_server,
                OrchestratorServicer(self.runtime),
                orchestrator_service_pb2.DESCRIPTOR.services_by_name["OrchestratorService"],
            )
        ]

    async def start(self, health: HealthControl) -> None:
        """Start the analytics sender; pre-synthesise prompts (waiting up to PROMPT_WARMUP_S for tts_svc)."""
        self.runtime.events.start()
        if self.accounts is not None:
            await self.accounts.open()
        prompts = self.runtime.prompts
        ready = await prompts.warm(self.deps.tts, self.settings.prompt_warmup_s)
        if not ready:
            self._warming = asyncio.create_task(prompts.warm(self.deps.tts, float("inf")), name="prompt-warmup")

    async def drain(self, grace_s: float) -> None:
        """Hand active calls off before the grace runs out, so no caller sees its stream cut.

        New calls are already refused (UNAVAILABLE). Each call ends with CALL_ENDED (detail
        ``DRAINING_DETAIL``) at its next turn boundary, its session left DETACHED for another replica
        to resume; calls still running when less than ``DRAIN_MARGIN_S`` (or a quarter of the grace)
        is left are ended then, the turn in progress cut short, so their last messages still
        reach the caller before the server stops. New calls keep getting UNAVAILABLE for at least
        ``drain_refuse_s``, however fast the calls hand off.
        """
        rt = self.runtime
        rt.draining = True
        started = time.monotonic()
        margin = min(DRAIN_MARGIN_S, grace_s / 4)
        for call in list(rt.calls.values()):
            call.hand_off()
        waits = [asyncio.create_task(call.ended.wait()) for call in rt.calls.values()]
        if waits:
            _, late = await asyncio.wait(waits, timeout=max(0.0, grace_s - margin))
            for wait in late:
                wait.cancel()
        for call in list(rt.calls.values()):
            call.end("draining")
        # Callers that have not yet seen NOT_SERVING still get a clear UNAVAILABLE, not a cancel.
        refuse_until = started + min(self.settings.drain_refuse_s, max(0.0, grace_s - margin))
        await asyncio.sleep(max(0.0, refuse_until - time.monotonic()))

    async def stop(self) -> None:
        """End calls' side tasks, flush analytics, close connections."""
        if self._warming is not None:
            self._warming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._warming
        await self.runtime.events.stop()
        await self.runtime.store.close()
        if self.accounts is not None:
            self.accounts.close()
        await self.deps.close()
