"""The SQLite store: schema migrations, retention at start and periodically, settings."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from analytics_svc.app import AnalyticsApp
from analytics_svc.config import AnalyticsSettings
from analytics_svc.engines import build_store
from analytics_svc.engines.sqlite import MIGRATIONS, Migration, connect, migrate, schema_version
from mesh import FailedPrecondition, MeshServer
from mesh.settings import SettingsError
from tests.analytics_svc.builders import call_started, turn
from tests.analytics_svc.conftest import AnalyticsFactory


def count(path: str, sql: str = "SELECT COUNT(*) FROM events") -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(sql).fetchone()[0])


def test_a_new_database_gets_every_migration_in_order(tmp_path: Path) -> None:
    conn = connect(str(tmp_path / "a.db"))
    assert schema_version(conn) == 0
    assert migrate(conn) == len(MIGRATIONS)
    rows = conn.execute("SELECT version, description FROM schema_version ORDER BY version").fetchall()
    assert rows == [(m.version, m.description) for m in MIGRATIONS]
    assert migrate(conn) == len(MIGRATIONS)  # applying again changes nothing
    assert conn.execute("SELECT COUNT(*) FROM schema_version").fetchone() == (len(MIGRATIONS),)


def test_a_later_migration_upgrades_an_existing_database(tmp_path: Path) -> None:
    conn = connect(str(tmp_path / "a.db"))
    migrate(conn)
    conn.execute(
        "INSERT INTO events (event_id, session_id, time_us, ingested_us, kind, payload) VALUES "
        "('e', 's', 1, 1, 'call_started', x'')"
    )
    later = (*MIGRATIONS, Migration(len(MIGRATIONS) + 1, "test column", ("ALTER TABLE events ADD COLUMN extra TEXT",)))
    assert migrate(conn, later) == len(later)
    assert conn.execute("SELECT event_id, extra FROM events").fetchall() == [("e", None)]


def test_a_failed_migration_leaves_the_version_unchanged(tmp_path: Path) -> None:
    conn = connect(str(tmp_path / "a.db"))
    migrate(conn)
    broken = (*MIGRATIONS, Migration(len(MIGRATIONS) + 1, "broken", ("CREATE TABLE t (x)", "NOT SQL")))
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, broken)
    assert schema_version(conn) == len(MIGRATIONS)
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 't'").fetchone() is None


def test_migrations_must_be_numbered_in_order(tmp_path: Path) -> None:
    conn = connect(str(tmp_path / "a.db"))
    with pytest.raises(ValueError, match="numbered"):
        migrate(conn, (Migration(2, "two", ()),))


async def test_a_database_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "new.db")
    conn = connect(path)
    migrate(conn)
    conn.execute("INSERT INTO schema_version VALUES (99, 'future', 'x')")
    conn.close()
    settings = AnalyticsSettings.from_env(host="127.0.0.1", port=0, metrics_port=-1, db_path=path)
    server = MeshServer(AnalyticsApp(settings), settings)
    with pytest.raises(FailedPrecondition, match="version 99"):
        await server.start()
    await server.stop(0)


async def test_retention_deletes_old_events_at_start_and_periodically(make_analytics: AnalyticsFactory) -> None:
    now = datetime.now(UTC)
    first = await make_analytics(retention_days=0)  # keeps everything
    await first.ingest([call_started("old", now - timedelta(days=40)), turn("new", now)])
    path = first.settings.db_path
    await first.server.stop(0)
    assert count(path) == 2

    second = await make_analytics(db_path=path, retention_days=30, retention_interval_s=0.05)
    assert count(path) == 1  # swept before SERVING
    await second.ingest([turn("aging", now - timedelta(days=30, seconds=-1))])
    assert count(path) == 2
    while count(path) > 1:  # noqa: ASYNC110 - the periodic sweep deletes it once it is 30 days old
        await asyncio.sleep(0.05)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT session_id FROM events").fetchall() == [("new",)]


async def test_retention_works_in_chunks(make_analytics: AnalyticsFactory) -> None:
    old = datetime.now(UTC) - timedelta(days=100)
    analytics = await make_analytics(retention_days=0)
    batches = [[turn(f"s{b}", old, index=i) for i in range(500)] for b in range(25)]
    await analytics.ingest(*batches)
    assert await analytics.app.store.delete_older_than(int(datetime.now(UTC).timestamp() * 1e6)) == 12_500
    assert count(analytics.settings.db_path) == 0


def test_settings_defaults_and_environment() -> None:
    settings = AnalyticsSettings.from_env({})
    assert settings.db_path == ".voicebot/analytics.db"
    assert (settings.engine, settings.retention_days, settings.port) == ("sqlite", 90.0, 50056)
    env = {"VOICEBOT_ANALYTICS_DB_PATH": ":memory:", "VOICEBOT_ANALYTICS_RETENTION_DAYS": "7"}
    assert AnalyticsSettings.from_env(env).retention_days == 7.0


@pytest.mark.parametrize(
    ("field", "value", "variable"),
    [
        ("stream_inflight_batches", 0, "VOICEBOT_ANALYTICS_STREAM_INFLIGHT_BATCHES"),
        ("write_batch_rows", 100, "VOICEBOT_ANALYTICS_WRITE_BATCH_ROWS"),
        ("db_synchronous", "OFF", "VOICEBOT_ANALYTICS_DB_SYNCHRONOUS"),
        ("retention_days", -1.0, "VOICEBOT_ANALYTICS_RETENTION_DAYS"),
    ],
)
def test_settings_out_of_range_name_their_variable(field: str, value: object, variable: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        AnalyticsSettings.from_env({}, **{field: value})


def test_an_unknown_engine_is_refused() -> None:
    with pytest.raises(SettingsError, match="VOICEBOT_ANALYTICS_ENGINE='postgres'"):
        build_store(AnalyticsSettings.from_env({}, engine="postgres"))


async def test_the_default_database_lands_under_dot_voicebot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = AnalyticsSettings.from_env({}, host="127.0.0.1", port=0, metrics_port=-1)
    async with MeshServer(AnalyticsApp(settings), settings):
        pass
    assert (tmp_path / ".voicebot" / "analytics.db").is_file()


def test_a_version_1_database_is_upgraded_to_the_kind_and_time_index(tmp_path: Path) -> None:
    conn = connect(str(tmp_path / "v1.db"))
    assert migrate(conn, MIGRATIONS[:1]) == 1
    assert migrate(conn) == 2
    indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "events_by_kind_time" in indexes
