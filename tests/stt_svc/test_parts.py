"""The parts behind the stream: stable prefixes, repetition cutting, streamed VAD, decode admission, settings."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from mesh.errors import ResourceExhausted
from mesh.settings import SettingsError
from mesh.workers import WorkerBridge
from stt_svc.config import SttSettings
from stt_svc.engines.faster_whisper import _loop_start
from stt_svc.scheduler import DecodeScheduler
from stt_svc.stability import StablePrefix
from stt_svc.vad import WINDOW, SileroVad, VadState
from tests.stt_svc import speech


def test_a_word_becomes_stable_when_two_decodes_agree_and_never_changes() -> None:
    prefix = StablePrefix()
    first = prefix.update("I would like", 0.9)
    assert (first.stable, first.unstable) == ("", "I would like")
    second = prefix.update("I would like to transfer.", 0.9)
    assert second.stable == "I would like"
    assert second.unstable == "to transfer."
    third = prefix.update("You would like to transfer 200", 0.9)  # the model changed its mind about word 1
    assert third.stable.startswith("I would like")
    fourth = prefix.update("I would like to transfer $250 to", 0.9)
    assert fourth.stable == "I would like to transfer"
    assert fourth.unstable == "$250 to"
    assert 0.0 <= fourth.stability <= 1.0


def test_the_last_word_of_a_decode_is_never_made_stable() -> None:
    prefix = StablePrefix()
    prefix.update("check my balance", 0.9)
    view = prefix.update("check my balance", 0.9)
    assert view.stable == "check my"
    assert view.unstable == "balance"


def test_punctuation_and_case_do_not_block_agreement() -> None:
    prefix = StablePrefix()
    prefix.update("Transfer. Money", 0.9)
    view = prefix.update("transfer money now", 0.9)
    assert view.stable == "transfer money"


def test_a_decode_that_loops_is_cut_after_its_first_pass() -> None:
    assert _loop_start([1, 2, 3, 4, 1, 2, 3]) == 4  # restarts from the beginning
    assert _loop_start([5, 6, 5, 6, 5, 6, 5]) == 2
    assert _loop_start([1, 2, 8, 9, 8, 9, 8, 9, 8, 9]) == 4  # one phrase over and over
    assert _loop_start([1, 2, 3, 4, 5]) == 5
    assert _loop_start([7, 7, 7]) == 3  # "no no no" may be real speech: too short to call a loop
    assert _loop_start([1, 2, 7, 7, 7, 7]) == 6  # "ends in one one one one" is an account number


def test_streamed_vad_matches_faster_whispers_batch_vad() -> None:
    from faster_whisper.vad import get_vad_model

    samples = np.concatenate([speech.silence(0.3), speech.speak("Check my balance."), speech.silence(0.5)])
    from mesh.audio import resample

    audio = resample(samples, speech.PIPER_RATE, 16000)
    audio = audio[: len(audio) // WINDOW * WINDOW]
    reference = get_vad_model()(audio).reshape(-1)
    vad, state = SileroVad(), VadState()
    streamed: list[float] = []
    for start in range(0, len(audio), 320):  # 20 ms messages: windows straddle them
        chunk = audio[start : start + 320]
        if not state.hold(chunk):
            streamed.extend(vad.probabilities(state, chunk))
    np.testing.assert_allclose(streamed, reference, atol=1e-5)
    assert max(streamed) > 0.9
    assert streamed[0] < 0.1


@pytest.mark.asyncio(loop_scope="session")
async def test_finals_queue_for_a_worker_and_interims_are_skipped_when_busy() -> None:
    bridge = WorkerBridge("test-decode", 1, 4)
    scheduler = DecodeScheduler(bridge, workers=1, max_waiting=1)
    gate = threading.Event()
    order: list[str] = []

    def job(name: str) -> str:
        gate.wait(10)
        order.append(name)
        return name

    first = asyncio.ensure_future(scheduler.run(lambda: job("first"), must_run=True))
    await asyncio.sleep(0.05)
    assert scheduler.busy == 1
    assert await scheduler.run(lambda: job("interim"), must_run=False) is None
    second = asyncio.ensure_future(scheduler.run(lambda: job("second"), must_run=True))
    await asyncio.sleep(0.05)
    with pytest.raises(ResourceExhausted, match="at capacity"):
        await scheduler.run(lambda: job("third"), must_run=True)
    gate.set()
    assert await first == "first"
    assert await second == "second"
    assert order == ["first", "second"]
    assert scheduler.busy == 0
    bridge.close()


@pytest.mark.asyncio(loop_scope="session")
async def test_a_cancelled_waiter_gives_its_turn_away() -> None:
    bridge = WorkerBridge("test-decode-cancel", 1, 4)
    scheduler = DecodeScheduler(bridge, workers=1, max_waiting=4)
    gate = threading.Event()
    running = asyncio.ensure_future(scheduler.run(lambda: gate.wait(10), must_run=True))
    await asyncio.sleep(0.05)
    waiter = asyncio.ensure_future(scheduler.run(lambda: "never", must_run=True))
    await asyncio.sleep(0.05)
    waiter.cancel()
    gate.set()
    assert await running is True
    assert await scheduler.run(lambda: "next", must_run=True) == "next"
    assert scheduler.busy == 0
    bridge.close()


@pytest.mark.asyncio(loop_scope="session")
async def test_with_two_workers_one_is_kept_free_of_interims_for_finals() -> None:
    bridge = WorkerBridge("test-decode-reserve", 2, 4)
    scheduler = DecodeScheduler(bridge, workers=2, max_waiting=2)
    gate = threading.Event()
    interim = asyncio.ensure_future(scheduler.run(lambda: gate.wait(10), must_run=False))
    await asyncio.sleep(0.05)
    assert await scheduler.run(lambda: "second interim", must_run=False) is None
    assert await scheduler.run(lambda: "final", must_run=True) == "final"  # straight onto the free worker
    gate.set()
    assert await interim is True
    bridge.close()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("VOICEBOT_STT_ENGINE", "whisper_cpp", "use one of faster_whisper"),
        ("VOICEBOT_STT_DEVICE", "tpu", "use auto, cpu or cuda"),
        ("VOICEBOT_STT_VAD_THRESHOLD", "1.5", "must be 0.05-0.95"),
        ("VOICEBOT_STT_ENDPOINTING_SILENCE_MS", "50", "must be 100-5000"),
        ("VOICEBOT_STT_MIN_WINDOW_S", "1", "must be 2-30"),
        ("VOICEBOT_STT_MAX_PENDING", "0", "must be >= workers"),
    ],
)
def test_settings_out_of_range_fail_with_the_variable_named(variable: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message) as failure:
        SttSettings.from_env({variable: value})
    assert variable in str(failure.value)


def test_defaults_are_valid() -> None:
    settings = SttSettings.from_env({})
    assert settings.engine == "faster_whisper"
    assert settings.port == 50052
