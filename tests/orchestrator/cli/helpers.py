"""Run the ``voicebot`` command against real services and check how it fails.

Click's CliRunner runs a command in the calling thread and the commands call ``asyncio.run``, so
``voicebot()`` runs it in a worker thread while the servers keep serving on the test's loop.
"""

from __future__ import annotations

import asyncio
import os
import sys

from click.testing import CliRunner, Result

from mesh import MeshServer
from orchestrator.cli import main
from voicebot.catalog import SERVICES

# The command must see only what a test passes: no user config file, token or target variables.
CLEAN_ENV: dict[str, str | None] = {
    "VOICEBOT_CONFIG": os.devnull,
    "VOICEBOT_TOKEN": None,
    "VOICEBOT_TLS_CA_FILE": None,
    **{f"{info.env_prefix}TARGET": None for info in SERVICES},
}


async def voicebot(*args: str, input: str | None = None, env: dict[str, str | None] | None = None) -> Result:
    """Run ``voicebot ARGS`` in a worker thread and return its result (exit code, stdout, stderr)."""
    runner = CliRunner(env={**CLEAN_ENV, **(env or {})})
    return await asyncio.to_thread(runner.invoke, main, list(args), input)


def one_line_error(result: Result, *fragments: str) -> str:
    """Assert ``result`` failed with exit code 1 and one line on stderr holding ``fragments``, no traceback."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def usage_error(result: Result, *fragments: str) -> None:
    """Assert ``result`` is a Click usage error (exit code 2) whose message holds ``fragments``."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def target(server: MeshServer) -> str:
    """host:port of a started server."""
    return f"127.0.0.1:{server.port}"


# ``voicebot`` as a separate process (for signals and terminals, which CliRunner cannot give).
VOICEBOT_PROCESS = [sys.executable, "-c", "from orchestrator.cli import main; main()"]


def process_env() -> dict[str, str]:
    """This process's environment without the variables ``CLEAN_ENV`` clears."""
    env = {key: value for key, value in os.environ.items() if key not in CLEAN_ENV}
    env["VOICEBOT_CONFIG"] = os.devnull
    return env
