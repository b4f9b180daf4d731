"""Commands that run services: ``serve``, ``up`` and ``probe``."""

from __future__ import annotations

import importlib
import signal
import sys
import time

import click

from voicebot.catalog import BY_NAME, SERVICES


@click.command()
@click.argument("service", type=click.Choice([s.name for s in SERVICES]))
def serve(service: str) -> None:
    """Serve one SERVICE in this process (same as ``python -m <package>``)."""
    importlib.import_module(f"{BY_NAME[service].package}.__main__").main()


@click.command()
@click.option("--check", is_flag=True, help="Exit once every service is SERVING (a smoke test).")
@click.option("--timeout", "timeout_s", default=180.0, show_default=True, help="Seconds to wait for SERVING.")
def up(check: bool, timeout_s: float) -> None:
    """Start all six services locally on their default ports, with the embedded engines."""
    from orchestrator.launcher import LocalMesh

    mesh = LocalMesh()
    click.echo("starting " + ", ".join(s.name for s in SERVICES) + " ...")
    try:
        mesh.start()
        mesh.wait_serving(timeout_s)
    except RuntimeError as exc:
        mesh.stop()
        raise click.ClickException(str(exc)) from None
    for child in mesh.children:
        click.echo(f"  {child.info.name:<13} {child.target:<17} SERVING   log: {child.log_path}")
    if check:
        mesh.stop()
        click.echo("all services SERVING; stopped (--check)")
        return
    click.echo("Ctrl-C stops the mesh.")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while all(c.process.poll() is None for c in mesh.children):
            time.sleep(0.5)
        dead = [c for c in mesh.children if c.process.poll() is not None]
        for child in dead:
            click.echo(f"{child.info.name} exited with code {child.process.returncode}:\n{mesh.tail(child)}", err=True)
        raise SystemExit(1)
    except KeyboardInterrupt:
        click.echo("stopping ...")
    finally:
        mesh.stop()


@click.command()
@click.argument("target")
@click.option("--service", default="", help="Health entry to check; empty checks the whole server.")
@click.option("--timeout", "timeout_s", default=3.0, show_default=True, help="Seconds to wait for the answer.")
@click.option("--tls-ca", "ca_file", envvar="VOICEBOT_TLS_CA_FILE", default="", help="CA bundle: probe over TLS.")
@click.option("--tls-cert", "cert_file", envvar="VOICEBOT_TLS_CERT_FILE", default="", help="Client certificate (mTLS).")
@click.option("--tls-key", "key_file", envvar="VOICEBOT_TLS_KEY_FILE", default="", help="Client key (mTLS).")
def probe(target: str, service: str, timeout_s: float, ca_file: str, cert_file: str, key_file: str) -> None:
    """Exit 0 when TARGET (host:port) reports SERVING on grpc.health.v1, else 1 (for HEALTHCHECK).

    With a CA (flag or VOICEBOT_TLS_CA_FILE, as a service's own environment has it) the probe uses
    TLS, presenting the certificate and key when given, as a mesh peer does under mutual TLS.
    """
    from grpc_health.v1 import health_pb2

    from mesh.tls import channel_credentials
    from orchestrator.launcher import health_status

    credentials = channel_credentials(ca_file, cert_file, key_file) if ca_file else None
    status = health_status(target, service, timeout_s, credentials)
    if status == health_pb2.HealthCheckResponse.SERVING:
        click.echo("SERVING")
        return
    name = "UNREACHABLE" if status < 0 else health_pb2.HealthCheckResponse.ServingStatus.Name(status)
    click.echo(name, err=True)
    raise SystemExit(1)
