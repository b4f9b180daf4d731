"""Every client command, pointed at a port where nothing listens, fails in one line with exit code 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.orchestrator.cli.helpers import one_line_error, voicebot

COMMANDS = [
    ("orchestrator", ["orchestrator-health"]),
    ("analytics", ["monitor-session", "s-1"]),
    ("analytics", ["monitor-session", "s-1", "--json"]),
    ("analytics", ["analytics-report", "--group-by", "day"]),
    ("cache", ["cache-manager", "stats"]),
    ("cache", ["cache-manager", "lookup", "opening hours"]),
    ("cache", ["cache-manager", "put", "opening hours", "nine to five"]),
    ("cache", ["cache-manager", "invalidate", "--scope"]),
    ("cache", ["cache-manager", "clear", "--yes"]),
    ("cache", ["cache-manager", "warm", "{faq}"]),
    ("llm", ["adapter-control", "list"]),
    ("llm", ["adapter-control", "load", "a", "/adapters/a"]),
    ("llm", ["adapter-control", "unload", "a"]),
]


@pytest.mark.parametrize(("service", "args"), COMMANDS, ids=[" ".join(args) for _, args in COMMANDS])
async def test_unreachable_target_is_one_line(service: str, args: list[str], tmp_path: Path) -> None:
    faq = tmp_path / "faq.csv"
    faq.write_text("query,answer\nopening hours,nine to five\n")
    dead = f"127.0.0.1:{free_port()}"
    result = await voicebot(f"--{service}", dead, *[arg.format(faq=faq) for arg in args])
    line = one_line_error(result, f"nothing answers at {dead}", "voicebot up")
    assert line.startswith("Error: ")
