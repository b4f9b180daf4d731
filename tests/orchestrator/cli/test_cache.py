"""voicebot cache-manager against a real cache_svc (hashing embedder, entries in memory)."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import subprocess
from pathlib import Path

from tests.orchestrator.cli.conftest import Serve
from tests.orchestrator.cli.helpers import VOICEBOT_PROCESS, one_line_error, process_env, target, usage_error, voicebot

QUESTION = "What are your opening hours?"
ANSWER = "Our branches are open on weekdays from nine in the morning to five in the afternoon."
PERSONAL = "Your account number is 12345678 and your balance is 420 dollars."


async def cache_target(servers: dict[str, Serve], **overrides: object) -> list[str]:
    return ["--cache", target(await servers["cache"](**overrides)), "cache-manager"]


async def test_put_then_lookup_hits_and_stats_count_it(servers: dict[str, Serve]) -> None:
    cache = await cache_target(servers)
    put = await voicebot(*cache, "put", QUESTION, ANSWER, "--ttl", "600", "--meta", "intent=branch_hours")
    again = await voicebot(*cache, "put", QUESTION, ANSWER, "--meta", "intent=branch_hours", "--json")
    hit = await voicebot(*cache, "lookup", "what are your opening hours")
    hit_json = await voicebot(*cache, "lookup", "what are your opening hours", "--json")
    other_scope = await voicebot(*cache, "lookup", QUESTION, "--tenant", "other-bank")
    stats = await voicebot(*cache, "stats")
    stats_json = await voicebot(*cache, "stats", "--json")

    assert put.exit_code == 0, put.output
    assert put.stdout.startswith("created entry ")
    entry_id = put.stdout.split()[-1]
    assert json.loads(again.stdout) == {"entry_id": entry_id, "created": False}
    assert hit.exit_code == 0, hit.output
    assert hit.stdout.startswith("hit  similarity ")
    assert ANSWER in hit.stdout
    assert "intent=branch_hours" in hit.stdout
    reply = json.loads(hit_json.stdout)
    assert (reply["hit"], reply["answer"], reply["entry_id"]) == (True, ANSWER, entry_id)
    assert reply["metadata"] == {"intent": "branch_hours"}
    assert other_scope.stdout.startswith("miss  best similarity")
    assert stats.exit_code == 0, stats.output
    assert "entries" in stats.stdout
    assert "hashing" in stats.stdout
    counters = json.loads(stats_json.stdout)
    # int64 fields are JSON strings, as the proto3 JSON mapping (and grpcurl) writes them.
    assert (counters["entries"], counters["hits"], counters["misses"]) == ("1", "2", "1")


async def test_put_of_personal_data_is_refused_in_one_line(servers: dict[str, Serve]) -> None:
    cache = await cache_target(servers)
    result = await voicebot(*cache, "put", "what is my balance", PERSONAL)
    one_line_error(result, "FAILED_PRECONDITION")


async def test_invalidate_by_id_scope_and_query(servers: dict[str, Serve]) -> None:
    cache = await cache_target(servers)
    first = json.loads((await voicebot(*cache, "put", QUESTION, ANSWER, "--json")).stdout)["entry_id"]
    await voicebot(*cache, "put", "How do I block my card?", "Block it in the app under Cards.")
    await voicebot(*cache, "put", "Is there a branch in Leeds?", "Yes, on Park Row.", "--intent", "branches")

    by_id = await voicebot(*cache, "invalidate", "--id", first)
    by_query = await voicebot(*cache, "invalidate", "--query", "how do I block my card", "--json")
    by_scope = await voicebot(*cache, "invalidate", "--scope", "--intent", "branches")
    left = json.loads((await voicebot(*cache, "stats", "--json")).stdout)["entries"]

    assert by_id.stdout.strip() == "removed 1 entries"
    assert json.loads(by_query.stdout) == {"removed_count": "1"}
    assert by_scope.stdout.strip() == "removed 1 entries"
    assert left == "0"


async def test_invalidate_needs_exactly_one_selector(servers: dict[str, Serve]) -> None:
    usage_error(await voicebot("cache-manager", "invalidate"), "exactly one of --id, --scope or --query")
    usage_error(await voicebot("cache-manager", "invalidate", "--id", "x", "--scope"), "exactly one")


async def test_clear_asks_first_unless_yes(servers: dict[str, Serve]) -> None:
    cache = await cache_target(servers)
    for question in ("How do I block my card?", "What are your opening hours?"):
        await voicebot(*cache, "put", question, "An answer with no personal data.")
    declined = await voicebot(*cache, "clear", input="n\n")
    entries = json.loads((await voicebot(*cache, "stats", "--json")).stdout)["entries"]
    scoped = await voicebot(*cache, "clear", "--scope", "--tenant", "nobody", "--yes")
    confirmed = await voicebot(*cache, "clear", input="y\n")
    await voicebot(*cache, "put", QUESTION, ANSWER)
    unasked = await voicebot(*cache, "clear", "--yes", "--json")

    assert declined.exit_code == 1
    assert "Remove every cache entry" in declined.stderr
    assert "Aborted" in declined.stderr
    assert entries == "2"
    assert scoped.stdout.strip() == "removed 0 entries"
    assert confirmed.exit_code == 0, confirmed.output
    assert confirmed.stdout.strip() == "removed 2 entries"
    assert json.loads(unasked.stdout) == {"removed_count": "1"}


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


async def test_warm_from_csv_counts_created_refreshed_and_refused(servers: dict[str, Serve], tmp_path: Path) -> None:
    cache = await cache_target(servers)
    await voicebot(*cache, "put", QUESTION, ANSWER)
    csv_file = write(
        tmp_path / "faq.csv",
        "query,answer,tenant,language,intent,ttl\n"
        f'"{QUESTION}","{ANSWER}",,,,\n'
        '"How do I block my card?","Block it in the app under Cards.",,,cards,3600\n'
        f'"What is my balance?","{PERSONAL}",,,,\n'
        '"Do you have a branch in Leeds?","Yes, on Park Row.",other-bank,en-GB,,\n',
    )
    result = await voicebot(*cache, "warm", str(csv_file))
    in_scope = await voicebot(*cache, "lookup", "How do I block my card?", "--intent", "cards")
    other_tenant = await voicebot(
        *cache, "lookup", "Do you have a branch in Leeds?", "--tenant", "other-bank", "--language", "en-GB"
    )

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "created 2, refreshed 1, refused 1"
    assert result.stdout.splitlines()[1].startswith("  refused line 4 (pair 3): ")
    assert result.stderr == ""  # no progress bar when stderr is not a terminal
    assert in_scope.stdout.startswith("hit")
    assert other_tenant.stdout.startswith("hit")


async def test_warm_from_jsonl_names_refused_lines(servers: dict[str, Serve], tmp_path: Path) -> None:
    cache = await cache_target(servers)
    rows = [
        {"query": QUESTION, "answer": ANSWER},
        {"query": "Card lost", "answer": "Call 555-867-5309 and give them jane@example.com."},
        {"query": "How do I block my card?", "answer": "Block it in the app.", "ttl": 60, "intent": "cards"},
    ]
    jsonl = write(tmp_path / "faq.jsonl", "\n".join(json.dumps(row) for row in rows[:2]) + "\n\n" + json.dumps(rows[2]))
    result = await voicebot(*cache, "warm", str(jsonl), "--json")

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["created_count"], summary["refreshed_count"], summary["refused_count"]) == ("2", "0", "1")
    assert len(summary["refusals"]) == 1
    assert summary["refusals"][0].startswith("line 2 (pair 2): ")


async def test_warm_rejects_malformed_files_before_sending(tmp_path: Path) -> None:
    no_answer = write(tmp_path / "a.csv", "query,reply\nhello,hi\n")
    bad_json = write(tmp_path / "b.jsonl", '{"query": "q", "answer": "a"}\n{"query": \n')
    bad_ttl = write(tmp_path / "c.csv", "query,answer,ttl\nq,a,soon\n")
    missing_key = write(tmp_path / "d.jsonl", '{"query": "q"}\n')
    empty = write(tmp_path / "e.csv", "query,answer\n")
    usage_error(await voicebot("cache-manager", "warm", str(no_answer)), "CSV header must hold query and answer")
    usage_error(await voicebot("cache-manager", "warm", str(bad_json)), "b.jsonl line 2: not JSON")
    usage_error(await voicebot("cache-manager", "warm", str(bad_ttl)), "c.csv line 2", "'soon'")
    usage_error(await voicebot("cache-manager", "warm", str(missing_key)), "d.jsonl line 1: no answer")
    usage_error(await voicebot("cache-manager", "warm", str(empty)), "holds no pairs")
    usage_error(await voicebot("cache-manager", "warm", str(tmp_path / "missing.csv")), "does not exist")


async def test_bad_arguments_are_usage_errors() -> None:
    usage_error(await voicebot("cache-manager", "put", "q", "a", "--meta", "novalue"), "'novalue' is not KEY=VALUE")
    usage_error(await voicebot("cache-manager", "put", "q", "a", "--ttl", "-1"), "Invalid value for '--ttl'")
    usage_error(await voicebot("cache-manager", "lookup", "q", "--threshold", "1.5"), "Invalid value for '--threshold'")
    usage_error(await voicebot("cache-manager", "lookup"), "Missing argument 'QUERY'")


async def test_server_side_validation_is_one_line(servers: dict[str, Serve]) -> None:
    cache = await cache_target(servers)
    one_line_error(await voicebot(*cache, "lookup", "x" * 1025), "INVALID_ARGUMENT", "1024")


async def test_admin_rpcs_need_the_admin_token(servers: dict[str, Serve], tmp_path: Path) -> None:
    cache = await cache_target(servers, auth_token="caller-token", admin_token="admin-token")
    faq = write(tmp_path / "faq.csv", f'query,answer\n"{QUESTION}","{ANSWER}"\n')
    anonymous = await voicebot(*cache, "stats")
    caller_stats = await voicebot("--token", "caller-token", *cache, "stats")
    caller_clear = await voicebot("--token", "caller-token", *cache, "clear", "--yes")
    caller_warm = await voicebot("--token", "caller-token", *cache, "warm", str(faq))
    admin_warm = await voicebot("--token", "admin-token", *cache, "warm", str(faq))

    one_line_error(anonymous, "refused the call", "--token")
    assert caller_stats.exit_code == 0, caller_stats.output
    one_line_error(caller_clear, "refused the call", "admin token")
    assert "Traceback" not in caller_warm.output
    assert caller_warm.exit_code == 1
    assert "admin token" in caller_warm.stderr
    assert admin_warm.exit_code == 0, admin_warm.output
    assert admin_warm.stdout.startswith("created 1,")


async def test_warm_shows_a_progress_bar_on_a_terminal(servers: dict[str, Serve], tmp_path: Path) -> None:
    cache = await cache_target(servers)
    faq = write(tmp_path / "faq.csv", "query,answer\n" + "".join(f'"Question {i}?","Answer {i}."\n' for i in range(5)))
    stdout, terminal = await asyncio.to_thread(run_with_terminal_stderr, [*cache, "warm", str(faq)])
    assert stdout.splitlines()[0] == "created 5, refreshed 0, refused 0"
    assert "warming" in terminal
    assert "100%" in terminal


def run_with_terminal_stderr(args: list[str]) -> tuple[str, str]:
    """Run ``voicebot ARGS`` in a process whose stderr is a pseudo-terminal; return stdout and the terminal's text."""
    controller, terminal = pty.openpty()
    with subprocess.Popen(
        [*VOICEBOT_PROCESS, *args],
        stdout=subprocess.PIPE,
        stderr=terminal,
        text=True,
        env=process_env(),
    ) as process:
        os.close(terminal)
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the process closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        stdout = process.stdout.read() if process.stdout else ""
        process.wait(timeout=60)
    os.close(controller)
    assert process.returncode == 0, shown
    return stdout, shown.decode(errors="replace")
