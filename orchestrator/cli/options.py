"""Options every client command shares: where the services are, token, TLS, output, timeouts.

Each value comes from, in order: the command-line flag, the environment
(``VOICEBOT_<SVC>_TARGET``, ``VOICEBOT_TOKEN``, ``VOICEBOT_TLS_CA_FILE`` ...), the config file
(``--config``, ``$VOICEBOT_CONFIG`` or ``~/.config/voicebot/config.toml``), the defaults
(``127.0.0.1`` and each service's port). The config file is TOML::

    token = "..."
    timeout = 10
    [targets]
    orchestrator = "voicebot.example.com:443"
    [tls]
    ca_file = "ca.pem"
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click

from mesh.client import DialOptions
from voicebot.catalog import BY_NAME, SERVICES

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_CONFIG = Path.home() / ".config" / "voicebot" / "config.toml"


@dataclass
class ClientConfig:
    """Resolved client settings, kept on the Click context."""

    targets: dict[str, str] = field(default_factory=dict)
    token: str = ""
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    timeout_s: float = 10.0
    as_json: bool = False

    def target(self, service: str) -> str:
        """host:port of ``service``."""
        return self.targets[service]

    def dial_options(self) -> DialOptions:
        """Options for ``mesh.dial``."""
        return DialOptions(
            token=self.token,
            tls_ca_file=self.ca_file,
            tls_cert_file=self.cert_file,
            tls_key_file=self.key_file,
            tls=bool(self.ca_file),
            default_timeout_s=self.timeout_s,
        )


def _read_file(path: Path | None) -> dict[str, Any]:
    candidate = path or (Path(os.environ["VOICEBOT_CONFIG"]) if os.environ.get("VOICEBOT_CONFIG") else DEFAULT_CONFIG)
    if not candidate.exists():
        if path is not None:
            raise click.BadParameter(f"{path} does not exist", param_hint="--config")
        return {}
    try:
        return tomllib.loads(candidate.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise click.BadParameter(f"{candidate}: {exc}", param_hint="--config") from None


def resolve(
    config_file: Path | None,
    flags: dict[str, str | None],
    token: str | None,
    ca_file: str | None,
    cert_file: str | None,
    key_file: str | None,
    timeout_s: float | None,
    as_json: bool,
) -> ClientConfig:
    """Merge flags, environment, config file and defaults."""
    file = _read_file(config_file)
    file_targets = file.get("targets", {})
    file_tls = file.get("tls", {})
    targets = {}
    for info in SERVICES:
        targets[info.name] = (
            flags.get(info.name)
            or os.environ.get(f"{info.env_prefix}TARGET")
            or file_targets.get(info.name)
            or f"127.0.0.1:{info.default_port}"
        )
    return ClientConfig(
        targets=targets,
        token=token or os.environ.get("VOICEBOT_TOKEN", "") or file.get("token", ""),
        ca_file=ca_file or os.environ.get("VOICEBOT_TLS_CA_FILE", "") or file_tls.get("ca_file", ""),
        cert_file=cert_file or os.environ.get("VOICEBOT_TLS_CLIENT_CERT_FILE", "") or file_tls.get("cert_file", ""),
        key_file=key_file or os.environ.get("VOICEBOT_TLS_CLIENT_KEY_FILE", "") or file_tls.get("key_file", ""),
        timeout_s=timeout_s or float(file.get("timeout", 10.0)),
        as_json=as_json,
    )


def client_options(command: F) -> F:
    """Add the shared client options to the group; they are resolved into ``ctx.obj``."""
    options = [
        click.option("--config", "config_file", type=click.Path(path_type=Path), help="TOML config file."),
        click.option("--token", envvar="VOICEBOT_TOKEN", help="Bearer token (admin commands need the admin token)."),
        click.option("--tls-ca", "ca_file", help="CA bundle to verify the services (turns TLS on)."),
        click.option("--tls-cert", "cert_file", help="Client certificate for mutual TLS."),
        click.option("--tls-key", "key_file", help="Client key for mutual TLS."),
        click.option("--timeout", "timeout_s", type=float, help="Seconds to wait for each answer (default 10)."),
        click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON."),
        *(
            click.option(
                f"--{name}",
                f"target_{name}",
                metavar="HOST:PORT",
                help=f"Address of {name} (default port {info.default_port}).",
            )
            for name, info in BY_NAME.items()
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def pass_config(function: F) -> F:
    """Hand the resolved ``ClientConfig`` to a command as its first argument."""
    return click.pass_obj(function)  # type: ignore[return-value]
