"""Settings come from VOICEBOT_<SVC>_* variables, with shared fallbacks and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesh.settings import SettingsError, read_secret
from stt_svc.config import SttSettings


def test_defaults_give_each_service_its_port() -> None:
    settings = SttSettings.from_env({})
    assert settings.port == 50052
    assert settings.effective_metrics_port == 51052


def test_service_variable_wins_over_the_shared_one() -> None:
    env = {"VOICEBOT_GRACE_S": "3", "VOICEBOT_STT_GRACE_S": "7.5", "VOICEBOT_TLS_CLIENT_AUTH": "yes"}
    settings = SttSettings.from_env(env)
    assert settings.grace_s == 7.5
    assert settings.tls_client_auth is True


def test_port_is_not_shared_between_services() -> None:
    assert SttSettings.from_env({"VOICEBOT_PORT": "1"}).port == 50052


def test_bad_value_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="VOICEBOT_STT_PORT='fifty'"):
        SttSettings.from_env({"VOICEBOT_STT_PORT": "fifty"})
    with pytest.raises(SettingsError, match="expected true or false"):
        SttSettings.from_env({"VOICEBOT_STT_TLS_CLIENT_AUTH": "maybe"})


def test_settings_are_frozen() -> None:
    settings = SttSettings.from_env({})
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]


def test_secret_file_wins_and_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("from-file\n")
    assert read_secret("from-env", str(secret)) == "from-file"
    assert read_secret("from-env", "") == "from-env"
    with pytest.raises(SettingsError, match="cannot read secret file"):
        read_secret("", str(tmp_path / "missing"))
