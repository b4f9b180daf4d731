"""LlmService: protobuf <-> domain types, validation, delegation to the engine."""

from __future__ import annotations

import functools
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from types import MappingProxyType
from typing import Any

import grpc
import jsonschema

from llm_svc.config import LlmSettings
from llm_svc.engine import (
    Finish,
    FinishReason,
    GenerateRequest,
    LlmEngine,
    Message,
    Role,
    Sampling,
    TextDelta,
    Tool,
    ToolCall,
    ToolChoice,
)
from mesh.errors import InvalidArgument
from voicebot.v1 import llm_service_pb2 as pb
from voicebot.v1 import llm_service_pb2_grpc

MAX_MESSAGES = 256
MAX_CONTENT_CHARS = 32768
MAX_TOOLS = 32
MAX_DESCRIPTION_CHARS = 1024
MAX_TOKENS = 4096
MAX_STOP = 4
MAX_STOP_CHARS = 32
MAX_REQUEST_ID_CHARS = 128
MAX_PATH_CHARS = 1024
TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
ADAPTER_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# A tool without arguments may leave its schema empty.
EMPTY_SCHEMA: Mapping[str, Any] = MappingProxyType({"type": "object", "properties": {}})

_ROLES = {
    pb.ROLE_SYSTEM: Role.SYSTEM,
    pb.ROLE_USER: Role.USER,
    pb.ROLE_ASSISTANT: Role.ASSISTANT,
    pb.ROLE_TOOL: Role.TOOL,
}
_TOOL_CHOICES = {
    pb.TOOL_CHOICE_UNSPECIFIED: ToolChoice.AUTO,
    pb.TOOL_CHOICE_AUTO: ToolChoice.AUTO,
    pb.TOOL_CHOICE_NONE: ToolChoice.NONE,
    pb.TOOL_CHOICE_REQUIRED: ToolChoice.REQUIRED,
}
_FINISH = {
    FinishReason.UNSPECIFIED: pb.FINISH_REASON_UNSPECIFIED,
    FinishReason.STOP: pb.FINISH_REASON_STOP,
    FinishReason.LENGTH: pb.FINISH_REASON_LENGTH,
    FinishReason.TOOL_CALLS: pb.FINISH_REASON_TOOL_CALLS,
}


