"""OpenTelemetry tracing: configured from the standard ``OTEL_*`` variables, off by default.

Tracing is on when ``OTEL_TRACES_EXPORTER`` names an exporter (``otlp`` or ``console``) or
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, or when a test installs an SDK tracer provider
itself. Trace context travels in gRPC metadata with the W3C ``traceparent`` header.
"""

from __future__ import annotations

import os

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter


def configure_tracing(service: str) -> bool:
    """Install an SDK tracer provider when the environment asks for one; True when tracing is on."""
    if tracing_enabled():
        return True
    exporter_name = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter_name in ("", "none") and not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return False
    exporter: SpanExporter
    if exporter_name == "console":
        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    name = os.environ.get("OTEL_SERVICE_NAME", f"voicebot-{service}")
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return True


def tracing_enabled() -> bool:
    """True when an SDK tracer provider is installed (the API's default one records nothing)."""
    return isinstance(trace.get_tracer_provider(), TracerProvider)


def inject_metadata(metadata: list[tuple[str, str]]) -> None:
    """Append the current trace context to outgoing gRPC metadata."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    metadata.extend(carrier.items())
