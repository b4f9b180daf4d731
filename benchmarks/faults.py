"""Faults on a live mesh, counted: services killed and restarted under calls, Redis crashes, a rolling restart.

Starts the whole mesh as local processes (sessions and cache entries in a redis-server with
append-only persistence, the orchestrator's analytics buffer cut to 5 events so an analytics
outage spills to disk) plus a second orchestrator replica B on the same services and Redis.
Each phase runs ``--calls`` concurrent voice calls (LINEAR16 16 kHz in and out, typed turns in a
loop, bot audio acknowledged as played) and does one fault in the middle:

- **stt / tts / llm / cache / analytics**: SIGKILL the service, keep talking for ``--down-s``,
  restart it, and keep talking until every call had a turn answered after the restart; then
  place as many new calls. Counted: calls lost (the stream failed instead of ending with
  CALL_ENDED), apologies heard, turns answered normally after the restart, new calls that
  worked. For analytics also: events the calls' orchestrator must have sent (call_started,
  turn_completed per answered turn, call_ended, as the callers saw them) against what analytics
  holds after the recovery, and how many events were spilled to disk on the way.
- **redis (AOF) / redis (none)**: SIGKILL Redis under the calls and start it again, with
  ``--appendonly yes --appendfsync always``, then with no persistence at all. Counted: calls lost,
  live and detached sessions still readable (GetSession), a cache entry still a hit, new calls
  that worked, and that no service process was restarted.
- **rollout**: SIGTERM orchestrator A under the calls (grace 20 s). Counted: time to
  NOT_SERVING (a Health.Watch opened before), a new call on A refused with UNAVAILABLE, calls
  that finished on A, calls handed off (CALL_ENDED "draining") and resumed on B with their
  session_id, and calls dropped.

    python benchmarks/faults.py                 # 4 calls per phase, about 5 minutes on 2 busy cores
    python benchmarks/faults.py --calls 8 --down-s 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mesh import dial
from orchestrator.call import DRAINING_DETAIL
from orchestrator.caller import caller_format, place_call
from orchestrator.launcher import LocalMesh
from orchestrator.prompts import APOLOGY
from tests.conftest import RedisServer
from tests.integration.conftest import start_mesh, start_second_orchestrator
from voicebot.v1 import cache_service_pb2 as cache_pb
from voicebot.v1 import cache_service_pb2_grpc, orchestrator_service_pb2_grpc
from voicebot.v1 import orchestrator_service_pb2 as pb

QUESTIONS = (
    "what are your branch hours",
    "when is the riverside branch open",
    "how do I report a lost card",
    "what are your opening hours on saturday",
)
PERSISTENT = ("--appendonly", "yes", "--appendfsync", "always")
SCOPE = cache_pb.CacheScope(tenant="faults", language_code="en-US", intent="branch_hours")
TURN_WAIT_S = 40.0
THINK_S = 1.0  # a caller's pause between hearing an answer and asking again
Stub = orchestrator_service_pb2_grpc.OrchestratorServiceStub
Row = dict[str, Any]  # one phase's counts, printed by print_tables


@dataclass
class Caller:
    """One looping caller: asks a question, waits for the answer, asks the next, until told to stop."""

    n: int
    session_id: str = ""
    turns: list[tuple[float, str]] = field(default_factory=list)  # (end time, bot text) per answered turn
    apologies: int = 0
    errors: list[str] = field(default_factory=list)
    ended_detail: str | None = None
    failure: str = ""
    resumed_on_b: bool = False
    turn_events: int = 0

    def config(self, session_id: str = "") -> pb.SessionConfig:
        return pb.SessionConfig(input_format=caller_format(), caller_id=f"+1555020{self.n:04d}", session_id=session_id)

    def normal_after(self, at: float) -> int:
        return sum(1 for end, text in self.turns if end >= at and text and APOLOGY not in text)


async def converse(stub: Stub, caller: Caller, stop: asyncio.Event, resume: str = "") -> None:
    """Run one call for ``caller`` until ``stop``; record what happened (a failed stream sets ``failure``)."""
    outbox: asyncio.Queue[pb.ConverseRequest | None] = asyncio.Queue()
    turn_done = asyncio.Event()
    started = asyncio.Event()
    texts: dict[int, str] = {}

    async def requests() -> AsyncIterator[pb.ConverseRequest]:
        yield pb.ConverseRequest(config=caller.config(resume))
        while (request := await outbox.get()) is not None:
            yield request

    async def script() -> None:
        await started.wait()
        await asyncio.sleep(0.2)
        asked = 0
        while not stop.is_set():
            turn_done.clear()
            question = QUESTIONS[(caller.n + asked) % len(QUESTIONS)]
            asked += 1
            await outbox.put(pb.ConverseRequest(control=pb.CallControl(text=question)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(turn_done.wait(), TURN_WAIT_S)
            await asyncio.sleep(THINK_S)
        await outbox.put(pb.ConverseRequest(control=pb.CallControl(hang_up=pb.HangUp(reason="done"))))

    call = stub.Converse(requests(), timeout=600)
    helper = asyncio.create_task(script())
    try:
        async for response in call:
            kind = response.WhichOneof("output")
            if kind == "bot_text":
                texts[response.turn_index] = texts.get(response.turn_index, "") + response.bot_text.delta
                caller.apologies += response.bot_text.delta.count(APOLOGY)
            elif kind == "bot_audio":
                chunk = response.bot_audio
                position = pb.CallControl(playback_position_ms=chunk.offset_ms + chunk.duration_ms)
                outbox.put_nowait(pb.ConverseRequest(control=position))
            elif kind == "event":
                event = response.event
                if event.type in (pb.CALL_EVENT_TYPE_SESSION_STARTED, pb.CALL_EVENT_TYPE_SESSION_RESUMED):
                    caller.session_id = event.session_id
                    started.set()
                elif event.type == pb.CALL_EVENT_TYPE_TURN_ENDED:
                    caller.turn_events += 1
                    caller.turns.append((time.monotonic(), texts.pop(response.turn_index, "")))
                    turn_done.set()
                elif event.type == pb.CALL_EVENT_TYPE_ERROR:
                    caller.errors.append(event.service)
                elif event.type == pb.CALL_EVENT_TYPE_CALL_ENDED:
                    caller.ended_detail = event.detail
        if caller.ended_detail is None:
            caller.failure = "stream ended without CALL_ENDED"
    except grpc.aio.AioRpcError as exc:
        caller.failure = f"{exc.code().name}: {exc.details()}"
    except asyncio.CancelledError:
        caller.failure = "no CALL_ENDED within the wait after hang-up"
    finally:
        helper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await helper
        outbox.put_nowait(None)


async def one_call(stub: Stub, n: int) -> str:
    """A new one-turn voice call; "" when it ended cleanly with a normal answer, else what went wrong."""
    config = pb.SessionConfig(input_format=caller_format(), caller_id=f"+1555030{n:04d}")
    try:
        record = await place_call(stub, config, texts=[QUESTIONS[n % len(QUESTIONS)]], realtime=False, max_wait_s=30)
    except grpc.aio.AioRpcError as exc:
        return f"new call: {exc.code().name}"
    errors = [f"{e.service} {e.code}" for e in record.events if e.type == pb.CALL_EVENT_TYPE_ERROR]
    if record.event_types()[-1] != "CALL_ENDED":
        return "new call: no CALL_ENDED"
    if errors or APOLOGY in record.bot_text:
        return f"new call: apology ({', '.join(errors) or 'no ERROR event'})"
    return ""


async def poll(condition: Callable[[], bool], within_s: float) -> None:
    """Wait until ``condition()`` holds or ``within_s`` passes (conditions over several callers' records)."""
    deadline = time.monotonic() + within_s
    while not condition() and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)


