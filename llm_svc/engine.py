"""The engine protocol of llm_svc and the domain types it speaks.

An engine turns one chat request into a stream of outputs: text deltas and tool-call deltas
in the order the model produced them, then exactly one ``Finish``. The servicer validates
requests before they reach an engine and adds the timings; engines raise ``mesh.errors``.
"""

from __future__ import annotations

import asyncio
import enum
import json
import math
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

# Characters per token of English chat text for Mistral's tokenizer, a little generous so the
# estimate errs low: the model server has the last word on prompts near the limit.
CHARS_PER_TOKEN = 4
# Role markers and separators the chat template adds around each message.
TOKENS_PER_MESSAGE = 4


class Role(enum.Enum):
    """Who wrote a chat message (OpenAI role names)."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class ToolChoice(enum.Enum):
    """Whether the model may, must or must not call tools (OpenAI ``tool_choice`` values)."""

    AUTO = "auto"
    NONE = "none"
    REQUIRED = "required"


class FinishReason(enum.Enum):
    """Why a generation stopped."""

    UNSPECIFIED = "unspecified"
    STOP = "stop"
    LENGTH = "length"
    TOOL_CALLS = "tool_calls"


@dataclass(frozen=True)
class ToolCall:
    """One complete tool call of an assistant message; ``arguments_json`` is a JSON object text."""

    id: str
    name: str
    arguments_json: str


@dataclass(frozen=True)
class Message:
    """One chat message. ``tool_calls`` only on assistant messages, ``tool_call_id`` only on tool ones."""

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str = ""
    name: str = ""


@dataclass(frozen=True)
class Tool:
    """A tool offered to the model; ``parameters`` is its JSON Schema (an object schema)."""

    name: str
    description: str
    parameters: Mapping[str, Any] = field(hash=False)


@dataclass(frozen=True)
class Sampling:
    """Token sampling: ``temperature`` 0-2 (0 greedy), ``top_p`` in (0, 1], optional ``seed``."""

    temperature: float = 0.2
    top_p: float = 1.0
    seed: int | None = None


@dataclass(frozen=True)
class GenerateRequest:
    """One validated chat completion request. ``adapter`` empty means the base model."""

    request_id: str
    messages: tuple[Message, ...]
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice = ToolChoice.AUTO
    sampling: Sampling = Sampling()
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    adapter: str = ""

    def estimated_prompt_tokens(self) -> int:
        """Prompt size in tokens, estimated from characters (messages, tool calls and tool schemas)."""
        chars = 0
        for message in self.messages:
            chars += len(message.content)
            for call in message.tool_calls:
                chars += len(call.name) + len(call.arguments_json) + 9
        for tool in self.tools:
            chars += len(tool.name) + len(tool.description) + len(json.dumps(dict(tool.parameters)))
        return math.ceil(chars / CHARS_PER_TOKEN) + TOKENS_PER_MESSAGE * len(self.messages)


@dataclass(frozen=True)
class TextDelta:
    """The next piece of answer text (one or a few tokens)."""

    text: str


@dataclass(frozen=True)
class ToolCallDelta:
    """A piece of tool call ``index``: the first carries ``id`` and ``name``, later ones append arguments."""

    index: int
    id: str = ""
    name: str = ""
    arguments_delta: str = ""


@dataclass(frozen=True)
class Finish:
    """The last output of a generation: why it stopped, token counts, and the model that answered."""

    reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    model: str


Output = TextDelta | ToolCallDelta | Finish


@dataclass(frozen=True)
class Adapter:
    """A LoRA adapter: its name and the directory it was loaded from, as the model server sees it."""

    name: str
    path: str


@dataclass(frozen=True)
class AdapterList:
    """The base model served and the adapters loaded on it now."""

    base_model: str
    adapters: tuple[Adapter, ...]


@dataclass(frozen=True)
class LoadResult:
    """What ``load_adapter`` did: ``already_loaded`` when nothing changed."""

    adapter: Adapter
    already_loaded: bool


class LlmEngine(Protocol):
    """What llm_svc's servicer needs from an engine."""

    name: str
    # Set by the engine when a request could not reach its model, so health is re-checked at once.
    trouble: asyncio.Event

    async def start(self) -> None:
        """Connect, load and warm up with a real generation.

        Raises:
            Unavailable: the model (server) cannot generate yet; the app retries.
        """
        ...

    async def check(self) -> None:
        """Re-check that the engine really generates (one token), for health.

        Raises:
            Unavailable: it does not.
        """
        ...

    def generate(self, request: GenerateRequest) -> AsyncGenerator[Output, None]:
        """Stream one completion: deltas, then one ``Finish``. Closing the iterator cancels it."""
        ...

    async def list_adapters(self) -> AdapterList:
        """The base model and the adapters loaded now."""
        ...

    async def load_adapter(self, name: str, path: str) -> LoadResult:
        """Load a LoRA adapter; idempotent for the same name and path.

        Raises:
            AlreadyExists: ``name`` is loaded from another path.
            FailedPrecondition: runtime LoRA updates are off; the message names the fix.
        """
        ...

    async def unload_adapter(self, name: str) -> bool:
        """Unload an adapter; returns whether it was loaded."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
