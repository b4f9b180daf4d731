"""The server interceptor every service runs: request ids, auth, metrics, tracing, errors.

One interceptor wraps each handler once, for all four RPC kinds, so the per-message cost of
a stream is one counter increment. For every RPC it:

1. takes the request id from ``x-request-id`` metadata (or makes one) and puts it in the
   logging context and the response's initial metadata, beside ``voicebot-service``,
   ``voicebot-version`` and ``voicebot-engine``;
2. checks the bearer token (admin RPCs need the admin token);
3. opens a server span under the caller's trace context when tracing is on;
4. counts messages in and out, active RPCs, status codes and duration;
5. turns ``MeshError`` into its status code and any other exception into INTERNAL naming the
   request id, with the traceback in the server log only;
6. answers a request that does not decode as the RPC's message with INVALID_ARGUMENT (gRPC itself
   would answer UNKNOWN and log a traceback).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, NoReturn

import grpc
from opentelemetry import propagate, trace

from mesh import metrics
from mesh.auth import TokenPolicy, bearer
from mesh.errors import InvalidArgument, MeshError
from mesh.logs import request_id_var

log = logging.getLogger("mesh.rpc")

REQUEST_ID = "x-request-id"


class _Call:
    """Book-keeping of one RPC while it runs."""

    __slots__ = ("method", "started", "messages_in", "messages_out", "cancelled")

    def __init__(self, method: str, service: str) -> None:
        self.method = method
        self.started = time.perf_counter()
        self.messages_in = metrics.MESSAGES.labels(service, method, "in")
        self.messages_out = metrics.MESSAGES.labels(service, method, "out")
        self.cancelled = False  # the handler was cancelled (the client went away or its deadline passed)


class MeshInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every handler of a server; see the module docstring for what it does."""

    def __init__(self, service: str, version: str, engine: str, policy: TokenPolicy, *, tracing: bool) -> None:
        """Create the interceptor for ``service`` running ``engine`` at package ``version``."""
        self.service = service
        self.policy = policy
        self.tracer = trace.get_tracer("voicebot.mesh") if tracing else None
        self.identity: tuple[tuple[str, str], ...] = (
            ("voicebot-service", service),
            ("voicebot-version", version),
            ("voicebot-engine", engine),
        )

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        """Return the handler for this RPC wrapped with the mesh's behaviour."""
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        deserializer = _tolerant(handler.request_deserializer)
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(handler.unary_unary, method), deserializer, handler.response_serializer
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self._wrap_unary(handler.stream_unary, method, streaming_in=True),
                deserializer,
                handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(handler.unary_stream, method),
                deserializer,
                handler.response_serializer,
            )
        return grpc.stream_stream_rpc_method_handler(
            self._wrap_stream(handler.stream_stream, method, streaming_in=True),
            deserializer,
            handler.response_serializer,
        )

    def _wrap_unary(
        self, behavior: Callable[..., Any], method: str, *, streaming_in: bool = False
    ) -> Callable[..., Any]:
        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            call = await self._begin(method, context)
            if streaming_in:
                request = _count(request, call.messages_in)
            try:
                _decoded(request)
                with self._span(method, context):
                    return await behavior(request, context)
            except BaseException as exc:
                await self._fail(exc, method, context, call)
            finally:
                self._end(call, context)

        return unary

    def _wrap_stream(
        self, behavior: Callable[..., Any], method: str, *, streaming_in: bool = False
    ) -> Callable[..., Any]:
        if not inspect.isasyncgenfunction(behavior):
            # Handlers that write with context.write() (the health Watch) return a coroutine.
            return self._wrap_unary(behavior, method, streaming_in=streaming_in)

        async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            call = await self._begin(method, context)
            if streaming_in:
                request = _count(request, call.messages_in)
            try:
                _decoded(request)
                with self._span(method, context):
                    async for response in behavior(request, context):
                        call.messages_out.inc()
                        yield response
            except BaseException as exc:
                await self._fail(exc, method, context, call)
            finally:
                self._end(call, context)

        return stream

    async def _begin(self, method: str, context: grpc.aio.ServicerContext) -> _Call:
        metadata = context.invocation_metadata() or ()
        request_id = ""
        for key, value in metadata:
            if key == REQUEST_ID and isinstance(value, str):
                request_id = value[:64]
                break
        request_id = request_id or uuid.uuid4().hex[:16]
        request_id_var.set(request_id)
        call = _Call(method, self.service)
        metrics.ACTIVE.labels(self.service, method).inc()
        try:
            await context.send_initial_metadata((*self.identity, (REQUEST_ID, request_id)))
            expected = self.policy.required(method)
            if expected:
                presented = bearer(metadata)
                if not presented:
                    await context.abort(
                        grpc.StatusCode.UNAUTHENTICATED,
                        "missing bearer token (metadata 'authorization: Bearer <token>')",
                    )
                if not self.policy.matches(presented, expected):
                    if method in self.policy.admin_methods and self.policy.matches(presented, self.policy.token):
                        await context.abort(
                            grpc.StatusCode.PERMISSION_DENIED, f"{method} is an admin RPC: it needs the admin token"
                        )
                    await context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid bearer token")
        except BaseException:
            self._end(call, context)
            raise
        return call

    def _span(self, method: str, context: grpc.aio.ServicerContext) -> AbstractContextManager[Any]:
        if self.tracer is None:
            return nullcontext()
        carrier = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
        return self.tracer.start_as_current_span(
            method.rsplit("/", 1)[-1],
            context=propagate.extract(carrier),
            kind=trace.SpanKind.SERVER,
            attributes={"rpc.system": "grpc", "rpc.method": method, "voicebot.service": self.service},
        )

    async def _fail(self, exc: BaseException, method: str, context: grpc.aio.ServicerContext, call: _Call) -> NoReturn:
        """Classify ``exc``, abort the RPC with the right status, and re-raise."""
        # Cancelled, or a response stream closed early (GeneratorExit): the RPC is being torn down.
        call.cancelled = isinstance(exc, asyncio.CancelledError | GeneratorExit)
        if isinstance(exc, MeshError):
            await context.abort(exc.code, exc.message)
        if isinstance(exc, grpc.aio.AbortError):
            raise exc
        if isinstance(exc, asyncio.CancelledError):
            raise exc
        if isinstance(exc, NotImplementedError):
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not implemented yet")
        if isinstance(exc, GeneratorExit | KeyboardInterrupt | SystemExit):
            raise exc
        log.error("unhandled error in %s", method, exc_info=exc)
        await context.abort(grpc.StatusCode.INTERNAL, f"internal error (request id {request_id_var.get()})")
        raise AssertionError("unreachable: abort raises")

    def _end(self, call: _Call, context: grpc.aio.ServicerContext) -> None:
        cancelled = call.cancelled or context.cancelled()
        code = context.code() or (grpc.StatusCode.CANCELLED if cancelled else grpc.StatusCode.OK)
        elapsed = time.perf_counter() - call.started
        metrics.ACTIVE.labels(self.service, call.method).dec()
        metrics.RPCS.labels(self.service, call.method, code.name).inc()
        metrics.RPC_SECONDS.labels(self.service, call.method).observe(elapsed)
        if code not in (grpc.StatusCode.OK, grpc.StatusCode.CANCELLED):
            log.info(
                "rpc failed",
                extra={
                    "method": call.method,
                    "code": code.name,
                    "details": context.details(),
                    "ms": round(elapsed * 1000, 1),
                },
            )


async def _count(requests: AsyncIterator[Any], counter: Any) -> AsyncIterator[Any]:
    async for request in requests:
        counter.inc()
        _decoded(request)
        yield request


class _Undecodable:
    """Stands in for a request message whose bytes did not parse; the handler wrapper refuses it."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """Wrap a request deserializer so that bad bytes become an ``_Undecodable`` instead of an exception."""
    if deserializer is None:
        return None

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as exc:  # protobuf's DecodeError, or a custom deserializer's own error
            return _Undecodable(str(exc) or type(exc).__name__)

    return deserialize


def _decoded(request: Any) -> None:
    """Raise INVALID_ARGUMENT when ``request`` is a message that did not decode."""
    if isinstance(request, _Undecodable):
        raise InvalidArgument(f"request is not a valid protobuf message of this RPC: {request.reason}")
