"""analytics_svc: ingest throughput over gRPC, and GetReport latency over a large store.

Ingest: ``--ingest-events`` turn events (realistic transcripts, some with personal data to
redact) in batches of ``--batch`` over one Ingest stream, then over 16 concurrent streams,
into ``python -m analytics_svc`` running in its own process on a fresh SQLite file. Baseline
in the same run: the same rows (already redacted and converted) written with plain
``sqlite3`` ``executemany``, one transaction per batch, on a fresh file with the same schema
and pragmas, without gRPC.

Report: ``--events`` synthetic events (about 7 per call over 30 days) are bulk-loaded straight
into SQLite, then GetReport is timed for every grouping (median of ``--rounds``). Baseline: the
same query and pandas aggregation called in-process, without gRPC or the service.

    python benchmarks/analytics.py                       # ~2-3 minutes on 2 busy cores
    python benchmarks/analytics.py --events 100000 --ingest-events 5000   # quick look
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analytics_svc.aggregate import build_report
from analytics_svc.engine import EventKind, Grouping, ReportQuery
from analytics_svc.engines.sqlite import INSERT_SQL, connect, fetch_report_events, migrate, record_row
from analytics_svc.servicer import to_record, to_records
from voicebot.v1 import analytics_service_pb2 as pb
from voicebot.v1 import analytics_service_pb2_grpc

INTENTS = ["loan_quote", "balance", "card_block", "transfer_money", "opening_hours", ""]
ADAPTERS = ["", "", "loans-v2", "cards-v1"]
TRANSCRIPTS = [
    "what would my monthly payment be for a loan of 25000 over five years",
    "I'd like to block my card 4111 1111 1111 1111 please",
    "what is my balance",
    "can you send 200 dollars to my savings account 12345678",
    "when are you open on saturday",
    "my email is jane.doe@example.com and my phone is (555) 867-5309",
]
GROUPINGS = [
    ("none", pb.REPORT_GROUPING_UNSPECIFIED),
    ("hour", pb.REPORT_GROUPING_HOUR),
    ("day", pb.REPORT_GROUPING_DAY),
    ("intent", pb.REPORT_GROUPING_INTENT),
    ("adapter", pb.REPORT_GROUPING_ADAPTER),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def turn_events(count: int, prefix: str) -> list[pb.Event]:
    rng = random.Random(7)
    events = []
    for i in range(count):
        event = pb.Event(event_id=f"{prefix}-{i}", session_id=f"{prefix}-s{i // 8}")
        event.time.GetCurrentTime()
        event.turn_completed.CopyFrom(
            pb.TurnCompleted(
                turn_index=i % 8,
                transcript=rng.choice(TRANSCRIPTS),
                response_text="Your payment would be about 471 dollars a month at 5.5 percent.",
                intent=rng.choice(INTENTS),
                adapter=rng.choice(ADAPTERS),
                cache_hit=rng.random() < 0.3,
                latency=pb.TurnLatency(
                    final_transcript_ms=rng.randint(80, 300),
                    first_token_ms=rng.randint(200, 700),
                    first_audio_ms=rng.randint(400, 1500),
                    stt_compute_ms=60,
                    llm_compute_ms=150,
                    tts_compute_ms=90,
                ),
            )
        )
        events.append(event)
    return events


class Server:
    """``python -m analytics_svc`` in a child process."""

    def __init__(self, db_path: str) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "VOICEBOT_ANALYTICS_HOST": "127.0.0.1",
            "VOICEBOT_ANALYTICS_PORT": str(self.port),
            "VOICEBOT_ANALYTICS_METRICS_PORT": "-1",
            "VOICEBOT_ANALYTICS_DB_PATH": db_path,
            "VOICEBOT_ANALYTICS_RETENTION_DAYS": "0",
            "VOICEBOT_ANALYTICS_LOG_LEVEL": "WARNING",
        }
        self.process = subprocess.Popen([sys.executable, "-m", "analytics_svc"], env=env)

    async def ready(self) -> grpc.aio.Channel:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{self.port}")
        health = health_pb2_grpc.HealthStub(channel)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=2)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return channel
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.2)
        raise RuntimeError("analytics_svc did not become SERVING")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def batches(events: list[pb.Event], size: int) -> Iterator[list[pb.Event]]:
    for start in range(0, len(events), size):
        yield events[start : start + size]


async def ingest_rate(
    stub: analytics_service_pb2_grpc.AnalyticsServiceStub, streams: list[list[pb.Event]], size: int
) -> float:
    async def one(events: list[pb.Event]) -> int:
        async def requests() -> AsyncIterator[pb.IngestRequest]:
            for batch in batches(events, size):
                yield pb.IngestRequest(events=batch)

        response = await stub.Ingest(requests(), timeout=600)
        assert response.accepted_count == len(events), response
        return int(response.accepted_count)

    started = time.perf_counter()
    total = sum(await asyncio.gather(*(one(events) for events in streams)))
    return total / (time.perf_counter() - started)


def conversion_rate(events: list[pb.Event], size: int) -> float:
    """Events/s of validation, redaction and row building alone (what the service adds to SQLite)."""
    copies = [
        pb.IngestRequest(events=batch)
        for batch in batches([pb.Event.FromString(e.SerializeToString()) for e in events], size)
    ]
    started = time.perf_counter()
    rows = [record_row(record, 0) for i, request in enumerate(copies) for record in to_records(request, i, 0)]
    return len(rows) / (time.perf_counter() - started)


def sqlite_baseline(events: list[pb.Event], size: int, path: str) -> tuple[float, float]:
    """Rows/s of plain executemany: one transaction per batch, and one for everything."""
    now_us = time.time_ns() // 1000
    copies = [pb.Event.FromString(e.SerializeToString()) for e in events]
    rows = [record_row(to_record(event, now_us), now_us) for event in copies]
    results = []
    for label in ("batched", "single"):
        conn = connect(f"{path}.{label}")
        migrate(conn)
        started = time.perf_counter()
        chunks = [rows[i : i + size] for i in range(0, len(rows), size)] if label == "batched" else [rows]
        for chunk in chunks:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(INSERT_SQL, chunk)
            conn.execute("COMMIT")
        results.append(len(rows) / (time.perf_counter() - started))
        conn.close()
    return results[0], results[1]


def bulk_load(path: str, count: int) -> tuple[float, float]:
    """Write ``count`` synthetic events of calls spread over the last 30 days; returns seconds and MB."""
    rng = random.Random(11)
    conn = connect(path)
    migrate(conn)
    templates = {kind.value: f"synthetic {kind.value} payload".encode() for kind in EventKind}
    now_us = time.time_ns() // 1000
    span_us = 30 * 86_400 * 1_000_000
    started = time.perf_counter()
    written = 0
    call = 0
    chunk: list[tuple[object, ...]] = []
    empty = (None,) * 7

    def row(kind: str, t: int, session: str, **cols: object) -> tuple[object, ...]:
        nonlocal written
        written += 1
        lat = cols.get("lat", empty)
        return (
            f"b{written}", session, t, now_us, kind, cols.get("turn"), cols.get("intent"), cols.get("adapter"),
            cols.get("hit"), None, *lat, cols.get("duration"), cols.get("reason"), None, None, None, None,
            templates[kind],
        )  # fmt: skip

    while written < count:
        call += 1
        session = f"call-{call}"
        t = now_us - rng.randrange(span_us)
        adapter = rng.choice(ADAPTERS)
        chunk.append(row("call_started", t, session, adapter=adapter))
        turns = rng.randint(1, 7)
        for index in range(turns):
            t += rng.randint(5, 40) * 1_000_000
            first_token = rng.randint(200, 900)
            lat = (
                rng.randint(80, 300),
                first_token,
                first_token + rng.randint(150, 800),
                rng.choice((0, 12)),
                60,
                150,
                90,
            )
            chunk.append(
                row("turn_completed", t, session, turn=index, intent=rng.choice(INTENTS), adapter=adapter,
                    hit=int(rng.random() < 0.3), lat=lat)
            )  # fmt: skip
            if rng.random() < 0.15:
                chunk.append(row("barge_in", t + 500_000, session, turn=index))
        if rng.random() < 0.03:
            chunk.append(row("call_error", t, session))
        transferred = rng.random() < 0.12
        if transferred:
            chunk.append(row("agent_transfer", t, session, turn=turns - 1))
        chunk.append(
            row(
                "call_ended",
                t + 5_000_000,
                session,
                duration=turns * 25_000,
                reason="transfer" if transferred else "hangup",
            )
        )
        if len(chunk) >= 50_000:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(INSERT_SQL, chunk)
            conn.execute("COMMIT")
            chunk.clear()
    if chunk:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(INSERT_SQL, chunk)
        conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return time.perf_counter() - started, os.path.getsize(path) / 1e6


def in_process_report(path: str, grouping: Grouping) -> tuple[float, float]:
    """CPU seconds to fetch the rows and to aggregate them, without gRPC (CPU time: the machine is shared)."""
    conn = sqlite3.connect(path)
    now_us = time.time_ns() // 1000
    query = ReportQuery(now_us - 31 * 86_400 * 1_000_000, now_us + 1, grouping)
    started = time.process_time()
    frame = fetch_report_events(conn, query)
    fetched = time.process_time()
    build_report(frame, query)
    done = time.process_time()
    conn.close()
    return fetched - started, done - fetched


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="events bulk-loaded for the report part")
    parser.add_argument("--ingest-events", type=int, default=20_000, help="events sent in each ingest run")
    parser.add_argument("--batch", type=int, default=100, help="events per IngestRequest")
    parser.add_argument("--streams", type=int, default=16, help="concurrent Ingest streams")
    parser.add_argument("--rounds", type=int, default=1, help="GetReport calls per grouping (median)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        print(f"analytics benchmark: {args.ingest_events} ingest events, batches of {args.batch}; {args.events} stored")
        events = turn_events(args.ingest_events, "one")
        many = turn_events(args.ingest_events, "many")
        per_stream = [many[i :: args.streams] for i in range(args.streams)]

        server = Server(str(Path(tmp) / "ingest.db"))
        try:
            channel = await server.ready()
            stub = analytics_service_pb2_grpc.AnalyticsServiceStub(channel)
            one_stream = await ingest_rate(stub, [events], args.batch)
            concurrent = await ingest_rate(stub, per_stream, args.batch)
            await channel.close()
        finally:
            server.stop()
        batched, single = sqlite_baseline(events, args.batch, str(Path(tmp) / "baseline.db"))
        converted = conversion_rate(events, args.batch)

        print()
        print("| ingest | events/s | vs executemany per batch |")
        print("|---|---:|---:|")
        print(
            f"| sqlite3 executemany, one transaction per {args.batch}-event batch (baseline) | {batched:,.0f} | 1.00 |"
        )
        print(f"| sqlite3 executemany, one transaction for all | {single:,.0f} | {single / batched:.2f} |")
        print(
            f"| validation + redaction + row building only, no SQLite | {converted:,.0f} | {converted / batched:.2f} |"
        )
        print(f"| gRPC Ingest, 1 stream | {one_stream:,.0f} | {one_stream / batched:.2f} |")
        print(f"| gRPC Ingest, {args.streams} concurrent streams | {concurrent:,.0f} | {concurrent / batched:.2f} |")

        path = str(Path(tmp) / "report.db")
        load_s, size_mb = bulk_load(path, args.events)
        print()
        print(f"bulk load: {args.events:,} events in {load_s:.1f} s ({args.events / load_s:,.0f}/s), {size_mb:.0f} MB")

        server = Server(path)
        try:
            channel = await server.ready()
            stub = analytics_service_pb2_grpc.AnalyticsServiceStub(channel)
            print()
            header = "gRPC median s (wall) | in-process fetch CPU s | pandas CPU s | ratio"
            print(f"| GetReport over {args.events:,} events | {header} |")
            print("|---|---:|---:|---:|---:|")
            for name, grouping in GROUPINGS:
                request = pb.GetReportRequest(group_by=grouping)
                request.end_time.GetCurrentTime()
                request.start_time.FromMicroseconds(request.end_time.ToMicroseconds() - 31 * 86_400 * 1_000_000)
                times = []
                for _ in range(args.rounds):
                    started = time.perf_counter()
                    response = await stub.GetReport(request, timeout=600)
                    times.append(time.perf_counter() - started)
                assert response.total.calls > 0
                fetch_s, pandas_s = in_process_report(path, Grouping(name))
                median = statistics.median(times)
                print(f"| {name} ({len(response.rows)} rows) | {median:.2f} | {fetch_s:.2f} | {pandas_s:.2f} | "
                      f"{median / (fetch_s + pandas_s):.2f} |")  # fmt: skip
            await channel.close()
        finally:
            server.stop()


if __name__ == "__main__":
    asyncio.run(main())
