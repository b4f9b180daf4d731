"""The ``voicebot`` command: run the mesh and talk to it over gRPC."""

from __future__ import annotations

from pathlib import Path

import click

from mesh.server import package_version
from orchestrator.cli.adapters import adapter_control
from orchestrator.cli.cache import cache_manager
from orchestrator.cli.call import start_call
from orchestrator.cli.demo import demo
from orchestrator.cli.health import orchestrator_health
from orchestrator.cli.monitor import monitor_session
from orchestrator.cli.options import client_options, resolve
from orchestrator.cli.report import analytics_report
from orchestrator.cli.run import probe, serve, up


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_version(), prog_name="voicebot")
@client_options
@click.pass_context
def main(
    ctx: click.Context,
    /,
    config_file: Path | None,
    token: str | None,
    ca_file: str | None,
    cert_file: str | None,
    key_file: str | None,
    timeout_s: float | None,
    as_json: bool,
    **targets: str | None,
) -> None:
    """voicebot: a gRPC streaming voicebot for banking."""
    flags = {name.removeprefix("target_"): value for name, value in targets.items()}
    ctx.obj = resolve(config_file, flags, token, ca_file, cert_file, key_file, timeout_s, as_json)


main.add_command(serve)
main.add_command(up)
main.add_command(probe)
main.add_command(start_call)
main.add_command(demo)
main.add_command(orchestrator_health)
main.add_command(monitor_session)
main.add_command(analytics_report)
main.add_command(cache_manager)
main.add_command(adapter_control)
