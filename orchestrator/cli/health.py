"""``voicebot orchestrator-health``: health, version and engine of every service, once or watched.

Exit codes: 0 every component SERVING; 1 the orchestrator did not answer (or refused the call);
3 the orchestrator answered but a component is NOT_SERVING or UNREACHABLE. ``--watch`` keeps
redrawing until Ctrl-C (or ``--count`` refreshes) and then exits with the code of the last refresh,
so ``Ctrl-C`` after a healthy refresh exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

import click
import grpc

from mesh.client import dial
from orchestrator.cli.errors import explain
from orchestrator.cli.options import ClientConfig, pass_config
from orchestrator.cli.output import echo_json, json_option, table, wants_json
from voicebot.v1 import orchestrator_service_pb2 as pb
from voicebot.v1 import orchestrator_service_pb2_grpc

HEALTHY = 0
UNREACHABLE = 1
DEGRADED = 3

HEADERS = ("service", "target", "state", "version", "engine", "latency ms", "detail")


@dataclass
class Observation:
    """The latest refresh: its exit code, and the status or the error line."""

    code: int = UNREACHABLE
    status: pb.GetStatusResponse | None = None
    error: str = ""


def state_name(state: int) -> str:
    """``SERVING_STATE_NOT_SERVING`` -> ``NOT_SERVING``."""
    return pb.ServingState.Name(state).removeprefix("SERVING_STATE_")  # type: ignore[arg-type]


def exit_code(status: pb.GetStatusResponse) -> int:
    """0 when every component is SERVING, else 3."""
    healthy = status.components and all(c.state == pb.SERVING_STATE_SERVING for c in status.components)
    return HEALTHY if healthy else DEGRADED


def render(status: pb.GetStatusResponse, dialled: str) -> str:
    """The status as a table; the orchestrator's row shows the address this command dialled."""
    rows = []
    for c in status.components:
        own = c.service == "orchestrator"
        measured = c.state == pb.SERVING_STATE_SERVING and not own
        rows.append(
            (
                c.service,
                dialled if own else c.target,
                state_name(c.state),
                c.version or "-",
                c.engine or "-",
                c.latency_ms if measured else "-",
                c.detail,
            )
        )
    serving = sum(c.state == pb.SERVING_STATE_SERVING for c in status.components)
    summary = (
        f"{serving}/{len(status.components)} serving · replica {status.replica or '-'} · "
        f"{status.active_calls} active calls"
    )
    return table(HEADERS, rows, right=frozenset({5})) + "\n" + summary


async def observe(stub: orchestrator_service_pb2_grpc.OrchestratorServiceStub, target: str) -> Observation:
    """One GetStatus, as an observation (a failed call is an observation too)."""
    try:
        status = await stub.GetStatus(pb.GetStatusRequest())
    except grpc.RpcError as exc:
        return Observation(UNREACHABLE, None, explain(exc, target))
    return Observation(exit_code(status), status)


def show(observation: Observation, target: str, as_json: bool) -> None:
    """Print one observation: JSON line or table; a failure as one line on stderr (table mode)."""
    if as_json:
        if observation.status is not None:
            echo_json(observation.status)
        else:
            echo_json({"error": observation.error})
    elif observation.status is not None:
        click.echo(render(observation.status, target))
    else:
        click.echo(observation.error, err=True)


async def watch_status(config: ClientConfig, interval_s: float, count: int, as_json: bool, last: Observation) -> None:
    """Refresh every ``interval_s`` until cancelled or ``count`` refreshes; ``last`` holds the latest."""
    target = config.target("orchestrator")
    refreshes = 0
    while True:
        # A fresh channel per refresh after a failure: a channel in reconnect back-off would hide
        # an orchestrator that came back for up to two minutes.
        async with dial(target, config.dial_options()) as channel:
            stub = orchestrator_service_pb2_grpc.OrchestratorServiceStub(channel)
            while True:
                observation = await observe(stub, target)
                last.code, last.status, last.error = observation.code, observation.status, observation.error
                if not as_json:
                    click.clear()
                    stamp = time.strftime("%H:%M:%S")
                    click.echo(f"voicebot orchestrator-health · every {interval_s:g}s · {stamp} · Ctrl-C stops")
                show(observation, target, as_json)
                refreshes += 1
                if count and refreshes >= count:
                    return
                await asyncio.sleep(interval_s)
                if observation.status is None:
                    break


@click.command("orchestrator-health")
@click.option("--watch", is_flag=True, help="Redraw every --interval seconds until Ctrl-C.")
@click.option(
    "--interval",
    "interval_s",
    type=click.FloatRange(min=0.1),
    default=2.0,
    show_default=True,
    help="Seconds between refreshes with --watch.",
)
@click.option(
    "--count",
    type=click.IntRange(min=0),
    default=0,
    help="With --watch: stop after this many refreshes (0: until Ctrl-C).",
)
@json_option
@pass_config
def orchestrator_health(config: ClientConfig, watch: bool, interval_s: float, count: int, as_json: bool) -> None:
    """Health, version and engine of the orchestrator and every service it depends on.

    Exits 0 when all are SERVING, 3 when one is not, 1 when the orchestrator does not answer.
    With --watch the exit code is that of the last refresh (Ctrl-C after a healthy one exits 0).
    --json prints the GetStatus response (one JSON line per refresh).
    """
    as_json = wants_json(config, as_json)
    target = config.target("orchestrator")
    ctx = click.get_current_context()
    if watch:
        last = Observation()
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(watch_status(config, interval_s, count, as_json, last))
        ctx.exit(last.code)

    async def once() -> Observation:
        async with dial(target, config.dial_options()) as channel:
            return await observe(orchestrator_service_pb2_grpc.OrchestratorServiceStub(channel), target)

    observation = asyncio.run(once())
    if observation.status is None:
        raise click.ClickException(observation.error)
    show(observation, target, as_json)
    ctx.exit(observation.code)
