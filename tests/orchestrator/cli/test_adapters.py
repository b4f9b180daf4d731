"""voicebot adapter-control against a real llm_svc on the banking engine."""

from __future__ import annotations

import json

from tests.orchestrator.cli.conftest import Serve
from tests.orchestrator.cli.helpers import one_line_error, target, usage_error, voicebot


async def test_list_shows_the_base_model_and_no_adapters(servers: dict[str, Serve]) -> None:
    llm = target(await servers["llm"]())
    text = await voicebot("--llm", llm, "adapter-control", "list")
    as_json = await voicebot("--llm", llm, "adapter-control", "list", "--json")
    global_json = await voicebot("--json", "--llm", llm, "adapter-control", "list")
    assert text.exit_code == 0, text.output
    assert text.stdout.startswith("base model: ")
    assert "no adapters loaded" in text.stdout
    assert json.loads(as_json.stdout) == json.loads(global_json.stdout)
    listed = json.loads(as_json.stdout)
    assert listed["base_model"]
    assert listed["adapters"] == []


async def test_load_shows_the_engines_refusal_which_names_the_fix(servers: dict[str, Serve]) -> None:
    llm = target(await servers["llm"]())
    result = await voicebot("--llm", llm, "adapter-control", "load", "support-v2", "/adapters/support-v2")
    line = one_line_error(result, "FAILED_PRECONDITION", "VOICEBOT_LLM_ENGINE=vllm", "--enable-lora")
    assert line.startswith("Error: ")


async def test_unload_of_an_adapter_that_is_not_loaded_changes_nothing(servers: dict[str, Serve]) -> None:
    llm = target(await servers["llm"]())
    text = await voicebot("--llm", llm, "adapter-control", "unload", "support-v2")
    as_json = await voicebot("--llm", llm, "adapter-control", "unload", "support-v2", "--json")
    assert text.exit_code == 0, text.output
    assert text.stdout.strip() == "support-v2 was not loaded; nothing changed"
    assert json.loads(as_json.stdout) == {"was_loaded": False}


async def test_bad_names_and_paths_are_usage_errors() -> None:
    usage_error(await voicebot("adapter-control", "load", "bad name!", "/x"), "Invalid value for 'NAME'", "letters")
    usage_error(await voicebot("adapter-control", "load", "ok", ""), "Invalid value for 'PATH'")
    usage_error(await voicebot("adapter-control", "unload", "x" * 65), "Invalid value for 'NAME'")
    usage_error(await voicebot("adapter-control", "load", "only-name"), "Missing argument 'PATH'")
    usage_error(await voicebot("adapter-control", "fly"), "No such command 'fly'")


async def test_admin_rpcs_need_the_admin_token(servers: dict[str, Serve]) -> None:
    llm = target(await servers["llm"](auth_token="caller-token", admin_token="admin-token"))
    anonymous = await voicebot("--llm", llm, "adapter-control", "list")
    caller = await voicebot("--llm", llm, "--token", "caller-token", "adapter-control", "list")
    caller_unload = await voicebot("--llm", llm, "--token", "caller-token", "adapter-control", "unload", "a")
    admin_unload = await voicebot("--llm", llm, "adapter-control", "unload", "a", env={"VOICEBOT_TOKEN": "admin-token"})
    one_line_error(anonymous, f"{llm} refused the call", "--token")
    assert caller.exit_code == 0, caller.output
    one_line_error(caller_unload, f"{llm} refused the call", "admin token")
    assert admin_unload.exit_code == 0, admin_unload.output
