"""Barge-in: caller speech over the bot cancels its answer; a backchannel does not."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest

from mesh import audio, dial
from orchestrator.caller import CALLER_RATE, FRAME_MS, caller_format
from orchestrator.launcher import LocalMesh
from voicebot.v1 import orchestrator_service_pb2 as pb
from voicebot.v1 import orchestrator_service_pb2_grpc

pytestmark = pytest.mark.slow

PCM = audio.PcmFormat(audio.LINEAR16, CALLER_RATE)


def frames(samples: np.ndarray, silence_ms: int = 1200) -> list[bytes]:
    padded = np.concatenate([samples, np.zeros(CALLER_RATE * silence_ms // 1000, dtype=np.float32)])
    return audio.split_chunks(audio.encode(padded, PCM), PCM, FRAME_MS)


class ScriptedCaller:
    """Sends what the test says when; records every response with its arrival time."""

    def __init__(self) -> None:
        self.outbox: asyncio.Queue[pb.ConverseRequest | None] = asyncio.Queue()
        self.responses: list[tuple[float, pb.ConverseResponse]] = []
        self.arrived = asyncio.Event()

    async def requests(self) -> AsyncIterator[pb.ConverseRequest]:
        yield pb.ConverseRequest(config=pb.SessionConfig(input_format=caller_format()))
        while (request := await self.outbox.get()) is not None:
            yield request

    async def read(self, call: object) -> None:
        async for response in call:  # type: ignore[attr-defined]
            self.responses.append((time.monotonic(), response))
            self.arrived.set()
            self.arrived.clear()

    async def wait_for(self, predicate: object, timeout_s: float = 60) -> pb.ConverseResponse:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for _, response in self.responses:
                if predicate(response):  # type: ignore[operator]
                    return response
            await asyncio.sleep(0.02)
        raise AssertionError("expected response never came")

    async def wait_for_audio_after(self, moment: float, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(t > moment and r.WhichOneof("output") == "bot_audio" for t, r in self.responses):
                return
            await asyncio.sleep(0.02)
        raise AssertionError("no bot audio after the turn started")

    async def speak(self, chunks: list[bytes], realtime: bool) -> None:
        started = time.monotonic()
        for index, chunk in enumerate(chunks):
            await self.outbox.put(pb.ConverseRequest(audio=chunk))
            if realtime:
                await asyncio.sleep(max(0.0, started + (index + 1) * FRAME_MS / 1000 - time.monotonic()))

    def events(self) -> list[pb.CallEvent]:
        return [r.event for _, r in self.responses if r.WhichOneof("output") == "event"]


def is_event(kind: int, detail: str | None = None) -> object:
    return lambda r: (
        r.WhichOneof("output") == "event" and r.event.type == kind and (detail is None or r.event.detail == detail)
    )


async def interrupt_long_answer(mesh: LocalMesh, speech: dict[str, np.ndarray], interruption: str) -> ScriptedCaller:
    """Ask for branch hours (a long answer), then say ``interruption`` over the answer in real time."""
    caller = ScriptedCaller()
    async with dial(mesh.child("orchestrator").target) as channel:
        stub = orchestrator_service_pb2_grpc.OrchestratorServiceStub(channel)
        call = stub.Converse(caller.requests(), timeout=120)
        reader = asyncio.create_task(caller.read(call))
        greeting = await caller.wait_for(lambda r: r.WhichOneof("output") == "bot_audio")
        await asyncio.sleep(0.5)
        played = sum(r.bot_audio.duration_ms for _, r in caller.responses if r.WhichOneof("output") == "bot_audio")
        # This caller has "played" the whole greeting at once, so it may speak right away.
        await caller.outbox.put(pb.ConverseRequest(control=pb.CallControl(playback_position_ms=played + 10_000)))
        assert greeting.turn_index == 0
        await caller.speak(frames(speech["hours"]), realtime=False)
        turn = await caller.wait_for(is_event(pb.CALL_EVENT_TYPE_TURN_STARTED))
        # The greeting also has turn index 0: wait for audio that arrived after the turn started.
        started_at = next(t for t, r in caller.responses if r is turn)
        await caller.wait_for_audio_after(started_at)
        await asyncio.sleep(0.3)
        await caller.speak(frames(speech[interruption]), realtime=True)
        await caller.wait_for(
            lambda r: (
                r.WhichOneof("output") == "transcript"
                and r.transcript.is_final
                and r.turn_index >= turn.turn_index
                and "hours" not in r.transcript.text.lower()
            ),
            30,
        )
        await caller.wait_for(is_event(pb.CALL_EVENT_TYPE_TURN_ENDED), 60)
        await asyncio.sleep(2.0)
        await caller.outbox.put(pb.ConverseRequest(control=pb.CallControl(hang_up=pb.HangUp())))
        await caller.outbox.put(None)
        await asyncio.wait_for(reader, 60)
    return caller


async def test_speaking_over_the_bot_cancels_its_answer_and_says_where_playback_stopped(
    mesh: LocalMesh, speech: dict[str, np.ndarray]
) -> None:
    caller = await interrupt_long_answer(mesh, speech, "stop")
    kinds = [e.type for e in caller.events()]
    assert pb.CALL_EVENT_TYPE_BARGE_IN in kinds
    barge_at, barge = next((t, r) for t, r in caller.responses if is_event(pb.CALL_EVENT_TYPE_BARGE_IN)(r))  # type: ignore[operator]
    interrupted = barge.turn_index
    sent = sum(
        r.bot_audio.duration_ms
        for _, r in caller.responses
        if r.WhichOneof("output") == "bot_audio" and r.turn_index == interrupted
    )
    assert 0 < barge.event.playback_position_ms <= sent
    late_audio = [
        r
        for t, r in caller.responses
        if t > barge_at and r.WhichOneof("output") == "bot_audio" and r.turn_index == interrupted
    ]
    assert late_audio == []
    # The interrupted turn ends once: "interrupted" while it was still generating, or normally
    # before the barge-in when all its audio was already synthesised (faster than it plays).
    ended = [r for _, r in caller.responses if is_event(pb.CALL_EVENT_TYPE_TURN_ENDED)(r)]  # type: ignore[operator]
    assert [r.turn_index for r in ended if r.event.detail == "interrupted"] in ([], [interrupted])
    assert sum(1 for r in ended if r.turn_index == interrupted) == 1
    next_turns = [r for t, r in caller.responses if t > barge_at and is_event(pb.CALL_EVENT_TYPE_TURN_STARTED)(r)]  # type: ignore[operator]
    assert next_turns, "the interruption itself becomes the next turn"


async def test_a_backchannel_does_not_interrupt(mesh: LocalMesh, speech: dict[str, np.ndarray]) -> None:
    caller = await interrupt_long_answer(mesh, speech, "okay")
    kinds = [e.type for e in caller.events()]
    assert pb.CALL_EVENT_TYPE_BARGE_IN not in kinds
    assert kinds.count(pb.CALL_EVENT_TYPE_TURN_STARTED) == 1
    assert all(e.detail != "interrupted" for e in caller.events() if e.type == pb.CALL_EVENT_TYPE_TURN_ENDED)
