"""``voicebot demo``: start the mesh, place a scripted spoken call, show the conversation and latency."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import click

from mesh import dial
from orchestrator.caller import CallRecord, place_call, write_wav
from orchestrator.cli.call import latency_table, session_config
from orchestrator.cli.errors import friendly_errors
from orchestrator.cli.options import ClientConfig, pass_config
from voicebot.v1 import orchestrator_service_pb2_grpc


@click.command()
@click.option("--fast", is_flag=True, help="Send the caller's audio as fast as the mesh takes it.")
@click.option(
    "--out",
    default="demo-bot.wav",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the bot's audio.",
)
@click.option("--no-up", is_flag=True, help="Use a mesh that is already running instead of starting one.")
@click.option(
    "--timeout", "timeout_s", default=300.0, show_default=True, help="Seconds the services get to become SERVING."
)
@pass_config
def demo(client: ClientConfig, fast: bool, out: Path, no_up: bool, timeout_s: float) -> None:
    """Start the mesh on its embedded engines and place a scripted spoken call through it."""
    from orchestrator.demo import DEMO_CALLER_ID, SCRIPT, speak_lines
    from orchestrator.launcher import LocalMesh

    mesh = LocalMesh()
    if not no_up:
        click.echo("starting the mesh (stt, tts, llm, cache, analytics, orchestrator) ...")
        started = time.monotonic()
        try:
            mesh.start()
            mesh.wait_serving(timeout_s)
        except RuntimeError as exc:
            mesh.stop()
            raise click.ClickException(str(exc)) from None
        click.echo(f"all six services SERVING after {time.monotonic() - started:.1f} s (logs in {mesh.log_dir})\n")
    try:
        click.echo("making the caller's voice (Piper) ...")
        utterances = speak_lines()
        click.echo(f"calling the bot ({'as fast as possible' if fast else 'in real time'}):\n")
        config = session_config(
            caller_id=DEMO_CALLER_ID, session="", voice="", adapter="", tenant="", text_only=False, telephony=False
        )
        target = client.target("orchestrator")

        async def go() -> CallRecord:
            async with dial(target, client.dial_options()) as channel:
                stub = orchestrator_service_pb2_grpc.OrchestratorServiceStub(channel)
                return await place_call(stub, config, caller_audio=utterances, realtime=not fast)

        with friendly_errors(target):
            record = asyncio.run(go())
    finally:
        if not no_up:
            mesh.stop()
    for who, text in record.conversation:
        click.echo(f"{who + '>':<8}{text}")
    click.echo(f"\n(the caller said: {' / '.join(SCRIPT)})\n")
    click.echo(latency_table(record))
    if record.bot_format is not None:
        write_wav(str(out), bytes(record.bot_audio), record.bot_format)
        seconds = record.bot_format.duration_ms(len(record.bot_audio)) / 1000
        click.echo(f"\nthe bot's voice ({seconds:.1f} s) is in {out}")
    if not record.latencies:
        raise click.ClickException("the bot answered no turn: see the service logs")
