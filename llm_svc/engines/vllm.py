"""The ``vllm`` engine: a vLLM server (or any OpenAI-compatible one) through its HTTP API.

Generation is ``POST /v1/chat/completions`` with ``stream: true``: Server-Sent Events whose
``data:`` lines are ``chat.completion.chunk`` objects, ending with ``data: [DONE]``. Text comes
in ``choices[0].delta.content``; tool calls in ``choices[0].delta.tool_calls[]`` as
``{index, id, type, function: {name, arguments}}`` where the first piece of a call carries the
id (nine alphanumeric characters with vLLM's Mistral parser) and the name, and later pieces
append to the arguments. With ``stream_options.include_usage`` the last chunk before
``[DONE]`` has empty ``choices`` and the token ``usage``. LoRA adapters are the ``model`` of a
request; ``/v1/models`` lists them (``parent`` set, ``root`` their path), and
``/v1/load_lora_adapter`` / ``/v1/unload_lora_adapter`` exist only when vLLM runs with
``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`` (FastAPI answers 404 otherwise).

Closing a generation's iterator closes its HTTP response; an unfinished response cannot go back
to the pool, so the connection closes and the server aborts the request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any, NoReturn

import httpx

from llm_svc.config import LlmSettings
from llm_svc.engine import (
    Adapter,
    AdapterList,
    Finish,
    FinishReason,
    GenerateRequest,
    LoadResult,
    Message,
    Output,
    Role,
    Sampling,
    TextDelta,
    ToolCallDelta,
)
from mesh.errors import (
    AlreadyExists,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
)

log = logging.getLogger("llm_svc.vllm")

RUNTIME_LORA_FIX = (
    "start vLLM with VLLM_ALLOW_RUNTIME_LORA_UPDATING=True in its environment and the --enable-lora flag "
    "(and --max-lora-rank at least the adapter's rank)"
)
_FINISH = {"stop": FinishReason.STOP, "length": FinishReason.LENGTH, "tool_calls": FinishReason.TOOL_CALLS}
_WARM_UP = GenerateRequest(
    request_id="warm-up",
    messages=(Message(role=Role.USER, content="Say OK."),),
    sampling=Sampling(temperature=0.0),
    max_tokens=1,
)


class VllmEngine:
    """Streams chat completions from a vLLM server and manages its LoRA adapters."""

    name = "vllm"

    def __init__(self, settings: LlmSettings) -> None:
        """Prepare a pooled HTTP client for ``settings.vllm_base_url``; nothing connects yet."""
        self.settings = settings
        base = settings.vllm_base_url.rstrip("/")
        self.base_url = base.removesuffix("/v1")
        self.model = settings.model
        # Set when a request could not reach the server, so the health monitor re-checks at once.
        self.trouble = asyncio.Event()
        headers = {"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}
        limits = httpx.Limits(
            max_connections=settings.max_connections, max_keepalive_connections=settings.max_connections
        )
        # httpcore retries only failed connects (ConnectError/ConnectTimeout): a request that reached
        # the server is never sent twice.
        transport = httpx.AsyncHTTPTransport(retries=settings.connect_retries, limits=limits)
        timeout = httpx.Timeout(settings.request_timeout_s, connect=settings.connect_timeout_s)
        self.client = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=timeout, transport=transport)

    async def start(self) -> None:
        """Check liveness, find the model name and generate one token."""
        await self._probe(self.settings.request_timeout_s)

    async def check(self) -> None:
        """Health re-check: liveness and a real one-token generation within ``health_timeout_s``."""
        await self._probe(self.settings.health_timeout_s)

    async def _probe(self, timeout_s: float) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                if self.settings.health_path:
                    response = await self._send("GET", self.settings.health_path)
                    if response.status_code != 200:
                        raise Unavailable(
                            f"model server {self.base_url}{self.settings.health_path} answered {response.status_code}"
                        )
                if not self.model:
                    self.model = (await self.list_adapters()).base_model
                async with aclosing(self.generate(_WARM_UP)) as stream:
                    async for _ in stream:
                        pass
        except TimeoutError:
            raise Unavailable(f"model server {self.base_url} generated no token within {timeout_s:g} s") from None

    async def generate(self, request: GenerateRequest) -> AsyncGenerator[Output, None]:
        """Stream one chat completion; see the module docstring for the wire format."""
        deadline = time.monotonic() + self.settings.request_timeout_s
        body = self._body(request)
        started = False
        finish: FinishReason | None = None
        usage: dict[str, Any] | None = None
        chunks = 0
        seen_calls: set[int] = set()
        done = False
        try:
            async with self.client.stream("POST", "/v1/chat/completions", json=body) as response:
                if response.status_code != 200:
                    await response.aread()
                    self._raise_for_generate(response, request)
                async for data in _sse_data(response):
                    if data == "[DONE]" or done:
                        # Read on to the end of the body, so the connection goes back to the pool.
                        done = True
                        continue
                    chunk = _json(data)
                    if "error" in chunk or chunk.get("object") == "error":
                        self._raise_stream_error(chunk)
                    if isinstance(chunk.get("usage"), dict):
                        usage = chunk["usage"]
                    for choice in chunk.get("choices") or ():
                        delta = choice.get("delta") or {}
                        content = delta.get("content")
                        if content:
                            started = True
                            chunks += 1
                            yield TextDelta(content)
                        for call in delta.get("tool_calls") or ():
                            out = _tool_call_delta(call, seen_calls)
                            if out is not None:
                                started = True
                                chunks += 1
                                yield out
                        if choice.get("finish_reason"):
                            finish = _FINISH.get(choice["finish_reason"], FinishReason.UNSPECIFIED)
                    if time.monotonic() > deadline:
                        raise DeadlineExceeded(
                            f"generation ran past request_timeout_s={self.settings.request_timeout_s:g} s"
                        )
        except httpx.TransportError as exc:
            self._transport_failed(exc, "/v1/chat/completions")
        if not done and finish is None:
            self.trouble.set()
            what = "after the answer started" if started else "before answering"
            raise Unavailable(f"model server {self.base_url} closed the stream {what}")
        prompt_tokens = int(usage.get("prompt_tokens", 0)) if usage else request.estimated_prompt_tokens()
        completion_tokens = int(usage.get("completion_tokens", 0)) if usage else chunks
        yield Finish(
            reason=finish or FinishReason.UNSPECIFIED,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            model=self._model_label(request.adapter),
        )

    def _body(self, request: GenerateRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.adapter or self.model,
            "messages": [_message(m) for m in request.messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": request.max_tokens,
            "temperature": request.sampling.temperature,
            "top_p": request.sampling.top_p,
        }
        if request.sampling.seed is not None:
            body["seed"] = request.sampling.seed
        if request.stop:
            body["stop"] = list(request.stop)
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {"name": t.name, "description": t.description, "parameters": dict(t.parameters)},
                }
                for t in request.tools
            ]
            body["tool_choice"] = request.tool_choice.value
        return body

    def _model_label(self, adapter: str) -> str:
        return f"{self.model}+{adapter}" if adapter else self.model

    async def list_adapters(self) -> AdapterList:
        """``GET /v1/models``: the base model (no ``parent``) and the adapters (``parent`` set)."""
        response = await self._send("GET", "/v1/models")
        if response.status_code != 200:
            self._raise_common(response, "listing models")
        cards = _json(response.text).get("data") or []
        bases = [c for c in cards if not c.get("parent")]
        adapters = tuple(
            Adapter(name=str(c.get("id", "")), path=str(c.get("root") or "")) for c in cards if c.get("parent")
        )
        base = self.model or (str(bases[0].get("id", "")) if bases else "")
        if not base:
            raise Unavailable(f"model server {self.base_url}/v1/models lists no model")
        return AdapterList(base_model=base, adapters=adapters)

    async def load_adapter(self, name: str, path: str) -> LoadResult:
        """``POST /v1/load_lora_adapter``, idempotent: a name already loaded from ``path`` is left alone."""
        existing = await self._find_adapter(name)
        if existing is not None:
            return self._same_path(existing, path)
        response = await self._send("POST", "/v1/load_lora_adapter", json={"lora_name": name, "lora_path": path})
        if response.status_code == 200:
            log.info("adapter loaded", extra={"adapter": name, "path": path})
            return LoadResult(adapter=Adapter(name=name, path=path), already_loaded=False)
        message = _error_message(response)
        if _route_missing(response):
            raise FailedPrecondition(f"the model server does not allow runtime LoRA loading: {RUNTIME_LORA_FIX}")
        if response.status_code == 400 and "already been loaded" in message:
            # Another LoadAdapter won the race; answer as if it had been loaded before.
            existing = await self._find_adapter(name)
            if existing is not None:
                return self._same_path(existing, path)
        if "lora" in message.lower() and "enable" in message.lower():
            raise FailedPrecondition(f"the model server has LoRA off ({message}): {RUNTIME_LORA_FIX}")
        if response.status_code in (400, 404):
            raise InvalidArgument(f"model server cannot load adapter {name!r} from {path!r}: {message}")
        self._raise_common(response, f"loading adapter {name!r}")

    @staticmethod
    def _same_path(existing: Adapter, path: str) -> LoadResult:
        if existing.path and existing.path != path:
            raise AlreadyExists(
                f"adapter {existing.name!r} is loaded from {existing.path!r}, not {path!r}; unload it first"
            )
        return LoadResult(adapter=existing, already_loaded=True)

    async def _find_adapter(self, name: str) -> Adapter | None:
        for adapter in (await self.list_adapters()).adapters:
            if adapter.name == name:
                return adapter
        return None

    async def unload_adapter(self, name: str) -> bool:
        """``POST /v1/unload_lora_adapter``; an adapter that is not loaded answers False."""
        response = await self._send("POST", "/v1/unload_lora_adapter", json={"lora_name": name})
        if response.status_code == 200:
            log.info("adapter unloaded", extra={"adapter": name})
            return True
        if _route_missing(response):
            raise FailedPrecondition(f"the model server does not allow runtime LoRA unloading: {RUNTIME_LORA_FIX}")
        if response.status_code == 404:
            return False
        self._raise_common(response, f"unloading adapter {name!r}")

    async def close(self) -> None:
        """Close the pooled connections."""
        await self.client.aclose()

    async def _send(self, method: str, path: str, json: dict[str, Any] | None = None) -> httpx.Response:
        try:
            return await self.client.request(method, path, json=json)
        except httpx.TransportError as exc:
            self._transport_failed(exc, path)

    def _transport_failed(self, exc: httpx.TransportError, path: str) -> NoReturn:
        """Map an HTTP transport failure: unreachable or broken is UNAVAILABLE, silent past the timeout a deadline."""
        where = f"{self.base_url}{path}"
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            self.trouble.set()
            raise Unavailable(
                f"model server {self.base_url} unreachable after {self.settings.connect_retries} retries: "
                f"{exc or type(exc).__name__}"
            ) from None
        if isinstance(exc, httpx.TimeoutException):
            raise DeadlineExceeded(
                f"model server {where} sent nothing for {self.settings.request_timeout_s:g} s (request_timeout_s)"
            ) from None
        self.trouble.set()
        raise Unavailable(f"model server {where} failed: {exc!r}") from None

    def _raise_for_generate(self, response: httpx.Response, request: GenerateRequest) -> NoReturn:
        message = _error_message(response)
        status = response.status_code
        if status == 404 and request.adapter and not _route_missing(response):
            raise NotFound(f"adapter {request.adapter!r} is not loaded on the model server (see ListAdapters)")
        if status == 404 and not _route_missing(response):
            raise FailedPrecondition(
                f"the model server does not serve model {self.model!r} ({message}); set VOICEBOT_LLM_MODEL"
            )
        if status == 400 and "context" in message.lower():
            raise InvalidArgument(f"prompt over the model's context limit: {message}")
        if status == 400:
            raise InvalidArgument(f"model server rejected the request: {message}")
        self._raise_common(response, "generating")

    def _raise_common(self, response: httpx.Response, doing: str) -> NoReturn:
        status = response.status_code
        message = _error_message(response)
        if status in (401, 403):
            raise FailedPrecondition(
                f"model server refused the API key while {doing} ({status}); check VOICEBOT_LLM_VLLM_API_KEY(_FILE)"
            )
        if status == 404:
            raise FailedPrecondition(f"model server has no such endpoint while {doing}: {message}")
        self.trouble.set()
        raise Unavailable(f"model server failed while {doing}: HTTP {status}: {message}")

    def _raise_stream_error(self, chunk: dict[str, Any]) -> NoReturn:
        error = _error_fields(chunk)
        message = str(error.get("message", "unknown error"))
        code = error.get("code")
        if code == 400 or error.get("type") == "BadRequestError":
            raise InvalidArgument(f"model server rejected the request: {message}")
        self.trouble.set()
        raise Unavailable(f"model server failed during generation: {message}")


def _tool_call_delta(call: dict[str, Any], seen: set[int]) -> ToolCallDelta | None:
    """One ``delta.tool_calls[]`` item as a contract delta: id and name on the first piece of a call only."""
    index = int(call.get("index", 0))
    function = call.get("function") or {}
    arguments = function.get("arguments") or ""
    if index not in seen:
        seen.add(index)
        return ToolCallDelta(
            index=index, id=str(call.get("id") or ""), name=str(function.get("name") or ""), arguments_delta=arguments
        )
    return ToolCallDelta(index=index, arguments_delta=arguments) if arguments else None


def _message(m: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role.value, "content": m.content}
    if m.tool_calls:
        out["content"] = m.content or None
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments_json}}
            for c in m.tool_calls
        ]
    if m.role is Role.TOOL:
        out["tool_call_id"] = m.tool_call_id
        if m.name:
            out["name"] = m.name
    return out


async def _sse_data(response: httpx.Response) -> AsyncGenerator[str, None]:
    """The ``data`` of each Server-Sent Event (multi-line data joined by newlines; comments skipped)."""
    lines: list[str] = []
    async for line in response.aiter_lines():
        if not line:
            if lines:
                yield "\n".join(lines)
                lines = []
            continue
        if line.startswith("data:"):
            lines.append(line[5:].removeprefix(" "))
    if lines:
        yield "\n".join(lines)


def _json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise Unavailable(f"model server sent invalid JSON: {text[:200]!r}") from None
    if not isinstance(value, dict):
        raise Unavailable(f"model server sent {type(value).__name__}, not an object: {text[:200]!r}")
    return value


def _error_body(response: httpx.Response) -> dict[str, Any]:
    try:
        value = json.loads(response.text)
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _error_fields(body: dict[str, Any]) -> dict[str, Any]:
    nested = body.get("error")
    return nested if isinstance(nested, dict) else body


def _error_message(response: httpx.Response) -> str:
    """The message of an OpenAI-style error: ``{"error": {...}}`` (current vLLM) or flat (older)."""
    body = _error_body(response)
    error = _error_fields(body)
    message = error.get("message") or body.get("detail") or response.text[:300] or response.reason_phrase
    return str(message)


def _route_missing(response: httpx.Response) -> bool:
    """FastAPI's own 404 (``{"detail": "Not Found"}``): the endpoint is not mounted at all."""
    return response.status_code == 404 and _error_body(response).get("detail") == "Not Found"