async def finish(tasks: list[asyncio.Task[None]], within_s: float = 120.0) -> None:
    """Wait for the callers' calls to end; a call still open after ``within_s`` is cut (its caller records why)."""
    _, late = await asyncio.wait(tasks, timeout=within_s)
    for task in late:
        task.cancel()
    await asyncio.gather(*late, return_exceptions=True)


async def until_each_answered_after(callers: list[Caller], at: float, within_s: float) -> None:
    await poll(lambda: all(c.normal_after(at) or c.failure for c in callers), within_s)


async def start_callers(
    stub: Stub, count: int, first: int, stop: asyncio.Event
) -> tuple[list[Caller], list[asyncio.Task[None]]]:
    callers = [Caller(first + i) for i in range(count)]
    tasks = [asyncio.create_task(converse(stub, c, stop)) for c in callers]
    await poll(lambda: all(c.turns or c.failure for c in callers), 90)
    return callers, tasks


def recovery(fault: str, callers: list[Caller], up_at: float, new_ok: list[str]) -> Row:
    """The counts every kill phase reports: calls lost, what callers heard, who recovered after ``up_at``.

    ``new_ok`` holds one entry per new call placed after recovery: "" for a call that worked, else why not.
    """
    return {
        "fault": fault,
        "calls": len(callers),
        "lost": sum(1 for c in callers if c.failure),
        "apologies": sum(c.apologies for c in callers),
        "error_events": sum(len(c.errors) for c in callers),
        "recovered": sum(1 for c in callers if c.normal_after(up_at)),
        "turns_after": sum(c.normal_after(up_at) for c in callers),
        "new_ok": new_ok.count(""),
        "failures": [c.failure for c in callers if c.failure] + [f for f in new_ok if f],
    }


