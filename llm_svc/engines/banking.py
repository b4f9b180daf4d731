"""The ``banking`` engine: a deterministic banking dialogue that speaks the LLM contract.

No model: ``llm_svc.banking.dialog`` decides from the conversation what to say or which of the
offered tools to call, and this module streams the decision as an LLM would: answer text in
token-sized deltas, or one tool call (nine-character alphanumeric id, like Mistral's) whose
arguments arrive in pieces, then the finish reason and usage. The same request always gets the
same stream.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import string
from collections.abc import AsyncGenerator
from dataclasses import replace

from llm_svc.banking.dialog import Call, Dialog
from llm_svc.config import LlmSettings
from llm_svc.engine import (
    AdapterList,
    Finish,
    FinishReason,
    GenerateRequest,
    LoadResult,
    Output,
    TextDelta,
    ToolCallDelta,
    ToolChoice,
)
from mesh.errors import FailedPrecondition, NotFound

MODEL = "banking"
# Callers speak in short turns; a longer message is read only this far.
MAX_UNDERSTOOD_CHARS = 2000
_TOKEN = re.compile(r" ?[A-Za-z]+| ?\d| ?[^\sA-Za-z\d]|\s+")
_ALPHABET = string.ascii_letters + string.digits


def token_pieces(text: str) -> list[str]:
    """``text`` cut roughly as a BPE tokenizer would: words with their leading space, digits one by one."""
    return _TOKEN.findall(text)


def call_id(request: GenerateRequest) -> str:
    """A nine-character alphanumeric tool-call id, derived from the conversation (so it is reproducible)."""
    digest = hashlib.sha256()
    for message in request.messages:
        digest.update(f"{message.role.value}\0{message.content}\0{message.tool_call_id}\0".encode())
        for call in message.tool_calls:
            digest.update(f"{call.id}\0{call.name}\0{call.arguments_json}\0".encode())
    number = int.from_bytes(digest.digest()[:12], "big")
    chars = []
    for _ in range(9):
        number, rest = divmod(number, len(_ALPHABET))
        chars.append(_ALPHABET[rest])
    return "".join(chars)


class BankingEngine:
    """Answers banking calls by rules; adapters are not supported."""

    name = "banking"

    def __init__(self, settings: LlmSettings) -> None:
        """Nothing to load; ``settings`` are kept for symmetry with the other engines."""
        self.settings = settings
        self.trouble = asyncio.Event()

    async def start(self) -> None:
        """Nothing to warm up: the rules are compiled at import."""

    async def check(self) -> None:
        """Always healthy."""

    async def generate(self, request: GenerateRequest) -> AsyncGenerator[Output, None]:
        """Decide the next step of the conversation and stream it."""
        if request.adapter:
            raise NotFound(f"adapter {request.adapter!r} is not loaded: the banking engine serves no adapters")
        offered = {} if request.tool_choice is ToolChoice.NONE else {t.name: t for t in request.tools}
        messages = tuple(replace(m, content=m.content[:MAX_UNDERSTOOD_CHARS]) for m in request.messages)
        action = Dialog(offered).respond(messages)
        budget = request.max_tokens
        if isinstance(action, Call):
            pieces = token_pieces(json.dumps(action.arguments))
            yield ToolCallDelta(index=0, id=call_id(request), name=action.name)
            sent = 1
            for piece in pieces[: budget - 1]:
                await asyncio.sleep(0)
                yield ToolCallDelta(index=0, arguments_delta=piece)
                sent += 1
            reason = FinishReason.TOOL_CALLS if len(pieces) + 1 <= budget else FinishReason.LENGTH
        else:
            text = action.text
            for stop in request.stop:
                at = text.find(stop)
                if at >= 0:
                    text = text[:at]
            pieces = token_pieces(text)
            sent = 0
            for piece in pieces[:budget]:
                yield TextDelta(piece)
                sent += 1
                await asyncio.sleep(0)
            reason = FinishReason.STOP if len(pieces) <= budget else FinishReason.LENGTH
        yield Finish(
            reason=reason, prompt_tokens=request.estimated_prompt_tokens(), completion_tokens=sent, model=MODEL
        )

    async def list_adapters(self) -> AdapterList:
        """No adapters."""
        return AdapterList(base_model=MODEL, adapters=())

    async def load_adapter(self, name: str, path: str) -> LoadResult:
        """Always refused: the banking engine has no model to adapt."""
        raise FailedPrecondition(
            "the banking engine has no model and cannot load LoRA adapters: run llm_svc with "
            "VOICEBOT_LLM_ENGINE=vllm against a vLLM started with --enable-lora and "
            "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True"
        )

    async def unload_adapter(self, name: str) -> bool:
        """Nothing is ever loaded."""
        return False

    async def close(self) -> None:
        """Nothing to release."""