class LlmServicer(llm_service_pb2_grpc.LlmServiceServicer):
    """Validates requests, runs them on the engine, and times the stream."""

    def __init__(self, engine: LlmEngine, settings: LlmSettings, clock: Callable[[], float] = time.perf_counter):
        """Serve ``engine`` with the limits of ``settings``."""
        self.engine = engine
        self.settings = settings
        self.clock = clock

    async def StreamingGenerate(
        self, request: pb.StreamingGenerateRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.StreamingGenerateResponse]:
        """Stream one completion; closing the RPC closes the engine's stream, and with it the generation."""
        arrived = self.clock()
        generate = to_generate_request(request, self.settings)
        first_ms = -1
        stream = self.engine.generate(generate)
        try:
            async for output in stream:
                if isinstance(output, Finish):
                    now = self.clock()
                    total_ms = round((now - arrived) * 1000)
                    yield pb.StreamingGenerateResponse(
                        end=pb.GenerationEnd(
                            finish_reason=_FINISH[output.reason],
                            usage=pb.Usage(
                                prompt_tokens=output.prompt_tokens, completion_tokens=output.completion_tokens
                            ),
                            time_to_first_token_ms=first_ms if first_ms >= 0 else total_ms,
                            total_ms=total_ms,
                            model=output.model,
                        ),
                        elapsed_ms=total_ms,
                    )
                    return
                elapsed_ms = round((self.clock() - arrived) * 1000)
                if first_ms < 0:
                    first_ms = elapsed_ms
                if isinstance(output, TextDelta):
                    yield pb.StreamingGenerateResponse(text_delta=output.text, elapsed_ms=elapsed_ms)
                else:
                    yield pb.StreamingGenerateResponse(
                        tool_call_delta=pb.ToolCallDelta(
                            index=output.index,
                            id=output.id,
                            name=output.name,
                            arguments_delta=output.arguments_delta,
                        ),
                        elapsed_ms=elapsed_ms,
                    )
        finally:
            await stream.aclose()

    async def ListAdapters(
        self, request: pb.ListAdaptersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListAdaptersResponse:
        """The base model and the adapters loaded on it."""
        listed = await self.engine.list_adapters()
        return pb.ListAdaptersResponse(
            base_model=listed.base_model,
            adapters=[pb.Adapter(name=a.name, path=a.path) for a in listed.adapters],
        )

    async def LoadAdapter(
        self, request: pb.LoadAdapterRequest, context: grpc.aio.ServicerContext
    ) -> pb.LoadAdapterResponse:
        """Load a LoRA adapter (admin RPC)."""
        _check_adapter_name(request.name, "name")
        if not request.path or len(request.path) > MAX_PATH_CHARS:
            raise InvalidArgument(f"path must be 1-{MAX_PATH_CHARS} characters (got {len(request.path)})")
        result = await self.engine.load_adapter(request.name, request.path)
        return pb.LoadAdapterResponse(
            adapter=pb.Adapter(name=result.adapter.name, path=result.adapter.path),
            already_loaded=result.already_loaded,
        )

    async def UnloadAdapter(
        self, request: pb.UnloadAdapterRequest, context: grpc.aio.ServicerContext
    ) -> pb.UnloadAdapterResponse:
        """Unload a LoRA adapter (admin RPC)."""
        _check_adapter_name(request.name, "name")
        return pb.UnloadAdapterResponse(was_loaded=await self.engine.unload_adapter(request.name))


def to_generate_request(request: pb.StreamingGenerateRequest, settings: LlmSettings) -> GenerateRequest:
    """Validate ``request`` against the contract and convert it.

    Raises:
        InvalidArgument: naming the field and the limit it breaks.
    """
    if len(request.request_id) > MAX_REQUEST_ID_CHARS:
        raise InvalidArgument(f"request_id is {len(request.request_id)} characters; at most {MAX_REQUEST_ID_CHARS}")
    if not request.messages:
        raise InvalidArgument("messages is empty: send 1-256 messages, oldest first")
    if len(request.messages) > MAX_MESSAGES:
        raise InvalidArgument(f"messages has {len(request.messages)} entries; at most {MAX_MESSAGES}")
    messages = tuple(_message(i, m) for i, m in enumerate(request.messages))
    if len(request.tools) > MAX_TOOLS:
        raise InvalidArgument(f"tools has {len(request.tools)} entries; at most {MAX_TOOLS}")
    tools = tuple(_tool(i, t) for i, t in enumerate(request.tools))
    names = [t.name for t in tools]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidArgument(f"tools: duplicate tool names {duplicates}")
    if request.tool_choice not in _TOOL_CHOICES:
        raise InvalidArgument(f"tool_choice: unknown value {request.tool_choice}")
    tool_choice = _TOOL_CHOICES[request.tool_choice]
    if tool_choice is ToolChoice.REQUIRED and not tools:
        raise InvalidArgument("tool_choice is TOOL_CHOICE_REQUIRED but no tools are offered")
    sampling = _sampling(request.sampling)
    max_tokens = request.max_tokens or settings.default_max_tokens
    if not 1 <= max_tokens <= MAX_TOKENS:
        raise InvalidArgument(f"max_tokens is {request.max_tokens}; allowed 1-{MAX_TOKENS} (0 means the default)")
    if len(request.stop) > MAX_STOP:
        raise InvalidArgument(f"stop has {len(request.stop)} strings; at most {MAX_STOP}")
    for i, stop in enumerate(request.stop):
        if not 1 <= len(stop) <= MAX_STOP_CHARS:
            raise InvalidArgument(f"stop[{i}] is {len(stop)} characters; allowed 1-{MAX_STOP_CHARS}")
    if request.adapter:
        _check_adapter_name(request.adapter, "adapter")
    generate = GenerateRequest(
        request_id=request.request_id or uuid.uuid4().hex[:16],
        messages=messages,
        tools=tools,
        tool_choice=tool_choice,
        sampling=sampling,
        max_tokens=max_tokens,
        stop=tuple(request.stop),
        adapter=request.adapter,
    )
    prompt = generate.estimated_prompt_tokens()
    if prompt + max_tokens > settings.context_tokens:
        raise InvalidArgument(
            f"prompt too long: about {prompt} prompt tokens + max_tokens {max_tokens} exceed the context limit of "
            f"{settings.context_tokens} tokens; shorten the conversation or lower max_tokens"
        )
    return generate


def _message(i: int, m: pb.ChatMessage) -> Message:
    where = f"messages[{i}]"
    if m.role == pb.ROLE_UNSPECIFIED:
        raise InvalidArgument(f"{where}.role is ROLE_UNSPECIFIED; set system, user, assistant or tool")
    if m.role not in _ROLES:
        raise InvalidArgument(f"{where}.role: unknown role {m.role}")
    role = _ROLES[m.role]
    if len(m.content) > MAX_CONTENT_CHARS:
        raise InvalidArgument(f"{where}.content is {len(m.content)} characters; at most {MAX_CONTENT_CHARS}")
    if m.tool_calls and role is not Role.ASSISTANT:
        raise InvalidArgument(f"{where}.tool_calls: only assistant messages carry tool calls")
    if not m.content and not (role is Role.ASSISTANT and m.tool_calls):
        raise InvalidArgument(f"{where}.content is empty (only an assistant message with tool_calls may be empty)")
    if role is Role.TOOL and not m.tool_call_id:
        raise InvalidArgument(f"{where}.tool_call_id is required for ROLE_TOOL: name the call this result answers")
    calls = []
    for j, call in enumerate(m.tool_calls):
        if not call.id or not TOOL_NAME.fullmatch(call.name):
            raise InvalidArgument(f"{where}.tool_calls[{j}] needs an id and a tool name")
        _json_object(call.arguments_json or "{}", f"{where}.tool_calls[{j}].arguments_json")
        calls.append(ToolCall(id=call.id, name=call.name, arguments_json=call.arguments_json or "{}"))
    return Message(role=role, content=m.content, tool_calls=tuple(calls), tool_call_id=m.tool_call_id, name=m.name)


def _tool(i: int, t: pb.ToolDefinition) -> Tool:
    where = f"tools[{i}]"
    if not TOOL_NAME.fullmatch(t.name):
        raise InvalidArgument(f"{where}.name {t.name!r} must be 1-64 letters, digits, '_' or '-'")
    if len(t.description) > MAX_DESCRIPTION_CHARS:
        raise InvalidArgument(f"{where}.description is {len(t.description)} characters; at most 1024")
    if not t.parameters_json_schema.strip():
        return Tool(name=t.name, description=t.description, parameters=EMPTY_SCHEMA)
    try:
        schema = _schema(t.parameters_json_schema)
    except InvalidArgument as exc:
        raise InvalidArgument(f"{where}.parameters_json_schema ({t.name}) {exc.message}") from None
    return Tool(name=t.name, description=t.description, parameters=schema)


@functools.lru_cache(maxsize=1024)
def _schema(text: str) -> Mapping[str, Any]:
    """Parse and check one tool schema; cached, since every turn of a call offers the same tools.

    Checking a schema against the JSON Schema meta-schema takes milliseconds, which would
    otherwise land on every request's time to first token. The result is shared: read-only.
    """
    schema = _json_object(text, "")
    if schema.get("type") != "object":
        raise InvalidArgument('must be a JSON Schema with "type": "object"')
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise InvalidArgument(f"is not a valid JSON Schema: {exc.message}") from None
    return MappingProxyType(schema)


def _json_object(text: str, field: str) -> dict[str, Any]:
    """Parse a JSON object text; errors start with ``field`` (when given)."""
    where = f"{field} " if field else ""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"{where}is not valid JSON: {exc.msg} at character {exc.pos}") from None
    if not isinstance(value, dict):
        raise InvalidArgument(f"{where}must be a JSON object")
    return value


def _sampling(s: pb.SamplingParams) -> Sampling:
    defaults = Sampling()
    temperature = s.temperature if s.HasField("temperature") else defaults.temperature
    top_p = s.top_p if s.HasField("top_p") else defaults.top_p
    if not 0.0 <= temperature <= 2.0:
        raise InvalidArgument(f"sampling.temperature is {temperature:g}; allowed 0.0-2.0")
    if not 0.0 < top_p <= 1.0:
        raise InvalidArgument(f"sampling.top_p is {top_p:g}; allowed (0.0, 1.0]")
    return Sampling(
        temperature=round(temperature, 6), top_p=round(top_p, 6), seed=s.seed if s.HasField("seed") else None
    )


def _check_adapter_name(name: str, field: str) -> None:
    if not ADAPTER_NAME.fullmatch(name):
        raise InvalidArgument(f"{field} {name!r} must be 1-64 letters, digits, '_', '-' or '.'")
