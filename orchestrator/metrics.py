"""Prometheus metrics of the orchestrator's own call path (the RPC-level ones live in ``mesh.metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

FRAME_FORWARD_SECONDS = Histogram(
    "voicebot_frame_forward_seconds",
    "Time from receiving a caller audio frame to handing it to the speech-to-text stream, in seconds.",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0),
)
BARGE_IN_SECONDS = Histogram(
    "voicebot_barge_in_seconds",
    "Barge-in: from the decision to interrupt to the model and synthesis streams cancelled and "
    "BARGE_IN queued for the caller, in seconds.",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0),
)
CACHE_PREFETCHES = Counter(
    "voicebot_cache_prefetches_total",
    "Cache lookups started on a stable interim transcript, by outcome: `used` (the final transcript "
    "matched) or `dropped`.",
    ["outcome"],
)
