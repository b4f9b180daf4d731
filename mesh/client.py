"""``dial()``: the one channel factory every client in the mesh uses."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

from mesh.interceptor import REQUEST_ID
from mesh.logs import request_id_var
from mesh.settings import ServiceSettings, read_secret
from mesh.tls import channel_credentials
from mesh.tracing import inject_metadata, tracing_enabled

# Retry only UNAVAILABLE (connection refused, server draining), and only before any response
# arrived: gRPC never replays a stream that has started, so retries cannot duplicate work.
_SERVICE_CONFIG = json.dumps(
    {
        # A headless Service resolves to every replica: spread calls over them, not over one.
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [
            {
                "name": [{}],
                "retryPolicy": {
                    "maxAttempts": 3,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "0.5s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ],
    }
)


@dataclass(frozen=True)
class DialOptions:
    """How to reach a service: token, TLS files, default deadline and message size."""

    token: str = ""
    tls_ca_file: str = ""
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls: bool = False
    default_timeout_s: float = 10.0
    max_message_bytes: int = 4 * 1024 * 1024

    @classmethod
    def from_settings(cls, settings: ServiceSettings, *, admin: bool = False) -> DialOptions:
        """Options for a service dialling its peers with the mesh's shared TLS and token."""
        token = read_secret(settings.auth_token, settings.auth_token_file)
        if admin:
            token = read_secret(settings.admin_token, settings.admin_token_file) or token
        return cls(
            token=token,
            tls_ca_file=settings.tls_ca_file,
            tls_cert_file=settings.tls_cert_file if settings.tls_client_auth else "",
            tls_key_file=settings.tls_key_file if settings.tls_client_auth else "",
            tls=bool(settings.tls_cert_file or settings.tls_ca_file),
            max_message_bytes=settings.max_message_bytes,
        )


class _Metadata:
    """Adds the token, request id and trace context to every call; a default deadline to unary calls."""

    def __init__(self, token: str, default_timeout_s: float) -> None:
        self.token = token
        self.default_timeout_s = default_timeout_s
        self.tracing = tracing_enabled()

    def _details(self, details: grpc.aio.ClientCallDetails, *, unary: bool) -> grpc.aio.ClientCallDetails:
        metadata = list(details.metadata or ())
        if self.token:
            metadata.append(("authorization", f"Bearer {self.token}"))
        request_id = request_id_var.get()
        if request_id and not any(k == REQUEST_ID for k, _ in metadata):
            metadata.append((REQUEST_ID, request_id))
        if self.tracing:
            inject_metadata(metadata)
        timeout = details.timeout
        if timeout is None and unary:
            timeout = self.default_timeout_s
        return grpc.aio.ClientCallDetails(
            details.method, timeout, grpc.aio.Metadata(*metadata), details.credentials, details.wait_for_ready
        )

    async def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        """Decorate a unary call."""
        return await continuation(self._details(details, unary=True), request)

    async def intercept_unary_stream(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        """Decorate a server-streaming call."""
        return await continuation(self._details(details, unary=False), request)

    async def intercept_stream_unary(
        self, continuation: Callable[..., Any], details: Any, request_iterator: Any
    ) -> Any:
        """Decorate a client-streaming call."""
        return await continuation(self._details(details, unary=False), request_iterator)

    async def intercept_stream_stream(
        self, continuation: Callable[..., Any], details: Any, request_iterator: Any
    ) -> Any:
        """Decorate a bidirectional call."""
        return await continuation(self._details(details, unary=False), request_iterator)


# grpc.aio files each interceptor under the first of the four interfaces it implements, so one
# object implementing all four would only ever see unary-unary calls: one subclass per kind.
class _UnaryUnary(_Metadata, grpc.aio.UnaryUnaryClientInterceptor):
    pass


class _UnaryStream(_Metadata, grpc.aio.UnaryStreamClientInterceptor):
    pass


class _StreamUnary(_Metadata, grpc.aio.StreamUnaryClientInterceptor):
    pass


class _StreamStream(_Metadata, grpc.aio.StreamStreamClientInterceptor):
    pass


def dial(target: str, options: DialOptions | None = None) -> grpc.aio.Channel:
    """Open an aio channel to ``target`` ("host:port") with retries, keepalive, TLS and token.

    Unary calls without a timeout get ``default_timeout_s``; streaming calls must set their
    own deadline. TLS is used when ``options.tls`` is true or a CA file is given.
    """
    options = options or DialOptions()
    channel_options = [
        ("grpc.service_config", _SERVICE_CONFIG),
        ("grpc.enable_retries", 1),
        ("grpc.max_receive_message_length", options.max_message_bytes),
        ("grpc.max_send_message_length", options.max_message_bytes),
        # Ping idle connections every 20 s so a dead peer is noticed within 30 s; the servers
        # tolerate pings every 10 s.
        ("grpc.keepalive_time_ms", 20_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        # gRPC's default reconnect backoff grows to 2 minutes; a restarted peer in the mesh is back
        # in seconds, and calls fail fast (the bot apologises) until the channel reconnects.
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.min_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 2000),
    ]
    kinds = (_UnaryUnary, _UnaryStream, _StreamUnary, _StreamStream)
    interceptors = [kind(options.token, options.default_timeout_s) for kind in kinds]
    if options.tls or options.tls_ca_file:
        credentials = channel_credentials(options.tls_ca_file, options.tls_cert_file, options.tls_key_file)
        return grpc.aio.secure_channel(target, credentials, options=channel_options, interceptors=interceptors)
    return grpc.aio.insecure_channel(target, options=channel_options, interceptors=interceptors)
