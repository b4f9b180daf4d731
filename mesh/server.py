"""``serve()``: how every service starts, reports health, and stops.

Startup reads top to bottom: build the ``grpc.aio`` server with the mesh interceptor, add the
service's servicers, health and reflection, bind, start with health NOT_SERVING, let the
service load and warm up its engine, then flip to SERVING. On SIGTERM or SIGINT health flips
to NOT_SERVING first, so load balancers drain the replica, then in-flight RPCs get
``grace_s`` to finish before the server stops.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Protocol

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from mesh.auth import TokenPolicy
from mesh.interceptor import MeshInterceptor
from mesh.logs import configure_logging
from mesh.metrics import serve_metrics
from mesh.settings import ServiceSettings
from mesh.tls import server_credentials
from mesh.tracing import configure_tracing, tracing_enabled

log = logging.getLogger("mesh.server")

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def package_version() -> str:
    """Version of the installed voicebot-mesh distribution ("0+unknown" when run from a tree)."""
    try:
        return version("voicebot-mesh")
    except PackageNotFoundError:
        return "0+unknown"


class HealthControl:
    """Lets a running service flip its own health (the LLM service re-checks its model server)."""

    def __init__(self, servicer: health.aio.HealthServicer, names: Sequence[str]) -> None:
        """Control the health of ``names`` (and the overall "" entry) on ``servicer``."""
        self._servicer = servicer
        self._names = ("", *names)
        self.serving = False

    async def set_serving(self, serving: bool) -> None:
        """Report SERVING or NOT_SERVING for the service and the server as a whole."""
        self.serving = serving
        for name in self._names:
            await self._servicer.set(name, SERVING if serving else NOT_SERVING)


class Service(Protocol):
    """What a service package hands to ``serve()``.

    ``start`` loads and warms up the engine (health stays NOT_SERVING until it returns);
    ``stop`` releases it after the server has stopped.
    """

    name: str
    engine_name: str
    admin_methods: frozenset[str]

    def register(self, server: grpc.aio.Server) -> Sequence[str]:
        """Add the servicers to ``server``; return their full service names."""
        ...

    async def start(self, health: HealthControl) -> None:
        """Load and warm up the engine."""
        ...

    async def stop(self) -> None:
        """Release the engine and any connections."""
        ...


Registrar = tuple[Callable[[Any, grpc.aio.Server], None], object, ServiceDescriptor]


class ServicerApp:
    """Base for a service package's app: servicers to register, an engine to start and stop.

    Subclasses set ``name``, ``engine_name`` and ``admin_methods``, return their servicers from
    ``servicers()`` as ``(add_XServicer_to_server, servicer, DESCRIPTOR.services_by_name[...])``
    and override ``start``/``stop`` to load and release their engine.
    """

    name: str = ""
    engine_name: str = ""
    admin_methods: frozenset[str] = frozenset()

    def servicers(self) -> Sequence[Registrar]:
        """The servicers this app serves."""
        raise NotImplementedError

    def register(self, server: grpc.aio.Server) -> Sequence[str]:
        """Add every servicer to ``server``; return their full service names."""
        names = []
        for add, servicer, descriptor in self.servicers():
            add(servicer, server)
            names.append(descriptor.full_name)
        return names

    async def start(self, health: HealthControl) -> None:
        """Load and warm up the engine; the default has none."""

    async def drain(self, grace_s: float) -> None:
        """Called on shutdown after health says NOT_SERVING, before the server stops; part of ``grace_s``.

        A service may refuse new work here and end long streams cleanly. The default does nothing:
        in-flight RPCs then run until they finish or the grace runs out.
        """

    async def stop(self) -> None:
        """Release the engine; the default has none."""


class MeshServer:
    """A running service: gRPC server, health, reflection and interceptor. Also used by tests."""

    def __init__(self, service: Service, settings: ServiceSettings) -> None:
        """Prepare to serve ``service``; nothing binds until ``start``."""
        self.service = service
        self.settings = settings
        self.port = 0
        self._server: grpc.aio.Server | None = None
        self._health_servicer = health.aio.HealthServicer()
        self.health: HealthControl | None = None

    def _options(self) -> list[tuple[str, int]]:
        s = self.settings
        return [
            # Audio frames are a few KiB; the largest honest messages are LLM requests with a
            # long history and cache warm-ups. Anything bigger is refused with RESOURCE_EXHAUSTED.
            ("grpc.max_receive_message_length", s.max_message_bytes),
            ("grpc.max_send_message_length", s.max_message_bytes),
            # One orchestrator multiplexes every call's streams over a single connection per
            # dependency, so the HTTP/2 per-connection stream limit must exceed the call limit.
            ("grpc.max_concurrent_streams", max(100, s.max_concurrent_rpcs)),
            # Clients ping every 20 s to keep idle call streams alive through load balancers;
            # pings as often as every 10 s are tolerated before the server sends GOAWAY.
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
            # Clients reconnect (and re-resolve, finding replicas added by an autoscaler) every
            # 5 minutes; calls already running on the old connection get an hour to finish.
            ("grpc.max_connection_age_ms", 300_000),
            ("grpc.max_connection_age_grace_ms", 3_600_000),
        ]

    async def start(self) -> None:
        """Bind, start NOT_SERVING, warm the service up, then report SERVING."""
        s = self.settings
        policy = TokenPolicy.from_settings(s, self.service.admin_methods)
        interceptor = MeshInterceptor(
            self.service.name, package_version(), self.service.engine_name, policy, tracing=tracing_enabled()
        )
        server = grpc.aio.server(
            interceptors=[interceptor], options=self._options(), maximum_concurrent_rpcs=s.max_concurrent_rpcs
        )
        names = list(self.service.register(server))
        health_pb2_grpc.add_HealthServicer_to_server(self._health_servicer, server)
        reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
        address = f"{s.host}:{s.port}"
        credentials = server_credentials(s)
        if credentials is None:
            self.port = server.add_insecure_port(address)
        else:
            self.port = server.add_secure_port(address, credentials)
        if self.port == 0:
            raise OSError(f"cannot bind {address}")
        self._server = server
        self.health = HealthControl(self._health_servicer, names)
        await self.health.set_serving(False)
        await server.start()
        log.info("listening", extra={"address": f"{s.host}:{self.port}", "tls": credentials is not None})
        await self.service.start(self.health)
        await self.health.set_serving(True)
        log.info("serving", extra={"engine": self.service.engine_name})

    async def stop(self, grace: float | None = None) -> None:
        """NOT_SERVING first, then let in-flight RPCs finish for ``grace`` seconds, then stop."""
        if self._server is None:
            return
        await self._health_servicer.enter_graceful_shutdown()
        grace = self.settings.grace_s if grace is None else grace
        log.info("draining", extra={"grace_s": grace})
        # The service drains first while the server still answers, so it can refuse new work
        # with UNAVAILABLE (which clients retry elsewhere; a stopping server cancels instead)
        # and end long streams cleanly. Then, for what is left of the grace, new RPCs are
        # refused while existing ones may finish.
        started = time.monotonic()
        drain = getattr(self.service, "drain", None)
        if drain is not None:
            await drain(grace)
        await self._server.stop(max(0.0, grace - (time.monotonic() - started)))
        self._server = None
        await self.service.stop()

    async def wait(self) -> None:
        """Wait until the server has stopped."""
        if self._server is not None:
            await self._server.wait_for_termination()

    async def __aenter__(self) -> MeshServer:
        """Start the server."""
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Stop the server with no grace."""
        await self.stop(0)


async def run(service: Service, settings: ServiceSettings) -> None:
    """Serve until SIGTERM or SIGINT, then drain and stop."""
    configure_tracing(service.name)
    metrics_port = settings.effective_metrics_port
    if metrics_port is not None:
        bound = serve_metrics(metrics_port, settings.host)
        log.info("metrics", extra={"address": f"{settings.host}:{bound}/metrics"})
    server = MeshServer(service, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        start = asyncio.create_task(server.start())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({start, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if start.done():
            start.result()
            await stopped
        else:
            start.cancel()
    finally:
        await server.stop()


def serve(service: Service, settings: ServiceSettings) -> None:
    """Run ``service`` until a signal stops it: the whole body of every ``__main__``."""
    configure_logging(service.name, settings.log_level)
    try:
        asyncio.run(run(service, settings))
    except Exception as exc:  # startup failures are reported as one line, not a traceback
        log.error("failed: %s", exc, exc_info=exc if log.isEnabledFor(logging.DEBUG) else None)
        raise SystemExit(1) from None
