"""Runs the whole mesh on one machine: one child process per service.

One process per service, so a crash in one engine does not take the others down. Used by
``voicebot up``, ``voicebot demo`` and the integration tests.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from voicebot.catalog import SERVICES, ServiceInfo


@dataclass
class Child:
    """One running service process."""

    info: ServiceInfo
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def target(self) -> str:
        """Address the service listens on."""
        return f"127.0.0.1:{self.port}"


def _port_free(port: int) -> bool:
    """True when nothing listens on the port (SO_REUSEADDR, as gRPC binds: old connections don't count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def health_status(
    target: str, service: str = "", timeout_s: float = 1.0, credentials: grpc.ChannelCredentials | None = None
) -> int:
    """One grpc.health.v1 Check (over TLS with ``credentials``); the ServingStatus value, or -1 when nothing answers."""
    channel = grpc.insecure_channel(target) if credentials is None else grpc.secure_channel(target, credentials)
    with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
        except grpc.RpcError:
            return -1
        return int(reply.status)


@dataclass
class LocalMesh:
    """Start, watch and stop the six services as local processes."""

    services: Sequence[ServiceInfo] = SERVICES
    ports: Mapping[str, int] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    log_dir: Path = Path(".voicebot/logs")
    children: list[Child] = field(default_factory=list)
    # Credentials of the health probe in ``wait_serving``: needed when the services serve TLS
    # (with a client certificate under mutual TLS); None probes in plaintext.
    probe_credentials: grpc.ChannelCredentials | None = None

    def port_of(self, info: ServiceInfo) -> int:
        """Port for ``info``: from ``ports`` or its default."""
        return self.ports.get(info.name, info.default_port)

    def start(self) -> None:
        """Launch every service with the peers' addresses in its environment.

        Raises:
            RuntimeError: a port is taken (another mesh answering there would pass for this one).
        """
        busy = [f"{info.name} ({self.port_of(info)})" for info in self.services if not _port_free(self.port_of(info))]
        if busy:
            raise RuntimeError(
                f"ports in use: {', '.join(busy)} — is a mesh already running? (`voicebot orchestrator-health`)"
            )
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for info in self.services:
            self.children.append(self._spawn(info))

    def _spawn(self, info: ServiceInfo) -> Child:
        env = dict(os.environ)
        for peer in SERVICES:
            env[f"{peer.env_prefix}TARGET"] = f"127.0.0.1:{self.port_of(peer)}"
        env.update(self.env)
        port = self.port_of(info)
        env[f"{info.env_prefix}PORT"] = str(port)
        env.setdefault(f"{info.env_prefix}HOST", "127.0.0.1")
        log_path = self.log_dir / f"{info.name}.log"
        with log_path.open("ab") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", info.package], env=env, stdout=log_file, stderr=subprocess.STDOUT
            )
        return Child(info, port, process, log_path)

    def child(self, name: str) -> Child:
        """The running child of service ``name``."""
        return next(c for c in self.children if c.info.name == name)

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Stop one service abruptly (SIGKILL) or gracefully (SIGTERM), and wait for it to exit."""
        child = self.child(name)
        child.process.send_signal(sig)
        child.process.wait(timeout=30)

    def restart(self, name: str, timeout_s: float = 120.0) -> None:
        """Start a stopped service again on its port and wait until it is SERVING."""
        old = self.child(name)
        if old.process.poll() is None:
            self.kill(name)
        fresh = self._spawn(old.info)
        self.children[self.children.index(old)] = fresh
        self.wait_serving(timeout_s, only=[fresh])

    def wait_serving(self, timeout_s: float = 120.0, only: Sequence[Child] | None = None) -> None:
        """Block until every service (or those in ``only``) reports SERVING.

        Raises:
            RuntimeError: a service exited or stayed unhealthy past ``timeout_s``; the
                message names it and the tail of its log.
        """
        deadline = time.monotonic() + timeout_s
        pending = list(self.children if only is None else only)
        while pending:
            for child in list(pending):
                if child.process.poll() is not None:
                    raise RuntimeError(
                        f"{child.info.name} exited with code {child.process.returncode}:\n{self.tail(child)}"
                    )
                if (
                    health_status(child.target, credentials=self.probe_credentials)
                    == health_pb2.HealthCheckResponse.SERVING
                ):
                    pending.remove(child)
            if pending and time.monotonic() > deadline:
                names = ", ".join(c.info.name for c in pending)
                raise RuntimeError(f"not SERVING after {timeout_s:.0f} s: {names}\n{self.tail(pending[0])}")
            if pending:
                time.sleep(0.2)

    def tail(self, child: Child, lines: int = 15) -> str:
        """Last lines of a child's log."""
        try:
            return "\n".join(child.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM every service (they drain), then SIGKILL what is left after ``grace_s``."""
        for child in self.children:
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for child in self.children:
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
        self.children.clear()

    def __enter__(self) -> LocalMesh:
        """Start and wait until SERVING."""
        self.start()
        try:
            self.wait_serving()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop every service."""
        self.stop()
