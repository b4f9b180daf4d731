"""How client commands print: aligned text tables, protobuf messages as JSON, the ``--json`` flag."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click
from google.protobuf import json_format
from google.protobuf.message import Message

from orchestrator.cli.options import ClientConfig

F = TypeVar("F", bound=Callable[..., Any])


def json_option(command: F) -> F:
    """Add the command's own ``--json`` flag (OR'ed with the group's ``--json``)."""
    option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
    return option(command)


def wants_json(config: ClientConfig, as_json: bool) -> bool:
    """True when either the command's or the group's ``--json`` was given."""
    return as_json or config.as_json


def message_dict(message: Message) -> dict[str, Any]:
    """A message as a JSON-ready dict: proto field names, zero values included, enums by name."""
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def echo_json(value: Message | dict[str, Any] | list[Any]) -> None:
    """Print ``value`` as one line of JSON."""
    data = message_dict(value) if isinstance(value, Message) else value
    click.echo(json.dumps(data, ensure_ascii=False))


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, right: frozenset[int] = frozenset()) -> str:
    """Rows as columns padded to their widest cell; column indexes in ``right`` are right-aligned (numbers)."""
    cells = [list(headers), *([str(cell) for cell in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        padded = [cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def echo_reply(config: ClientConfig, as_json: bool, reply: Message, text: Callable[[], str]) -> None:
    """Print ``reply`` as JSON when either ``--json`` was given, else the text ``text()`` makes of it."""
    if wants_json(config, as_json):
        echo_json(reply)
    else:
        click.echo(text())
