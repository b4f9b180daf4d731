"""A fake vLLM server for what cannot run here: vLLM needs a GPU.

It serves, over real HTTP/1.1 on 127.0.0.1 (a raw asyncio server, chunked streaming), the part of
vLLM's OpenAI-compatible API that llm_svc uses, in vLLM's wire format as its source defines it
(``entrypoints/openai/serving_chat.py``, ``serving_models.py``, ``serve/lora/api_router.py``):

- ``GET /health``: 200 with an empty body.
- ``GET /v1/models``: ``{"object": "list", "data": [model cards]}``; the base model has no
  ``parent``, each LoRA adapter has ``root`` (its path) and ``parent`` (the base model).
- ``POST /v1/chat/completions`` with ``stream: true``: ``data: {chunk}\\n\\n`` events ending with
  ``data: [DONE]\\n\\n``. The first chunk's delta is ``{"role": "assistant", "content": ""}``;
  text arrives in ``delta.content``; a tool call (Mistral parser) first as
  ``{"index", "id" (9 alphanumerics), "type": "function", "function": {"name"}}`` then as
  ``{"index", "function": {"arguments": piece}}``; ``finish_reason`` on the last choice chunk;
  with ``stream_options.include_usage`` one more chunk with ``"choices": []`` and ``usage``.
  Errors are ``{"error": {"message", "type", "param", "code"}}`` bodies: 404 NotFoundError for an
  unknown model ("The model `x` does not exist."), 400 BadRequestError past the context window.
- ``POST /v1/load_lora_adapter`` / ``/v1/unload_lora_adapter``: only with runtime LoRA updating
  on (FastAPI's ``{"detail": "Not Found"}`` 404 otherwise); 400 InvalidUserInput when the name is
  loaded already, 404 NotFoundError for an unknown adapter or path, 500 "LoRA is not enabled."
  without ``--enable-lora``; success is 200 with a plain-text message.

Knobs let a test break it the way real deployments break: ``generation_fails`` (``/health``
still 200 but generation answers 500, like a wedged GPU), ``health_status``, ``chunk_delay_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Reply = list[dict[str, Any]]  # delta dicts, streamed one chunk each


@dataclass
class FakeVllm:
    model: str = "mistral-7b-instruct"
    runtime_lora: bool = True
    lora_enabled: bool = True
    api_key: str = ""
    max_model_len: int = 32768
    generation_fails: bool = False
    health_status: int = 200
    chunk_delay_s: float = 0.0
    reply: Callable[[dict[str, Any]], Reply] | None = None
    adapters: dict[str, str] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    disconnects: int = 0
    connections: int = 0
    port: int = 0
    _server: asyncio.base_events.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def start(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
            self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r.get("_path") == "/v1/chat/completions"]

    # -- HTTP ----------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                keep = await self._route(method, path, headers, body, reader, writer)
                if not keep:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _respond(
        self, writer: asyncio.StreamWriter, status: int, body: bytes, content_type: str = "application/json"
    ) -> bool:
        reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 500: "Internal Server Error"}
        writer.write(
            f"HTTP/1.1 {status} {reason.get(status, 'Error')}\r\ncontent-type: {content_type}\r\n"
            f"content-length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        return True

    async def _json(self, writer: asyncio.StreamWriter, status: int, value: Any) -> bool:
        return await self._respond(writer, status, json.dumps(value).encode())

    async def _error(self, writer: asyncio.StreamWriter, status: int, message: str, kind: str) -> bool:
        error = {"message": message, "type": kind, "param": None, "code": status}
        return await self._json(writer, status, {"error": error})

    async def _route(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        raw: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        body = json.loads(raw) if raw else {}
        self.requests.append({"_path": path, "_auth": headers.get("authorization", ""), **body})
        if path == "/health" and method == "GET":
            return await self._respond(writer, self.health_status, b"", "text/plain")
        if self.api_key and headers.get("authorization") != f"Bearer {self.api_key}":
            return await self._error(writer, 401, "Unauthorized", "Unauthorized")
        if path == "/v1/models" and method == "GET":
            return await self._json(writer, 200, self._models())
        if path == "/v1/chat/completions" and method == "POST":
            return await self._chat(body, reader, writer)
        if path in ("/v1/load_lora_adapter", "/v1/unload_lora_adapter") and self.runtime_lora:
            if path == "/v1/load_lora_adapter":
                return await self._load(body, writer)
            return await self._unload(body, writer)
        return await self._json(writer, 404, {"detail": "Not Found"})

    def _models(self) -> dict[str, Any]:
        created = int(time.time())
        permission = [{"id": "modelperm-0", "object": "model_permission", "created": created}]
        cards = [
            {
                "id": self.model,
                "object": "model",
                "created": created,
                "owned_by": "vllm",
                "root": f"/models/{self.model}",
                "parent": None,
                "max_model_len": self.max_model_len,
                "permission": permission,
            }
        ]
        for name, path in self.adapters.items():
            cards.append(
                {
                    "id": name,
                    "object": "model",
                    "created": created,
                    "owned_by": "vllm",
                    "root": path,
                    "parent": self.model,
                    "max_model_len": None,
                    "permission": permission,
                }
            )
        return {"object": "list", "data": cards}

    async def _load(self, body: dict[str, Any], writer: asyncio.StreamWriter) -> bool:
        name, path = body.get("lora_name", ""), body.get("lora_path", "")
        if not name or not path:
            return await self._error(
                writer, 400, "Both 'lora_name' and 'lora_path' must be provided.", "InvalidUserInput"
            )
        if name in self.adapters:
            return await self._error(
                writer,
                400,
                f"The lora adapter '{name}' has already been loaded. If you want to load the adapter in place, "
                "set 'load_inplace' to True.",
                "InvalidUserInput",
            )
        if not self.lora_enabled:
            return await self._error(writer, 500, "LoRA is not enabled.", "InternalServerError")
        if path.startswith("/missing"):
            return await self._error(
                writer, 404, f"Loading lora {name} failed: No adapter found for {path}", "NotFoundError"
            )
        self.adapters[name] = path
        return await self._respond(
            writer, 200, f"Success: LoRA adapter '{name}' added successfully.".encode(), "text/plain"
        )

    async def _unload(self, body: dict[str, Any], writer: asyncio.StreamWriter) -> bool:
        name = body.get("lora_name", "")
        if name not in self.adapters:
            return await self._error(writer, 404, f"The lora adapter '{name}' cannot be found.", "NotFoundError")
        del self.adapters[name]
        return await self._respond(
            writer, 200, f"Success: LoRA adapter '{name}' removed successfully.".encode(), "text/plain"
        )

    # -- chat ----------------------------------------------------------------------------

    async def _chat(self, body: dict[str, Any], reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        model = body.get("model")
        if model != self.model and model not in self.adapters:
            return await self._error(writer, 404, f"The model `{model}` does not exist.", "NotFoundError")
        prompt_tokens = sum(len(str(m.get("content") or "")) for m in body.get("messages", [])) // 4 + 10
        if prompt_tokens + body.get("max_tokens", 0) > self.max_model_len:
            return await self._error(
                writer,
                400,
                f"This model's maximum context length is {self.max_model_len} tokens. However, you requested "
                f"{prompt_tokens + body.get('max_tokens', 0)} tokens ({prompt_tokens} in the messages, "
                f"{body.get('max_tokens', 0)} in the completion). Please reduce the length of the messages or "
                "completion.",
                "BadRequestError",
            )
        if self.generation_fails:
            return await self._error(
                writer, 500, "CUDA error: an illegal memory access was encountered", "InternalServerError"
            )
        deltas = (self.reply or default_reply)(body)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        closed = asyncio.ensure_future(reader.read(1))
        try:
            created = int(time.time())
            base = {"id": "chatcmpl-fake0001", "object": "chat.completion.chunk", "created": created, "model": model}
            events = [
                {
                    **base,
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"role": "assistant", "content": ""},
                            "logprobs": None,
                            "finish_reason": None,
                        }
                    ],
                }
            ]
            has_tools = any("tool_calls" in d for d in deltas)
            count = 0
            limit = int(body.get("max_tokens") or 1 << 30)
            finish = "tool_calls" if has_tools else "stop"
            for delta in deltas:
                if "_error" in delta:
                    # vLLM reports a failure after the stream started as one error event, then [DONE].
                    events.append({"error": delta["_error"]})
                    finish = ""
                    break
                if count >= limit:
                    finish = "length"
                    break
                events.append(
                    {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}]}
                )
                count += 1
            if finish:
                events.append(
                    {**base, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}]}
                )
            if finish and (body.get("stream_options") or {}).get("include_usage"):
                usage = {
                    "prompt_tokens": prompt_tokens,
                    "total_tokens": prompt_tokens + count,
                    "completion_tokens": count,
                }
                events.append({**base, "choices": [], "usage": usage})
            for event in [*(f"data: {json.dumps(e)}\n\n" for e in events), "data: [DONE]\n\n"]:
                if closed.done():
                    self.disconnects += 1
                    return False
                data = event.encode()
                writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                await writer.drain()
                if self.chunk_delay_s:
                    await asyncio.sleep(self.chunk_delay_s)
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return True
        except ConnectionError:
            self.disconnects += 1
            return False
        finally:
            closed.cancel()


def tool_call_reply(name: str, arguments: dict[str, Any], call_id: str = "a1B2c3D4e") -> Reply:
    """A Mistral tool call as vLLM streams it: id and name first, then the arguments in pieces."""
    text = json.dumps(arguments)
    pieces = [text[i : i + 5] for i in range(0, len(text), 5)]
    first = {"tool_calls": [{"index": 0, "id": call_id, "type": "function", "function": {"name": name}}]}
    return [first, *({"tool_calls": [{"index": 0, "function": {"arguments": p}}]} for p in pieces)]


def text_reply(text: str) -> Reply:
    words = text.split(" ")
    return [{"content": w if i == 0 else f" {w}"} for i, w in enumerate(words)]


def default_reply(body: dict[str, Any]) -> Reply:
    return text_reply("Hello from the fake vLLM server, one word at a time.")
