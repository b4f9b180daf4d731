"""Settings from the environment: one frozen dataclass per service.

Every field of a settings class is read from ``VOICEBOT_<SVC>_<FIELD>`` (upper case). The
fields that the whole mesh shares (TLS, tokens, tracing) fall back to ``VOICEBOT_<FIELD>``,
so one variable turns a feature on for every service. Each field documents itself through
``setting(doc=...)``; ``scripts/gen_settings_doc.py`` renders all of them into
``docs/configuration.md``.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

T = TypeVar("T", bound="ServiceSettings")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class SettingsError(ValueError):
    """An environment variable holds a value its setting cannot take."""


def setting(default: Any, doc: str, *, shared: bool = False) -> Any:
    """Declare a settings field with its documentation.

    Args:
        default: Value when the variable is unset.
        doc: One sentence for the configuration table: meaning, unit, range.
        shared: Also read ``VOICEBOT_<FIELD>`` when the service-specific variable is unset.
    """
    return dataclasses.field(default=default, metadata={"doc": doc, "shared": shared})


@dataclasses.dataclass(frozen=True)
class ServiceSettings:
    """Settings every service has. Subclasses add their engine's settings."""

    prefix: ClassVar[str] = "VOICEBOT_"
    service: ClassVar[str] = ""

    host: str = setting("0.0.0.0", "Address the gRPC server binds.", shared=True)
    port: int = setting(0, "gRPC port; 0 picks a free port.")
    metrics_port: int = setting(
        0, "Prometheus /metrics HTTP port; 0 means gRPC port + 1000 (a free port when that is 0); -1 turns it off."
    )
    grace_s: float = setting(
        10.0,
        "Seconds in-flight RPCs get to finish after SIGTERM (health says NOT_SERVING first).",
        shared=True,
    )
    max_message_bytes: int = setting(4 * 1024 * 1024, "Largest gRPC message received or sent, in bytes.", shared=True)
    max_concurrent_rpcs: int = setting(
        1000, "RPCs served at once; more are refused with RESOURCE_EXHAUSTED.", shared=True
    )
    auth_token: str = setting("", "Bearer token every RPC must carry; empty turns auth off.", shared=True)
    auth_token_file: str = setting("", "File holding the bearer token (wins over AUTH_TOKEN).", shared=True)
    admin_token: str = setting(
        "", "Token for admin RPCs; empty means AUTH_TOKEN. Admin RPCs are open only when both are empty.", shared=True
    )
    admin_token_file: str = setting("", "File holding the admin token (wins over ADMIN_TOKEN).", shared=True)
    tls_cert_file: str = setting(
        "", "PEM certificate chain of this server; set with TLS_KEY_FILE to turn TLS on.", shared=True
    )
    tls_key_file: str = setting("", "PEM private key of this server.", shared=True)
    tls_ca_file: str = setting(
        "", "PEM CA bundle: verifies servers when dialling, and client certificates with TLS_CLIENT_AUTH.", shared=True
    )
    tls_client_auth: bool = setting(
        False, "Require client certificates signed by TLS_CA_FILE (mutual TLS).", shared=True
    )
    log_level: str = setting("INFO", "Log level: DEBUG, INFO, WARNING or ERROR. Logs are JSON lines.", shared=True)
    engine: str = setting("", "Engine to run; each service documents its engines and default.")

    @property
    def effective_metrics_port(self) -> int | None:
        """The metrics HTTP port, or None when metrics are off."""
        if self.metrics_port < 0:
            return None
        return self.metrics_port or (self.port + 1000 if self.port else 0)

    @classmethod
    def from_env(cls: type[T], environ: Mapping[str, str] | None = None, **overrides: Any) -> T:
        """Build settings from the environment; ``overrides`` win over variables.

        Raises:
            SettingsError: a variable that cannot be parsed, named with its bad value.
        """
        env = os.environ if environ is None else environ
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            if field.name in overrides:
                values[field.name] = overrides[field.name]
                continue
            raw = env.get(cls.env_name(field.name))
            if raw is None and field.metadata.get("shared"):
                raw = env.get(f"VOICEBOT_{field.name.upper()}")
            if raw is not None:
                values[field.name] = _parse(cls.env_name(field.name), raw, hints[field.name])
        return cls(**values)

    @classmethod
    def env_name(cls, field_name: str) -> str:
        """The service-specific variable of a field, e.g. ``VOICEBOT_STT_PORT``."""
        return f"VOICEBOT_{cls.service.upper()}_{field_name.upper()}"


def read_secret(value: str, file: str) -> str:
    """Return the secret from ``file`` when given (mounted secrets), else ``value``.

    Raises:
        SettingsError: the file is set but unreadable.
    """
    if not file:
        return value
    try:
        return Path(file).read_text().strip()
    except OSError as exc:
        raise SettingsError(f"cannot read secret file {file}: {exc.strerror}") from None


def _parse(name: str, raw: str, hint: Any) -> Any:
    """Parse one variable by its field's type hint."""
    if isinstance(hint, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if raw == "":
            return None
        hint = args[0]
    try:
        if hint is bool:
            lowered = raw.strip().lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise ValueError("expected true or false")
        if hint is int:
            return int(raw)
        if hint is float:
            return float(raw)
        if hint is Path:
            return Path(raw)
        if typing.get_origin(hint) is tuple:
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        return raw
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r}: {exc}") from None
