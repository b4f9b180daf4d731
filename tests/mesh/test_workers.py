"""The worker bridge runs blocking calls off the event loop, with a bound on what it admits."""

from __future__ import annotations

import asyncio
import threading

import pytest

from mesh.errors import ResourceExhausted
from mesh.logs import request_id_var
from mesh.workers import WorkerBridge


async def test_runs_in_a_named_thread_and_carries_context_variables() -> None:
    bridge = WorkerBridge("test-bridge", workers=1, max_pending=2)
    request_id_var.set("rid-7")
    name, rid = await bridge.run(lambda: (threading.current_thread().name, request_id_var.get()))
    bridge.close()
    assert name.startswith("test-bridge")
    assert rid == "rid-7"


async def test_refuses_work_beyond_max_pending_and_recovers() -> None:
    bridge = WorkerBridge("busy", workers=1, max_pending=2)
    release = threading.Event()
    first = asyncio.create_task(bridge.run(release.wait, 5))
    second = asyncio.create_task(bridge.run(release.wait, 5))
    await asyncio.sleep(0.05)
    with pytest.raises(ResourceExhausted, match="busy is at capacity"):
        await bridge.run(release.wait, 5)
    release.set()
    assert await first
    assert await second
    assert await bridge.run(lambda: 42) == 42
    bridge.close()


def test_rejects_a_bridge_that_could_never_admit_work() -> None:
    with pytest.raises(ValueError, match="max_pending >= workers"):
        WorkerBridge("bad", workers=2, max_pending=1)
