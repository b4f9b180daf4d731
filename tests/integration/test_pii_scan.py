"""A call that speaks and types a card number and an account number leaves neither anywhere.

The whole mesh runs as processes with traces exported to the console (so every span lands in the
service logs), DEBUG logging, sessions and cache entries in a real Redis, analytics in SQLite. The
caller says a Luhn-valid card number and an account number (Piper speech through stt_svc) and
types them; then every place data comes to rest is scanned for either number, in any grouping
(spaces, dashes, dots), and for the digits that masking must hide (all but the last four).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import redis

from mesh import dial
from orchestrator.caller import caller_format, place_call
from orchestrator.demo import speak_lines
from orchestrator.launcher import LocalMesh
from tests.conftest import RedisServer
from tests.integration.conftest import start_mesh
from voicebot.v1 import (
    analytics_service_pb2,
    analytics_service_pb2_grpc,
    cache_service_pb2,
    cache_service_pb2_grpc,
    orchestrator_service_pb2_grpc,
)
from voicebot.v1 import orchestrator_service_pb2 as pb

pytestmark = pytest.mark.slow

CARD = "4111111111111111"  # Visa's Luhn-valid test number
ACCOUNT = "482019375521"
TYPED = [
    "my card number is 4111 1111 1111 1111 and I think it was stolen",
    "please check my savings account 4820-1937-5521",
    "the card is 4111111111111111, account 482019375521",
]
SPOKEN = ["My card number is 4111 1111 1111 1111.", "My account number is 4820 1937 5521."]


def _pattern(digits: str) -> re.Pattern[str]:
    """``digits`` in order with any separators (space, dash, dot, comma, slash) between them."""
    return re.compile(r"[\s.,/-]*".join(digits))


# Each full number, and the part of it that masking must hide (a leak of those digits is a leak).
PATTERNS = {
    "card": _pattern(CARD),
    "card (masked part)": _pattern(CARD[:-4]),
    "account": _pattern(ACCOUNT),
    "account (masked part)": _pattern(ACCOUNT[:-4]),
}


def leaks(where: str, text: str) -> list[str]:
    """One line per number found in ``text``, naming ``where`` and the surroundings."""
    found = []
    for name, pattern in PATTERNS.items():
        for match in pattern.finditer(text):
            found.append(f"{where}: {name} {text[max(0, match.start() - 60) : match.end() + 20]!r}")
    return found


def _files(folder: Path) -> Iterator[Path]:
    yield from (path for path in sorted(folder.rglob("*")) if path.is_file())


def _redis_dump(url: str) -> str:
    client = redis.Redis.from_url(url)
    lines = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        value: object
        if kind == "string":
            value = client.get(key)
        elif kind == "hash":
            value = client.hgetall(key)
        elif kind == "list":
            value = client.lrange(key, 0, -1)
        elif kind == "set":
            value = client.smembers(key)
        elif kind == "zset":
            value = client.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            value = client.xrange(key)
        else:
            value = kind
        lines.append(f"{key!r} = {value!r}")
    client.close()
    return "\n".join(lines)


@pytest.fixture
def pii_mesh(tmp_path: Path, redis_server: RedisServer) -> Iterator[LocalMesh]:
    """The mesh with console traces, DEBUG logs, sessions and cache entries in Redis."""
    mesh = start_mesh(
        tmp_path,
        OTEL_TRACES_EXPORTER="console",
        OTEL_BSP_SCHEDULE_DELAY="200",
        VOICEBOT_LOG_LEVEL="DEBUG",
        VOICEBOT_ORCHESTRATOR_SESSION_STORE="redis",
        VOICEBOT_CACHE_STORAGE="redis",
        VOICEBOT_REDIS_URL=redis_server.url,
    )
    yield mesh
    mesh.stop()


async def test_card_and_account_numbers_leave_no_trace(
    pii_mesh: LocalMesh, tmp_path: Path, redis_server: RedisServer
) -> None:
    speech: list[np.ndarray] = list(speak_lines(tuple(SPOKEN)))
    async with dial(pii_mesh.child("orchestrator").target) as channel:
        stub = orchestrator_service_pb2_grpc.OrchestratorServiceStub(channel)
        spoken = await place_call(
            stub,
            pb.SessionConfig(input_format=caller_format(), caller_id="+12175550101"),
            caller_audio=speech,
            texts=TYPED,
            realtime=False,
        )
        session = await stub.GetSession(pb.GetSessionRequest(session_id=spoken.session_id))
        listed = await stub.ListSessions(pb.ListSessionsRequest())
    # The scan only means something if the numbers went in: stt_svc heard the spoken digits as
    # numbers (the caller's own transcript comes back masked) and the typed turns carried them.
    heard = " ".join(text for who, text in spoken.conversation if who == "caller")
    assert heard.count("*") >= 8, heard
    bot = [text for who, text in spoken.conversation if who == "bot"]
    assert len(bot) >= 1 + len(SPOKEN) + len(TYPED), bot  # the greeting and an answer to each turn
    found: list[str] = []
    async with dial(pii_mesh.child("cache").target) as channel:
        cache = cache_service_pb2_grpc.CacheServiceStub(channel)
        for question in TYPED:
            hit = await cache.Lookup(cache_service_pb2.LookupRequest(query=question))
            found += leaks(f"cache Lookup({question!r})", str(hit))
        found += leaks("cache GetStats", str(await cache.GetStats(cache_service_pb2.GetStatsRequest())))
    async with dial(pii_mesh.child("analytics").target) as channel:
        analytics = analytics_service_pb2_grpc.AnalyticsServiceStub(channel)
        report = await analytics.GetReport(analytics_service_pb2.GetReportRequest())
        found += leaks("analytics GetReport", str(report))
        watch = analytics.WatchSession(
            analytics_service_pb2.WatchSessionRequest(session_id=spoken.session_id), timeout=5
        )
        async for event in watch:  # the session has ended: its history, then the stream closes
            found += leaks("analytics WatchSession", str(event))
    found += leaks("GetSession", str(session))
    found += leaks("ListSessions", str(listed))
    pii_mesh.stop()  # flushes the last spans and events to the logs, analytics and spill files
    found += leaks("redis (sessions, cache entries)", _redis_dump(redis_server.url))
    scanned = []
    for path in _files(tmp_path):
        text = path.read_bytes().decode("latin-1")
        scanned.append(path.name)
        found += leaks(str(path.relative_to(tmp_path)), text)
    logs = (tmp_path / "logs" / "orchestrator.log").read_text(errors="replace")
    assert '"name": "turn"' in logs, "console traces were not written: the span scan would be empty"
    assert any(name.startswith("analytics.sqlite3") for name in scanned), scanned
    assert not found, "\n".join(found)
