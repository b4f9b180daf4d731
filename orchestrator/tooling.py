"""The banking tools the model is offered, their runner, and the phrases worth pre-synthesising."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from orchestrator.config import OrchestratorSettings
from orchestrator.turn import ToolOutcome, ToolRunner, tool_definitions
from voicebot.v1 import llm_service_pb2

DEFAULT_SYSTEM_PROMPT = (
    "You are the voice assistant of a bank. Answer briefly, in plain spoken sentences, without lists or markdown."
)


@dataclass(frozen=True)
class Tools:
    """What the orchestrator offers the model and how it runs what the model calls."""

    runner: ToolRunner
    definitions: list[llm_service_pb2.ToolDefinition]
    system_prompt: str
    fixed_phrases: tuple[str, ...]


class NoTools:
    """A runner for when no tools are installed: every call is answered with an error the model can read."""

    async def run(self, name: str, arguments_json: str, session: Any) -> ToolOutcome:
        """Refuse the call."""
        return ToolOutcome(json.dumps({"error": f"tool {name} is not available"}), ok=False)


def load_tools(settings: OrchestratorSettings) -> Tools:
    """The banking tools when installed, else none."""
    return Tools(NoTools(), tool_definitions([]), DEFAULT_SYSTEM_PROMPT, ())
