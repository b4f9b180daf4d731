"""The ``voicebot`` command: run the mesh and talk to it over gRPC."""

from __future__ import annotations

import click

from mesh.server import package_version
from orchestrator.cli.run import probe, serve, up


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_version(), prog_name="voicebot")
def main() -> None:
    """voicebot: a gRPC streaming voicebot for banking."""


main.add_command(serve)
main.add_command(up)
main.add_command(probe)
