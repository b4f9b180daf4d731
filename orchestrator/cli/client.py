"""Run a command's gRPC calls against one service: dial it, run the calls, explain failures in one line."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc

from mesh.client import dial
from orchestrator.cli.errors import run
from orchestrator.cli.options import ClientConfig

T = TypeVar("T")
S = TypeVar("S")


def call(config: ClientConfig, service: str, calls: Callable[[grpc.aio.Channel], Awaitable[T]]) -> T:
    """Dial ``service`` with the client options, await ``calls(channel)``, close the channel.

    A failed RPC becomes a one-line ``ClickException`` (exit code 1) naming the target.
    """
    target = config.target(service)

    async def body() -> T:
        async with dial(target, config.dial_options()) as channel:
            return await calls(channel)

    return run(body(), target)


def unary(
    config: ClientConfig, service: str, stub_type: Callable[[grpc.aio.Channel], S], rpc: Callable[[S], Awaitable[T]]
) -> T:
    """Make one call ``rpc(stub)`` on a ``stub_type`` stub of ``service``; see :func:`call`."""

    async def calls(channel: grpc.aio.Channel) -> T:
        return await rpc(stub_type(channel))

    return call(config, service, calls)
