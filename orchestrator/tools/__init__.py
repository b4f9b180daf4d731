"""The banking tools the orchestrator offers the model: canonical definitions (``definitions``)."""

from orchestrator.tools.definitions import SYSTEM_PROMPT, TOOL_NAMES, TOOLS

__all__ = ["SYSTEM_PROMPT", "TOOLS", "TOOL_NAMES"]
