"""``voicebot adapter-control``: list, load and unload the language model's LoRA adapters."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import click

from orchestrator.cli.client import unary
from orchestrator.cli.options import ClientConfig, pass_config
from orchestrator.cli.output import echo_reply, json_option, table
from voicebot.v1 import llm_service_pb2 as pb
from voicebot.v1 import llm_service_pb2_grpc

ADAPTER_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MAX_PATH_CHARS = 1024


def _name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not ADAPTER_NAME.fullmatch(value):
        raise click.BadParameter(f"{value!r} must be 1-64 letters, digits, '_', '-' or '.'")
    return value


def _path(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not value or len(value) > MAX_PATH_CHARS:
        raise click.BadParameter(f"needs 1-{MAX_PATH_CHARS} characters, got {len(value)}")
    return value


def _unary(config: ClientConfig, rpc: Callable[[llm_service_pb2_grpc.LlmServiceStub], Awaitable[Any]]) -> Any:
    return unary(config, "llm", llm_service_pb2_grpc.LlmServiceStub, rpc)


@click.group("adapter-control")
def adapter_control() -> None:
    """List, load and unload LoRA adapters of the language model (llm_svc).

    load and unload are admin RPCs: with auth on they need the admin token. The embedded banking
    engine has no model and refuses to load adapters; the message says what to run instead.
    """


@adapter_control.command("list")
@json_option
@pass_config
def list_adapters(config: ClientConfig, as_json: bool) -> None:
    """The base model and the adapters loaded on it."""
    reply: pb.ListAdaptersResponse = _unary(config, lambda stub: stub.ListAdapters(pb.ListAdaptersRequest()))
    echo_reply(config, as_json, reply, lambda: _adapters_table(reply))


def _adapters_table(reply: pb.ListAdaptersResponse) -> str:
    listed = table(("adapter", "path"), [(a.name, a.path) for a in reply.adapters])
    return f"base model: {reply.base_model or '-'}\n" + (listed if reply.adapters else "no adapters loaded")


@adapter_control.command()
@click.argument("name", callback=_name)
@click.argument("path", callback=_path)
@json_option
@pass_config
def load(config: ClientConfig, name: str, path: str, as_json: bool) -> None:
    """Load the LoRA adapter in directory PATH (on the model server) as NAME (admin)."""
    reply: pb.LoadAdapterResponse = _unary(
        config, lambda stub: stub.LoadAdapter(pb.LoadAdapterRequest(name=name, path=path))
    )
    echo_reply(config, as_json, reply, lambda: _loaded(reply))


def _loaded(reply: pb.LoadAdapterResponse) -> str:
    adapter = reply.adapter
    if reply.already_loaded:
        return f"{adapter.name} was already loaded from {adapter.path}"
    return f"loaded {adapter.name} from {adapter.path}"


@adapter_control.command()
@click.argument("name", callback=_name)
@json_option
@pass_config
def unload(config: ClientConfig, name: str, as_json: bool) -> None:
    """Unload the adapter NAME (admin); unloading one that is not loaded changes nothing."""
    reply: pb.UnloadAdapterResponse = _unary(
        config, lambda stub: stub.UnloadAdapter(pb.UnloadAdapterRequest(name=name))
    )
    echo_reply(
        config,
        as_json,
        reply,
        lambda: f"unloaded {name}" if reply.was_loaded else f"{name} was not loaded; nothing changed",
    )
