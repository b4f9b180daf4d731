"""Timed: a test engine with no model, for load tests of the mesh.

Every generation waits ``timed_ttft_ms``, then streams a fixed output one delta every
``timed_token_ms``. When the request offers the tool named ``timed_tool`` and the last message
is the user's, the output is a call of that tool with ``timed_tool_arguments`` (so the
orchestrator's tool loop runs); otherwise, and after a tool result, it is ``timed_answer``, one
word per delta. Waits are ``asyncio.sleep``: the engine spends no CPU, so a load test measures
the mesh and not a model.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator

from llm_svc.config import LlmSettings
from llm_svc.engine import (
    Adapter,
    AdapterList,
    Finish,
    FinishReason,
    GenerateRequest,
    LoadResult,
    Output,
    Role,
    TextDelta,
    ToolCallDelta,
    ToolChoice,
)
from mesh.errors import AlreadyExists
from mesh.settings import SettingsError

MODEL = "timed"
# Characters of tool-call arguments per delta, roughly what a tokenizer gives.
ARGUMENT_CHARS_PER_DELTA = 16


class TimedEngine:
    """A fixed answer (or tool call) at a configured pace; see the module docstring."""

    name = "timed"

    def __init__(self, settings: LlmSettings) -> None:
        """Take the answer, tool call and pace from ``settings``.

        Raises:
            SettingsError: ``timed_tool_arguments`` is not a JSON object.
        """
        try:
            arguments = json.loads(settings.timed_tool_arguments)
        except ValueError:
            arguments = None
        if not isinstance(arguments, dict):
            raise SettingsError(
                f"VOICEBOT_LLM_TIMED_TOOL_ARGUMENTS={settings.timed_tool_arguments!r}: must be a JSON object"
            )
        self.answer = settings.timed_answer.split()
        self.tool = settings.timed_tool
        self.arguments = json.dumps(arguments)
        self.ttft_s = settings.timed_ttft_ms / 1000
        self.token_s = settings.timed_token_ms / 1000
        self.trouble = asyncio.Event()
        self._adapters: dict[str, Adapter] = {}
        self._calls = 0

    async def start(self) -> None:
        """Nothing to load."""

    async def check(self) -> None:
        """Always generates."""

    async def generate(self, request: GenerateRequest) -> AsyncGenerator[Output, None]:
        """Stream the tool call or the answer, then one ``Finish``; see the module docstring."""
        prompt_tokens = request.estimated_prompt_tokens()
        await asyncio.sleep(self.ttft_s)
        if self._calls_tool(request):
            self._calls += 1
            yield ToolCallDelta(index=0, id=f"timed{self._calls % 10_000:04d}", name=self.tool)
            pieces = [
                self.arguments[i : i + ARGUMENT_CHARS_PER_DELTA]
                for i in range(0, len(self.arguments), ARGUMENT_CHARS_PER_DELTA)
            ]
            for piece in pieces:
                await asyncio.sleep(self.token_s)
                yield ToolCallDelta(index=0, arguments_delta=piece)
            yield Finish(FinishReason.TOOL_CALLS, prompt_tokens, len(pieces) + 1, MODEL)
            return
        words = self.answer[: request.max_tokens]
        for number, word in enumerate(words):
            if number:
                await asyncio.sleep(self.token_s)
            yield TextDelta(word if number == 0 else " " + word)
        reason = FinishReason.LENGTH if len(words) < len(self.answer) else FinishReason.STOP
        yield Finish(reason, prompt_tokens, len(words), MODEL)

    def _calls_tool(self, request: GenerateRequest) -> bool:
        if not self.tool or request.tool_choice == ToolChoice.NONE or not request.messages:
            return False
        offered = any(tool.name == self.tool for tool in request.tools)
        return offered and request.messages[-1].role == Role.USER

    async def list_adapters(self) -> AdapterList:
        """The base model ``timed`` and the adapters 'loaded' (only remembered)."""
        return AdapterList(MODEL, tuple(self._adapters.values()))

    async def load_adapter(self, name: str, path: str) -> LoadResult:
        """Remember an adapter; idempotent for the same name and path.

        Raises:
            AlreadyExists: ``name`` is loaded from another path.
        """
        known = self._adapters.get(name)
        if known is not None:
            if known.path != path:
                raise AlreadyExists(f"adapter {name!r} is already loaded from {known.path}; unload it first")
            return LoadResult(known, already_loaded=True)
        adapter = self._adapters[name] = Adapter(name, path)
        return LoadResult(adapter, already_loaded=False)

    async def unload_adapter(self, name: str) -> bool:
        """Forget an adapter; returns whether it was loaded."""
        return self._adapters.pop(name, None) is not None

    async def close(self) -> None:
        """Nothing to release."""
