"""Settings of analytics_svc: every field is read from ``VOICEBOT_ANALYTICS_<FIELD>``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mesh.settings import ServiceSettings, SettingsError, setting


@dataclass(frozen=True)
class AnalyticsSettings(ServiceSettings):
    """Settings of analytics_svc."""

    service: ClassVar[str] = "analytics"
    port: int = setting(50056, "gRPC port; 0 picks a free port.")
    engine: str = setting("sqlite", "Event store: `sqlite` (the only one so far).")
    db_path: str = setting(
        ".voicebot/analytics.db",
        "SQLite database file (WAL mode; its folder is created); `:memory:` keeps events in memory only.",
    )
    db_synchronous: str = setting(
        "NORMAL",
        "SQLite `synchronous` pragma: NORMAL (a power loss may lose the last commits, never corrupts) or FULL.",
    )
    retention_days: float = setting(
        90.0, "Events older than this many days (by event time) are deleted; 0 keeps them forever."
    )
    retention_interval_s: float = setting(
        3600.0, "Seconds between retention sweeps; one also runs at start, before the service reports SERVING."
    )
    write_batch_rows: int = setting(
        2000, "Most events written in one SQLite transaction; batches waiting together are merged up to this."
    )
    max_pending_batches: int = setting(
        256, "Ingest batches waiting for the writer, all streams together; more are refused with RESOURCE_EXHAUSTED."
    )
    stream_inflight_batches: int = setting(
        4, "Batches of one Ingest stream being written at once (1-64); the stream reads ahead this far."
    )
    report_workers: int = setting(2, "Threads running reports and session replays, each with its own connection.")
    max_report_events: int = setting(
        5_000_000, "Most events one GetReport may aggregate; a larger range is refused with RESOURCE_EXHAUSTED."
    )
    max_watchers_per_session: int = setting(
        16, "WatchSession streams on one session at once; more are refused with RESOURCE_EXHAUSTED."
    )
    watcher_queue_size: int = setting(
        4096,
        "Events queued for one watcher; a watcher that falls this far behind ends with RESOURCE_EXHAUSTED. "
        "Keep it above WRITE_BATCH_ROWS.",
    )
    max_tracked_calls: int = setting(
        100_000, "Calls tracked as active for the voicebot_calls_active gauge; the oldest are forgotten beyond this."
    )

    def __post_init__(self) -> None:
        """Check every field against its range.

        Raises:
            SettingsError: a field is out of range, named by its variable.
        """
        checks: tuple[tuple[str, bool, str], ...] = (
            ("db_path", bool(self.db_path), "must not be empty"),
            ("db_synchronous", self.db_synchronous.upper() in ("NORMAL", "FULL", "EXTRA"), "NORMAL, FULL or EXTRA"),
            ("retention_days", self.retention_days >= 0, "must be >= 0"),
            ("retention_interval_s", self.retention_interval_s > 0, "must be > 0"),
            ("write_batch_rows", self.write_batch_rows >= 500, "must be >= 500 (the largest batch)"),
            ("max_pending_batches", self.max_pending_batches >= 1, "must be >= 1"),
            ("stream_inflight_batches", 1 <= self.stream_inflight_batches <= 64, "must be 1-64"),
            ("report_workers", 1 <= self.report_workers <= 32, "must be 1-32"),
            ("max_report_events", self.max_report_events >= 1, "must be >= 1"),
            ("max_watchers_per_session", self.max_watchers_per_session >= 1, "must be >= 1"),
            ("watcher_queue_size", self.watcher_queue_size >= 1, "must be >= 1"),
            ("max_tracked_calls", self.max_tracked_calls >= 1, "must be >= 1"),
        )
        for name, ok, rule in checks:
            if not ok:
                raise SettingsError(f"{self.env_name(name)}={getattr(self, name)!r}: {rule}")