def spilled_now(spill_dir: Path) -> int:
    return sum(sum(1 for _ in p.open()) for p in spill_dir.glob("events-*.jsonl")) if spill_dir.exists() else 0


async def stored_events(
    mesh: LocalMesh, session_ids: list[str], expect: Counter[str], within_s: float = 45.0
) -> Counter[str]:
    """Events analytics' SQLite store holds for the sessions, polled until they reach ``expect``.

    Read from the store, not WatchSession: a replay stops at the first call_ended it meets, and
    the store counts every event however it arrived.
    """
    marks = ",".join("?" * len(session_ids))
    query = f"SELECT kind, COUNT(*) FROM events WHERE session_id IN ({marks}) GROUP BY kind"
    deadline = time.monotonic() + within_s
    while True:
        with contextlib.closing(sqlite3.connect(mesh.env["VOICEBOT_ANALYTICS_DB_PATH"])) as db:
            seen = Counter(dict(db.execute(query, session_ids).fetchall()))
        if all(seen[k] >= v for k, v in expect.items()) or time.monotonic() > deadline:
            return seen
        await asyncio.sleep(0.5)


async def service_phase(mesh: LocalMesh, name: str, calls: int, down_s: float, first: int, spill_dir: Path) -> Row:
    async with dial(mesh.child("orchestrator").target) as channel:
        stub = Stub(channel)
        stop = asyncio.Event()
        callers, tasks = await start_callers(stub, calls, first, stop)
        mesh.kill(name)
        down_until = time.monotonic() + down_s
        most_spilled = 0
        while time.monotonic() < down_until:
            most_spilled = max(most_spilled, spilled_now(spill_dir))
            await asyncio.sleep(0.1)
        restart = asyncio.create_task(asyncio.to_thread(mesh.restart, name))
        while not restart.done():
            most_spilled = max(most_spilled, spilled_now(spill_dir))
            await asyncio.sleep(0.1)
        await restart
        up_at = time.monotonic()
        await until_each_answered_after(callers, up_at, 60)
        stop.set()
        await finish(tasks)
        new_ok = await asyncio.gather(*(one_call(stub, first + 100 + i) for i in range(calls)))
    row = recovery(f"SIGKILL {name}", callers, up_at, new_ok)
    if name == "analytics":
        expect: Counter[str] = Counter(
            call_started=len(callers), call_ended=len(callers), turn_completed=sum(c.turn_events for c in callers)
        )
        seen = await stored_events(mesh, [c.session_id for c in callers], expect)
        row["events_expected"] = sum(expect.values())
        row["events_stored"] = sum(min(seen[k], v) for k, v in expect.items())
        row["events_total_stored"] = sum(seen.values())
        row["spilled_peak"] = most_spilled
        row["spill_left"] = spilled_now(spill_dir)
    return row


async def redis_phase(mesh: LocalMesh, redis: RedisServer, persistent: bool, calls: int, first: int) -> Row:
    pids = [child.process.pid for child in mesh.children]
    async with dial(mesh.child("orchestrator").target) as channel, dial(mesh.child("cache").target) as cache_channel:
        stub = Stub(channel)
        cache = cache_service_pb2_grpc.CacheServiceStub(cache_channel)
        question = f"when does branch number {first} open on saturday"
        await cache.Store(cache_pb.StoreRequest(query=question, answer="At nine.", scope=SCOPE))
        parked_stop = asyncio.Event()
        parked = Caller(first + 99)
        parked_task = asyncio.create_task(converse(stub, parked, parked_stop))
        await poll(lambda: bool(parked.turns or parked.failure), 90)
        parked_task.cancel()  # the caller drops off: the session stays DETACHED, resumable
        with contextlib.suppress(asyncio.CancelledError):
            await parked_task
        await asyncio.sleep(0.5)
        stop = asyncio.Event()
        callers, tasks = await start_callers(stub, calls, first, stop)
        redis.kill(keep_files=persistent)
        await asyncio.sleep(1.0)
        redis.start(*(PERSISTENT if persistent else ()))
        up_at = time.monotonic()
        await until_each_answered_after(callers, up_at, 60)
        live_found = 0
        for c in callers:
            with contextlib.suppress(grpc.aio.AioRpcError):
                await stub.GetSession(pb.GetSessionRequest(session_id=c.session_id))
                live_found += 1
        detached_found = 0
        with contextlib.suppress(grpc.aio.AioRpcError):
            await stub.GetSession(pb.GetSessionRequest(session_id=parked.session_id))
            detached_found = 1
        hit = False
        for _ in range(20):
            try:
                hit = (await cache.Lookup(cache_pb.LookupRequest(query=question, scope=SCOPE))).hit
                break
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0.5)
        stop.set()
        await finish(tasks)
        new_ok = await asyncio.gather(*(one_call(stub, first + 100 + i) for i in range(calls)))
    return recovery(f"SIGKILL redis ({'AOF always' if persistent else 'no persistence'})", callers, up_at, new_ok) | {
        "live_sessions_found": live_found,
        "detached_session_found": detached_found,
        "cache_entry_hit": hit,
        "restarted_services": sum(1 for c, p in zip(mesh.children, pids, strict=True) if c.process.pid != p),
    }


