"""Engine choice, the canonical tool definitions, and ``python -m llm_svc`` as a process."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import grpc
import jsonschema
import pytest

import mesh
from llm_svc.app import LlmApp
from llm_svc.config import LlmSettings
from llm_svc.servicer import to_generate_request
from mesh.settings import SettingsError
from orchestrator.tools import SYSTEM_PROMPT, TOOL_NAMES, TOOLS
from tests.conftest import free_port
from tests.llm_svc.conftest import SERVING, collect, eventually, health_status, request, user
from voicebot.v1 import llm_service_pb2 as pb
from voicebot.v1 import llm_service_pb2_grpc


def test_banking_is_the_default_engine() -> None:
    app = LlmApp(LlmSettings.from_env({}))
    assert (app.engine_name, app.engine.name) == ("banking", "banking")


def test_unknown_engine_names_the_choices() -> None:
    with pytest.raises(SettingsError, match="VOICEBOT_LLM_ENGINE='gpt'.*banking, vllm"):
        LlmApp(LlmSettings.from_env({"VOICEBOT_LLM_ENGINE": "gpt"}))


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("VOICEBOT_LLM_DEFAULT_MAX_TOKENS", "5000", "VOICEBOT_LLM_DEFAULT_MAX_TOKENS=5000: allowed 1-4096"),
        ("VOICEBOT_LLM_MAX_CONNECTIONS", "0", "VOICEBOT_LLM_MAX_CONNECTIONS=0: allowed 1-10000"),
        ("VOICEBOT_LLM_REQUEST_TIMEOUT_S", "0", "VOICEBOT_LLM_REQUEST_TIMEOUT_S=0.0: must be above 0"),
    ],
)
def test_settings_out_of_range_name_the_variable(variable: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        LlmSettings.from_env({variable: value})


def test_adapter_rpcs_are_admin_methods() -> None:
    assert LlmApp.admin_methods == {"/voicebot.v1.LlmService/LoadAdapter", "/voicebot.v1.LlmService/UnloadAdapter"}


def test_tool_definitions_are_valid_and_pass_the_servicer() -> None:
    assert len(set(TOOL_NAMES)) == len(TOOLS)
    for definition in TOOLS:
        assert set(definition) == {"name", "description", "parameters"}
        jsonschema.Draft202012Validator.check_schema(definition["parameters"])
        assert definition["parameters"]["type"] == "object"
        assert "Returns" in definition["description"]
    tools = [
        pb.ToolDefinition(
            name=t["name"], description=t["description"], parameters_json_schema=json.dumps(t["parameters"])
        )
        for t in TOOLS
    ]
    converted = to_generate_request(request(user("hi"), tools=tools), LlmSettings.from_env({}))
    assert [t.name for t in converted.tools] == list(TOOL_NAMES)
    for name in ("verify_identity", "loan_payment", "block_card", "unblock_card", "end_call"):
        assert name in SYSTEM_PROMPT or name in TOOL_NAMES


def test_loan_payment_arguments_validate_against_their_schema() -> None:
    loan = next(t for t in TOOLS if t["name"] == "loan_payment")
    jsonschema.validate({"principal": 20000, "annual_rate_percent": 6, "term_months": 60}, loan["parameters"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"principal": 20000, "annual_rate_percent": 6}, loan["parameters"])


async def test_python_dash_m_llm_svc_serves_and_stops_on_sigterm() -> None:
    port = free_port()
    env = {
        **os.environ,
        "VOICEBOT_LLM_PORT": str(port),
        "VOICEBOT_LLM_HOST": "127.0.0.1",
        "VOICEBOT_LLM_METRICS_PORT": "-1",
        "VOICEBOT_LLM_GRACE_S": "1",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "llm_svc", env=env, stderr=asyncio.subprocess.PIPE
    )
    channel = mesh.dial(f"127.0.0.1:{port}")
    try:

        async def serving() -> bool:
            try:
                return await health_status(channel) == SERVING
            except grpc.aio.AioRpcError:
                return False

        await eventually(serving)
        got = await collect(llm_service_pb2_grpc.LlmServiceStub(channel), request(user("hello")))
        assert got.end is not None
        assert got.text.startswith("Hello")
    finally:
        await channel.close()
        process.terminate()
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0
    assert b"banking" in stderr
