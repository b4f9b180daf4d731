"""The banking tools the model is offered, their runner, and the phrases worth pre-synthesising."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from orchestrator.banking import LOAN_DISCLOSURE
from orchestrator.banking.runner import BankingToolRunner
from orchestrator.banking.store import AccountStore
from orchestrator.config import OrchestratorSettings
from orchestrator.tools import SYSTEM_PROMPT, TOOLS
from orchestrator.turn import ToolOutcome, ToolRunner, tool_definitions
from voicebot.v1 import llm_service_pb2


@dataclass(frozen=True)
class Tools:
    """What the orchestrator offers the model, how it runs what the model calls, and its store."""

    runner: ToolRunner
    definitions: list[llm_service_pb2.ToolDefinition]
    system_prompt: str
    fixed_phrases: tuple[str, ...]
    store: AccountStore | None = None


class NoTools:
    """A runner for when no tools are installed: every call is answered with an error the model can read."""

    async def run(self, name: str, arguments_json: str, session: Any) -> ToolOutcome:
        """Refuse the call."""
        return ToolOutcome(json.dumps({"error": f"tool {name} is not available"}), ok=False)


def load_tools(settings: OrchestratorSettings) -> Tools:
    """The banking tools over the accounts store (opened by the app's start), and the system prompt."""
    store = AccountStore(settings.accounts_db)
    return Tools(
        BankingToolRunner(store),
        tool_definitions(list(TOOLS)),
        SYSTEM_PROMPT,
        (LOAN_DISCLOSURE,),
        store,
    )