async def rollout_phase(mesh: LocalMesh, second: LocalMesh, calls: int, first: int) -> Row:
    a, b = mesh.child("orchestrator"), second.child("orchestrator")
    async with dial(a.target) as channel_a, dial(b.target) as channel_b:
        stub_a, stub_b = Stub(channel_a), Stub(channel_b)
        watch = health_pb2_grpc.HealthStub(channel_a).Watch(health_pb2.HealthCheckRequest(service=""))
        await watch.read()
        stop = asyncio.Event()
        callers, tasks = await start_callers(stub_a, calls, first, stop)
        sigterm_at = time.monotonic()
        a.process.send_signal(signal.SIGTERM)
        status = (await asyncio.wait_for(watch.read(), 10)).status
        not_serving_ms = (time.monotonic() - sigterm_at) * 1000
        watch.cancel()
        try:
            await place_call(stub_a, Caller(first + 50).config(), texts=["hello"], realtime=False)
            refusal = "accepted"
        except grpc.aio.AioRpcError as exc:
            refusal = exc.code().name
        await finish(tasks, 60)
        exited = await asyncio.to_thread(a.process.wait, 60)
        exit_s = time.monotonic() - sigterm_at
        handed = [c for c in callers if not c.failure and c.ended_detail == DRAINING_DETAIL]
        finished = [c for c in callers if not c.failure and c.ended_detail != DRAINING_DETAIL]
        # Each handed-off caller calls again on B with its session_id and goes on talking.
        stop_b = asyncio.Event()
        resumed = [Caller(c.n) for c in handed]
        for old, new in zip(handed, resumed, strict=True):
            new.session_id = old.session_id
        resume_tasks = [asyncio.create_task(converse(stub_b, new, stop_b, resume=new.session_id)) for new in resumed]
        await until_each_answered_after(resumed, 0.0, 60)
        stop_b.set()
        await finish(resume_tasks, 60)
    return {
        "fault": "SIGTERM orchestrator A (rollout)",
        "calls": calls,
        "lost": sum(1 for c in callers if c.failure) + sum(1 for r in resumed if r.failure or not r.turns),
        "not_serving": health_pb2.HealthCheckResponse.ServingStatus.Name(status),
        "not_serving_ms": round(not_serving_ms),
        "new_call_on_a": refusal,
        "finished_on_a": len(finished),
        "handed_off": len(handed),
        "resumed_on_b": sum(1 for r in resumed if r.turns and not r.failure),
        "a_exit_code": exited,
        "a_exit_s": round(exit_s, 1),
        "failures": [c.failure for c in [*callers, *resumed] if c.failure],
    }


