"""``voicebot cache-manager``: inspect and manage the semantic answer cache."""

from __future__ import annotations

import csv
import json
import os
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
import grpc

from orchestrator.cli.client import call, unary
from orchestrator.cli.options import ClientConfig, pass_config
from orchestrator.cli.output import echo_json, echo_reply, json_option, message_dict, table, wants_json
from voicebot.v1 import cache_service_pb2 as pb
from voicebot.v1 import cache_service_pb2_grpc

F = TypeVar("F", bound=Callable[..., Any])

# The scope calls use when they name none: the orchestrator's default tenant and language, no intent.
DEFAULT_TENANT = os.environ.get("VOICEBOT_ORCHESTRATOR_TENANT", "demo-bank")
DEFAULT_LANGUAGE = "en-US"
WARM_COLUMNS = ("query", "answer", "tenant", "language", "intent", "ttl")
# Extra seconds the warm stream's deadline allows per pair, on top of --timeout.
WARM_S_PER_PAIR = 0.1
_PAIR = re.compile(r"pair (\d+): ")


def scope_options(command: F) -> F:
    """Add ``--tenant``, ``--language`` and ``--intent`` (a cache scope)."""
    options = [
        click.option(
            "--tenant",
            default=DEFAULT_TENANT,
            show_default=True,
            help="Tenant of the scope (default: $VOICEBOT_ORCHESTRATOR_TENANT or the orchestrator's default).",
        ),
        click.option("--language", default=DEFAULT_LANGUAGE, show_default=True, help="BCP-47 language of the scope."),
        click.option("--intent", default="", help="Intent of the scope (calls look up with none)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _scope(tenant: str, language: str, intent: str) -> pb.CacheScope:
    return pb.CacheScope(tenant=tenant, language_code=language, intent=intent)


def _unary(config: ClientConfig, rpc: Callable[[cache_service_pb2_grpc.CacheServiceStub], Awaitable[Any]]) -> Any:
    return unary(config, "cache", cache_service_pb2_grpc.CacheServiceStub, rpc)


@click.group("cache-manager")
def cache_manager() -> None:
    """Inspect and manage the semantic answer cache (cache_svc).

    invalidate, clear and warm are admin RPCs: with auth on they need the admin token.
    """


@cache_manager.command()
@json_option
@pass_config
def stats(config: ClientConfig, as_json: bool) -> None:
    """Size, hit ratio and lookup latency of the cache replica answering."""
    reply: pb.GetStatsResponse = _unary(config, lambda stub: stub.GetStats(pb.GetStatsRequest()))
    echo_reply(config, as_json, reply, lambda: _stats_table(reply))


def _size(count: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"


def _stats_table(reply: pb.GetStatsResponse) -> str:
    rows = [
        ("entries", reply.entries),
        ("hits", reply.hits),
        ("misses", reply.misses),
        ("hit ratio", f"{reply.hit_ratio * 100:.1f}%"),
        ("lookup p50", f"{reply.lookup_p50_ms:.2f} ms"),
        ("lookup p99", f"{reply.lookup_p99_ms:.2f} ms"),
        ("memory", _size(reply.memory_bytes)),
        ("embedder", reply.embedder),
        ("index", reply.index_type),
        ("storage", reply.storage),
    ]
    return table(("stat", "value"), rows)


@cache_manager.command()
@click.argument("query")
@scope_options
@click.option("--threshold", type=click.FloatRange(0.0, 1.0), help="Lowest similarity that hits (server default).")
@json_option
@pass_config
def lookup(
    config: ClientConfig, query: str, tenant: str, language: str, intent: str, threshold: float | None, as_json: bool
) -> None:
    """Look QUERY up as a call would; prints the answer on a hit, the best similarity on a miss."""
    request = pb.LookupRequest(query=query, scope=_scope(tenant, language, intent), threshold=threshold)
    reply: pb.LookupResponse = _unary(config, lambda stub: stub.Lookup(request))
    if wants_json(config, as_json):
        echo_json(reply)
    elif reply.hit:
        age_s = reply.age_ms / 1000
        click.echo(f"hit  similarity {reply.similarity:.3f}  entry {reply.entry_id}  age {age_s:.0f} s")
        click.echo(reply.answer)
        for key, value in sorted(reply.metadata.items()):
            click.echo(f"  {key}={value}")
    else:
        click.echo(f"miss  best similarity {reply.similarity:.3f}")


def _metadata(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    metadata = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE")
        metadata[key] = value
    return metadata


@cache_manager.command()
@click.argument("query")
@click.argument("answer")
@scope_options
@click.option(
    "--ttl", type=click.IntRange(0, 2_592_000), default=0, help="Seconds to keep it (0: server default, 1 day)."
)
@click.option("--meta", multiple=True, callback=_metadata, metavar="KEY=VALUE", help="A label (repeatable).")
@json_option
@pass_config
def put(
    config: ClientConfig,
    query: str,
    answer: str,
    tenant: str,
    language: str,
    intent: str,
    ttl: int,
    meta: dict[str, str],
    as_json: bool,
) -> None:
    """Store ANSWER for QUERY (answers with personal or account data are refused)."""
    request = pb.StoreRequest(
        query=query, answer=answer, scope=_scope(tenant, language, intent), ttl_seconds=ttl, metadata=meta
    )
    reply: pb.StoreResponse = _unary(config, lambda stub: stub.Store(request))
    echo_reply(config, as_json, reply, lambda: f"{'created' if reply.created else 'refreshed'} entry {reply.entry_id}")


@cache_manager.command()
@click.option("--id", "entry_id", help="Remove the entry with this id.")
@click.option("--scope", "by_scope", is_flag=True, help="Remove every entry of the scope --tenant/--language/--intent.")
@click.option("--query", help="Remove the entries of the scope that a lookup of this query would hit.")
@scope_options
@click.option("--threshold", type=click.FloatRange(0.0, 1.0), help="With --query: lowest similarity to remove.")
@json_option
@pass_config
def invalidate(
    config: ClientConfig,
    entry_id: str | None,
    by_scope: bool,
    query: str | None,
    tenant: str,
    language: str,
    intent: str,
    threshold: float | None,
    as_json: bool,
) -> None:
    """Remove entries by --id, by --scope, or by --query similarity (admin)."""
    if [entry_id is not None, by_scope, query is not None].count(True) != 1:
        raise click.UsageError("give exactly one of --id, --scope or --query")
    scope = _scope(tenant, language, intent)
    if entry_id is not None:
        request = pb.InvalidateRequest(entry_id=entry_id)
    elif by_scope:
        request = pb.InvalidateRequest(scope=scope)
    else:
        request = pb.InvalidateRequest(query_match=pb.QueryMatch(query=query or "", scope=scope, threshold=threshold))
    reply: pb.InvalidateResponse = _unary(config, lambda stub: stub.Invalidate(request))
    echo_reply(config, as_json, reply, lambda: f"removed {reply.removed_count} entries")


@cache_manager.command()
@click.option("--scope", "by_scope", is_flag=True, help="Only the scope --tenant/--language/--intent.")
@scope_options
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@json_option
@pass_config
def clear(
    config: ClientConfig, by_scope: bool, tenant: str, language: str, intent: str, yes: bool, as_json: bool
) -> None:
    """Remove every entry, or every entry of one scope with --scope (admin; asks first unless --yes)."""
    what = f"every entry of scope {tenant}/{language}/{intent or '-'}" if by_scope else "every cache entry"
    if not yes:
        click.confirm(f"Remove {what} at {config.target('cache')}?", abort=True, err=True)
    request = pb.ClearRequest(scope=_scope(tenant, language, intent)) if by_scope else pb.ClearRequest()
    cleared: pb.ClearResponse = _unary(config, lambda stub: stub.Clear(request))
    echo_reply(config, as_json, cleared, lambda: f"removed {cleared.removed_count} entries")


@dataclass(frozen=True)
class Pair:
    """One question/answer pair of a warm file and the line it came from."""

    line: int
    request: pb.WarmRequest


def _int(value: Any, where: str) -> int:
    if value in (None, ""):
        return 0
    try:
        return int(value)
    except (TypeError, ValueError):
        raise click.BadParameter(f"{where}: ttl {value!r} is not a whole number of seconds") from None


def _pair(record: dict[str, Any], line: int, where: str, scope: pb.CacheScope) -> Pair:
    missing = [key for key in ("query", "answer") if key not in record]
    if missing:
        raise click.BadParameter(f"{where}: no {' or '.join(missing)} (keys: {', '.join(WARM_COLUMNS)})")
    text = {key: "" if record.get(key) is None else str(record[key]) for key in ("query", "answer")}
    pair_scope = pb.CacheScope(
        tenant=str(record.get("tenant") or scope.tenant),
        language_code=str(record.get("language") or scope.language_code),
        intent=str(record.get("intent") or scope.intent),
    )
    request = pb.WarmRequest(
        query=text["query"], answer=text["answer"], scope=pair_scope, ttl_seconds=_int(record.get("ttl"), where)
    )
    return Pair(line, request)


def read_pairs(path: Path, scope: pb.CacheScope) -> list[Pair]:
    """Pairs of a CSV file (header query,answer[,tenant,language,intent,ttl]) or a JSONL file (same keys).

    Empty scope columns take ``scope``'s values. A file is JSONL when its name ends in .jsonl or
    .ndjson, or its first non-blank character is ``{``; otherwise CSV.

    Raises:
        click.BadParameter: a malformed file, naming the line.
    """
    text = path.read_text(encoding="utf-8-sig")
    jsonl = path.suffix.lower() in (".jsonl", ".ndjson") or text.lstrip().startswith("{")
    pairs = []
    if jsonl:
        for number, raw in enumerate(text.splitlines(), start=1):
            if not raw.strip():
                continue
            where = f"{path.name} line {number}"
            try:
                record = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise click.BadParameter(f"{where}: not JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise click.BadParameter(f"{where}: not a JSON object")
            pairs.append(_pair(record, number, where, scope))
        return pairs
    reader = csv.DictReader(text.splitlines())
    header = [name.strip().lower() for name in reader.fieldnames or ()]
    unknown = [name for name in header if name not in WARM_COLUMNS]
    if "query" not in header or "answer" not in header or unknown:
        raise click.BadParameter(
            f"{path.name}: the CSV header must hold query and answer (and optionally tenant, language, intent, "
            f"ttl); got {', '.join(reader.fieldnames or ()) or 'nothing'}"
        )
    reader.fieldnames = header
    for record in reader:
        number = reader.line_num
        if None in record:
            raise click.BadParameter(f"{path.name} line {number}: more fields than the header has")
        pairs.append(_pair(record, number, f"{path.name} line {number}", scope))
    return pairs


def _refusal(text: str, pairs: list[Pair]) -> str:
    """``pair 3: why`` -> ``line 4 (pair 3): why``: point at the file's line."""
    match = _PAIR.match(text)
    if match and 1 <= int(match.group(1)) <= len(pairs):
        number = int(match.group(1))
        return f"line {pairs[number - 1].line} (pair {number}): {text[match.end() :]}"
    return text


@cache_manager.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@scope_options
@json_option
@pass_config
def warm(config: ClientConfig, file: Path, tenant: str, language: str, intent: str, as_json: bool) -> None:
    """Store the question/answer pairs of FILE (CSV or JSONL) in one stream (admin).

    CSV needs a header with query and answer, and may add tenant, language, intent and ttl
    columns; JSONL lines are objects with the same keys. Empty scope columns take --tenant,
    --language and --intent. A progress bar on stderr (at a terminal) counts the pairs sent.
    Pairs holding personal data are refused, not fatal: the counts and the first refusals (with
    their line) are printed, and the exit code stays 0.
    """
    pairs = read_pairs(file, _scope(tenant, language, intent))
    if not pairs:
        raise click.BadParameter(f"{file.name} holds no pairs", param_hint="FILE")
    timeout_s = config.timeout_s + WARM_S_PER_PAIR * len(pairs)

    async def stream(channel: grpc.aio.Channel) -> pb.WarmResponse:
        stub = cache_service_pb2_grpc.CacheServiceStub(channel)
        # The bar is for a person at a terminal; in logs and pipes it would only add noise.
        hidden = not sys.stderr.isatty()
        with click.progressbar(length=len(pairs), label="warming", file=sys.stderr, hidden=hidden) as bar:

            async def requests() -> AsyncIterator[pb.WarmRequest]:
                for pair in pairs:
                    yield pair.request
                    bar.update(1)

            reply: pb.WarmResponse = await stub.Warm(requests(), timeout=timeout_s)
        return reply

    reply = call(config, "cache", stream)
    refusals = [_refusal(text, pairs) for text in reply.refusals]
    if wants_json(config, as_json):
        data = message_dict(reply)
        data["refusals"] = refusals
        echo_json(data)
        return
    click.echo(f"created {reply.created_count}, refreshed {reply.refreshed_count}, refused {reply.refused_count}")
    for text in refusals:
        click.echo(f"  refused {text}")
    if reply.refused_count > len(refusals):
        click.echo(f"  ... and {reply.refused_count - len(refusals)} more refused pairs")
