"""gRPC failures as one clear line, never a traceback."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
import grpc

T = TypeVar("T")


def explain(exc: grpc.RpcError, target: str) -> str:
    """A one-line explanation of a failed call to ``target`` that says what to do."""
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = exc.details() if hasattr(exc, "details") else str(exc)
    if code == grpc.StatusCode.UNAVAILABLE:
        return f"nothing answers at {target} — is the mesh running? try `voicebot up`"
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"{target} did not answer in time (raise --timeout?)"
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return f"{target} refused the call: {details} (pass --token or set VOICEBOT_TOKEN)"
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return f"{target} refused the call: {details} (admin commands need the admin token)"
    return f"{code.name}: {details}"


@contextmanager
def friendly_errors(target: str) -> Iterator[None]:
    """Turn a gRPC failure inside the block into a ClickException (exit code 1, one line)."""
    try:
        yield
    except grpc.RpcError as exc:
        raise click.ClickException(explain(exc, target)) from None


def run(coro: Coroutine[Any, Any, T], target: str) -> T:
    """Run an async command body, with friendly errors for ``target``."""
    with friendly_errors(target):
        return asyncio.run(coro)
