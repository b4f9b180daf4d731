"""``voicebot start-call``: talk to the bot from a WAV file or typed turns, and watch it live."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from google.protobuf import json_format

from mesh import dial
from orchestrator.caller import CallRecord, caller_format, load_wav, place_call, write_wav
from orchestrator.cli.errors import run
from orchestrator.cli.options import ClientConfig, pass_config
from voicebot.v1 import orchestrator_service_pb2 as pb
from voicebot.v1 import orchestrator_service_pb2_grpc

SHOWN_EVENTS = {
    pb.CALL_EVENT_TYPE_BARGE_IN: lambda e: f"barge-in: playback stopped at {e.playback_position_ms} ms",
    pb.CALL_EVENT_TYPE_AGENT_TRANSFER: lambda e: f"transfer to an agent: {e.detail}",
    pb.CALL_EVENT_TYPE_ERROR: lambda e: f"{e.service} failed ({e.code}): {e.detail}",
    pb.CALL_EVENT_TYPE_CALL_ENDED: lambda e: f"call ended: {e.detail}",
    pb.CALL_EVENT_TYPE_SESSION_STARTED: lambda e: f"session {e.session_id}",
    pb.CALL_EVENT_TYPE_SESSION_RESUMED: lambda e: f"resumed session {e.session_id}",
}


class LiveView:
    """Prints the conversation as it streams: caller lines, bot text as it is generated, events."""

    def __init__(self, as_json: bool) -> None:
        """Print JSON lines instead of text when ``as_json``."""
        self.as_json = as_json
        self.bot_open = False

    def __call__(self, response: pb.ConverseResponse) -> None:
        """Show one response."""
        if self.as_json:
            if response.WhichOneof("output") == "bot_audio":
                slim = pb.ConverseResponse()
                slim.CopyFrom(response)
                slim.bot_audio.audio = b""  # audio goes to --out, not to the terminal
                response = slim
            click.echo(json_format.MessageToJson(response, indent=None))
            return
        kind = response.WhichOneof("output")
        if kind == "transcript" and response.transcript.is_final:
            self._close_bot()
            click.echo(f"caller> {response.transcript.text}")
        elif kind == "bot_text":
            if not self.bot_open:
                click.echo("bot>    ", nl=False)
                self.bot_open = True
            click.echo(response.bot_text.delta, nl=False)
            sys.stdout.flush()
        elif kind == "event" and response.event.type in SHOWN_EVENTS:
            self._close_bot()
            click.echo(f"        [{SHOWN_EVENTS[response.event.type](response.event)}]")
        elif kind == "event" and response.event.type == pb.CALL_EVENT_TYPE_TURN_ENDED:
            self._close_bot()

    def _close_bot(self) -> None:
        if self.bot_open:
            click.echo()
            self.bot_open = False


def latency_table(record: CallRecord) -> str:
    """Per-turn latency, in ms from the end of the caller's speech."""
    header = "turn  final transcript  first token  first audio (voice-to-voice)  stt  llm  tts  cache"
    rows = [header, "-" * len(header)]
    for index, lat in record.latencies:
        rows.append(
            f"{index:>4}  {lat.final_transcript_ms:>16}  {lat.first_token_ms:>11}  {lat.first_audio_ms:>28}"
            f"  {lat.stt_compute_ms:>3}  {lat.llm_compute_ms:>3}  {lat.tts_compute_ms:>3}  {lat.cache_ms:>5}"
        )
    return "\n".join(rows)


def session_config(
    *, caller_id: str, session: str, voice: str, adapter: str, tenant: str, text_only: bool, telephony: bool
) -> pb.SessionConfig:
    """The SessionConfig a CLI call sends."""
    config = pb.SessionConfig(
        session_id=session, caller_id=caller_id, voice=voice, adapter=adapter, tenant=tenant, text_only=text_only
    )
    if not text_only:
        config.input_format.CopyFrom(caller_format(telephony))
    return config


@click.command("start-call")
@click.argument("wav", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--text", "texts", multiple=True, help="A typed caller turn (repeatable); sent after the WAV, if any.")
@click.option("--fast", is_flag=True, help="Send audio as fast as the mesh takes it instead of in real time.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the bot's audio to this WAV file.")
@click.option("--caller-id", default="", help="Caller id (a phone number; masked in logs and analytics).")
@click.option("--session", default="", help="Resume this session id.")
@click.option("--voice", default="", help="TTS voice (see tts ListVoices).")
@click.option("--adapter", default="", help="LoRA adapter for the language model.")
@click.option("--tenant", default="", help="Tenant (cache scope).")
@click.option("--telephony", is_flag=True, help="Send 8 kHz mu-law, as a contact centre trunk does.")
@click.option("--json", "as_json", is_flag=True, help="Print every response as a JSON line.")
@pass_config
def start_call(
    client: ClientConfig,
    wav: Path | None,
    texts: tuple[str, ...],
    fast: bool,
    out: Path | None,
    caller_id: str,
    session: str,
    voice: str,
    adapter: str,
    tenant: str,
    telephony: bool,
    as_json: bool,
) -> None:
    """Call the bot with WAV audio (any rate or channels) and/or typed --text turns, showing it live."""
    if wav is None and not texts:
        raise click.UsageError("give a WAV file, --text turns, or both")
    as_json = as_json or client.as_json
    text_only = wav is None and out is None
    config = session_config(
        caller_id=caller_id,
        session=session,
        voice=voice,
        adapter=adapter,
        tenant=tenant,
        text_only=text_only,
        telephony=telephony,
    )
    samples = load_wav(str(wav)) if wav is not None else None
    target = client.target("orchestrator")

    async def go() -> CallRecord:
        async with dial(target, client.dial_options()) as channel:
            stub = orchestrator_service_pb2_grpc.OrchestratorServiceStub(channel)
            return await place_call(
                stub, config, caller_audio=samples, texts=texts, realtime=not fast, on_response=LiveView(as_json)
            )

    record = run(go(), target)
    if out is not None and record.bot_format is not None:
        write_wav(str(out), bytes(record.bot_audio), record.bot_format)
    if not as_json:
        click.echo()
        click.echo(latency_table(record))
        if out is not None:
            click.echo(f"\nbot audio written to {out}")
