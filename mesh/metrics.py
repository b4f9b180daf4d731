"""Prometheus metrics of the RPC layer, served on a separate HTTP port.

The metric objects live at module level because prometheus_client registers them once per
process; the ``service`` label tells apart several servers in one process (tests, ``voicebot up``
does not do that: one process per service).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RPCS = Counter("voicebot_rpc", "RPCs finished, by status code.", ["service", "method", "code"])
RPC_SECONDS = Histogram(
    "voicebot_rpc_duration_seconds",
    "RPC duration from arrival to status, in seconds.",
    ["service", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
)
MESSAGES = Counter(
    "voicebot_stream_messages", "Stream messages, by direction ('in' or 'out').", ["service", "method", "direction"]
)
ACTIVE = Gauge("voicebot_rpc_active", "RPCs in progress.", ["service", "method"])
WORKER_QUEUE = Gauge("voicebot_worker_pending", "Blocking engine calls waiting or running, per bridge.", ["bridge"])
WORKER_SECONDS = Histogram(
    "voicebot_worker_seconds",
    "Time a blocking engine call ran in its worker thread, in seconds.",
    ["bridge"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def serve_metrics(port: int, host: str = "0.0.0.0") -> int:
    """Serve ``/metrics`` over HTTP in a daemon thread; returns the bound port."""
    server, _thread = start_http_server(port, addr=host)
    return int(server.server_port)