async def run(calls: int, down_s: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        redis = RedisServer(work / "redis")
        (work / "redis").mkdir()
        redis.start(*PERSISTENT)
        shared = {
            "VOICEBOT_ORCHESTRATOR_SESSION_STORE": "redis",
            "VOICEBOT_CACHE_STORAGE": "redis",
            "VOICEBOT_REDIS_URL": redis.url,
        }
        started = time.monotonic()
        mesh = start_mesh(
            work / "a",
            **shared,
            VOICEBOT_ORCHESTRATOR_REPLICA="replica-a",
            VOICEBOT_ORCHESTRATOR_EVENTS_BUFFER="5",
            VOICEBOT_ORCHESTRATOR_GRACE_S="20",
        )
        rows: list[Row] = []
        second: LocalMesh | None = None
        try:
            second = await asyncio.to_thread(
                start_second_orchestrator, mesh, work / "b", **shared, VOICEBOT_ORCHESTRATOR_REPLICA="replica-b"
            )
            print(f"mesh up in {time.monotonic() - started:.0f} s", file=sys.stderr)
            spill_dir = work / "a" / "spill"
            for i, name in enumerate(("stt", "tts", "llm", "cache", "analytics")):
                phase_at = time.monotonic()
                rows.append(await service_phase(mesh, name, calls, down_s, 1000 * (i + 1), spill_dir))
                print(f"{name}: {time.monotonic() - phase_at:.0f} s {rows[-1]}", file=sys.stderr)
            for i, persistent in enumerate((True, False)):
                phase_at = time.monotonic()
                rows.append(await redis_phase(mesh, redis, persistent, calls, 6000 + 1000 * i))
                print(f"redis: {time.monotonic() - phase_at:.0f} s {rows[-1]}", file=sys.stderr)
            rows.append(await rollout_phase(mesh, second, calls, 8000))
            print(f"rollout: {rows[-1]}", file=sys.stderr)
        finally:
            if second is not None:
                second.stop()
            mesh.stop()
            redis.stop()
            logs = "\n".join((work / d / "logs" / "orchestrator.log").read_text() for d in ("a", "b"))
        print(f"orchestrator tracebacks in logs: {logs.count('Traceback')}", file=sys.stderr)
        print_tables(rows, calls, down_s, time.monotonic() - started)


def print_tables(rows: list[Row], calls: int, down_s: float, total_s: float) -> None:
    print(f"\n{calls} concurrent voice calls per phase, down {down_s:.0f} s per fault, whole run {total_s:.0f} s\n")
    print(
        "| fault | calls lost | ERROR events | apologies heard | calls answering normally after recovery | "
        "normal turns after recovery | new calls OK |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows[:7]:
        print(
            f"| {r['fault']} | {r['lost']}/{r['calls']} | {r['error_events']} | {r['apologies']} | "
            f"{r['recovered']}/{r['calls']} | {r['turns_after']} | {r['new_ok']}/{r['calls']} |"
        )
    analytics = next(r for r in rows if r["fault"] == "SIGKILL analytics")
    print("\n| analytics events (buffer 5) | count |\n|---|---|")
    print(f"| sent by the orchestrator (call_started + turn_completed + call_ended) | {analytics['events_expected']} |")
    print(f"| of those stored in analytics after recovery | {analytics['events_stored']} |")
    print(f"| lost | {analytics['events_expected'] - analytics['events_stored']} |")
    print(f"| spilled to disk (peak lines in the spill folder) | {analytics['spilled_peak']} |")
    print(f"| left in the spill folder after recovery | {analytics['spill_left']} |")
    print(
        f"| all events stored for these sessions (tool_called, call_error included) | "
        f"{analytics['events_total_stored']} |"
    )
    print(
        "\n| Redis restart | live sessions readable | detached session readable | cache entry hit | "
        "services restarted |\n|---|---|---|---|---|"
    )
    for r in rows[5:7]:
        print(
            f"| {r['fault']} | {r['live_sessions_found']}/{r['calls']} | {r['detached_session_found']}/1 | "
            f"{'yes' if r['cache_entry_hit'] else 'no'} | {r['restarted_services']} |"
        )
    r = rows[7]
    print("\n| rollout (SIGTERM A, grace 20 s) | value |\n|---|---|")
    print(f"| health seen by a Watch opened before | {r['not_serving']} after {r['not_serving_ms']} ms |")
    print(f"| new call on A | {r['new_call_on_a']} |")
    print(f"| calls finished on A / handed off (CALL_ENDED draining) | {r['finished_on_a']} / {r['handed_off']} |")
    print(f"| handed-off calls resumed on B with their session_id | {r['resumed_on_b']}/{r['handed_off']} |")
    print(f"| calls dropped | {r['lost']} |")
    print(f"| A exited (code, seconds after SIGTERM) | {r['a_exit_code']}, {r['a_exit_s']} s |")
    failures = [f for row in rows for f in row["failures"]]
    if failures:
        print("\nfailures: " + "; ".join(failures))


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4, help="concurrent calls per phase")
    parser.add_argument("--down-s", type=float, default=3.0, help="seconds each service stays down")
    args = parser.parse_args()
    asyncio.run(run(args.calls, args.down_s))


if __name__ == "__main__":
    main()
