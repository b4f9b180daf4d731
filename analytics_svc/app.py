"""Wires analytics_svc's store, watch hub, metrics and retention into the mesh runtime."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

from analytics_svc.config import AnalyticsSettings
from analytics_svc.engine import StoredEvent
from analytics_svc.engines import build_store
from analytics_svc.metrics import RETENTION_DELETED, ActiveCalls, EventMetrics
from analytics_svc.servicer import AnalyticsServicer
from analytics_svc.watch import WatchHub
from mesh.server import HealthControl, Registrar, ServicerApp
from voicebot.v1 import analytics_service_pb2, analytics_service_pb2_grpc

log = logging.getLogger("analytics_svc")

_DAY_US = 86_400 * 1_000_000


class AnalyticsApp(ServicerApp):
    """AnalyticsService on the configured event store."""

    name = "analytics"

    def __init__(self, settings: AnalyticsSettings) -> None:
        """Build the store, hub and metrics; nothing opens until ``start``."""
        self.settings = settings
        self.engine_name = settings.engine
        self.hub = WatchHub(settings.max_watchers_per_session, settings.watcher_queue_size)
        self.active_calls = ActiveCalls(settings.max_tracked_calls)
        self.event_metrics = EventMetrics(self.active_calls)
        self.store = build_store(settings, self._committed)
        self._retention: asyncio.Task[None] | None = None

    def _committed(self, events: Sequence[StoredEvent], duplicates: int) -> None:
        self.hub.publish(events)
        self.event_metrics.observe(events, duplicates)

    def servicers(self) -> Sequence[Registrar]:
        """The AnalyticsService servicer."""
        return [
            (
                analytics_service_pb2_grpc.add_AnalyticsServiceServicer_to_server,
                AnalyticsServicer(self.store, self.hub, self.settings),
                analytics_service_pb2.DESCRIPTOR.services_by_name["AnalyticsService"],
            )
        ]

    async def start(self, health: HealthControl) -> None:
        """Open the store (migrating its schema), sweep once, then sweep every retention interval."""
        await self.store.open()
        if self.settings.retention_days > 0:
            await self.sweep()
            self._retention = asyncio.create_task(self._sweep_forever(), name="analytics-retention")

    async def sweep(self) -> int:
        """Delete the events older than ``retention_days``; return how many."""
        cutoff_us = time.time_ns() // 1000 - int(self.settings.retention_days * _DAY_US)
        deleted = await self.store.delete_older_than(cutoff_us)
        RETENTION_DELETED.inc(deleted)
        if deleted:
            log.info("retention sweep", extra={"deleted": deleted, "retention_days": self.settings.retention_days})
        return deleted

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.retention_interval_s)
            try:
                await self.sweep()
            except Exception as exc:  # a failed sweep is retried at the next interval
                log.error("retention sweep failed: %s", exc)

    async def stop(self) -> None:
        """Stop sweeping, end the watches, write what is queued and close the store."""
        if self._retention is not None:
            self._retention.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retention
            self._retention = None
        self.hub.close()
        self.active_calls.clear()
        await self.store.close()
