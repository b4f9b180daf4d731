"""The banking engine over gRPC: caller speech as STT writes it, tools offered as an LLM gets them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from orchestrator.tools import SYSTEM_PROMPT, TOOLS
from tests.llm_svc.conftest import Collected, Running, collect, request, serve, settings, user
from voicebot.v1 import llm_service_pb2 as pb

MISTRAL_ID = re.compile(r"[A-Za-z0-9]{9}")
RESULTS: dict[str, dict[str, Any]] = {
    "verify_identity": {"verified": True},
    "get_balance": {"account_type": "checking", "balance": 1234.56, "available": 1200.0, "currency": "USD"},
    "recent_transactions": {
        "transactions": [
            {"date": "2025-03-03", "description": "Grocery Mart", "amount": -45.2},
            {"date": "2025-03-01", "description": "Payroll", "amount": 1500},
        ]
    },
    "loan_payment": {"monthly_payment": 386.66, "total_interest": 3199.36},
    "block_card": {"blocked": True, "card_last_four": "4321", "replacement_days": 5},
    "unblock_card": {"unblocked": True, "card_last_four": "4321"},
    "branch_hours": {
        "branches": [{"name": "Springfield", "address": "12 Main Street", "hours": "Monday to Friday 9 AM to 5 PM"}]
    },
    "transfer_to_agent": {"transferred": True, "wait_minutes": 2},
    "end_call": {"ended": True},
}


def definitions(*names: str) -> list[pb.ToolDefinition]:
    """The orchestrator's canonical tools (all, or those named), as a request carries them."""
    return [
        pb.ToolDefinition(
            name=t["name"], description=t["description"], parameters_json_schema=json.dumps(t["parameters"])
        )
        for t in TOOLS
        if not names or t["name"] in names
    ]


class Conversation:
    """A call as the orchestrator runs it: the whole history in every request, tool results added."""

    def __init__(self, running: Running, tools: list[pb.ToolDefinition] | None = None, **fields: Any) -> None:
        self.stub = running.stub
        self.tools = definitions() if tools is None else tools
        self.fields = fields
        self.messages = [pb.ChatMessage(role=pb.ROLE_SYSTEM, content=SYSTEM_PROMPT)]

    async def generate(self) -> Collected:
        got = await collect(self.stub, request(*self.messages, tools=self.tools, **self.fields))
        if got.calls:
            call = got.calls[0]
            tool_call = pb.ToolCall(id=call["id"], name=call["name"], arguments_json=call["arguments"])
            self.messages.append(pb.ChatMessage(role=pb.ROLE_ASSISTANT, tool_calls=[tool_call]))
        else:
            self.messages.append(pb.ChatMessage(role=pb.ROLE_ASSISTANT, content=got.text))
        return got

    async def say(self, text: str) -> Collected:
        self.messages.append(user(text))
        return await self.generate()

    async def result(self, got: Collected, value: dict[str, Any] | None = None) -> Collected:
        """Answer the tool call in ``got`` with ``value`` (default: the canned result) and generate again."""
        call = got.calls[0]
        content = json.dumps(RESULTS[call["name"]] if value is None else value)
        self.messages.append(
            pb.ChatMessage(role=pb.ROLE_TOOL, content=content, tool_call_id=call["id"], name=call["name"])
        )
        return await self.generate()


def called(got: Collected) -> tuple[str, dict[str, Any]]:
    """The one tool call of a response: its name and arguments; checks it looks like Mistral's."""
    assert got.end is not None
    assert got.end.finish_reason == pb.FINISH_REASON_TOOL_CALLS
    assert got.text == ""
    assert list(got.calls) == [0]
    call = got.calls[0]
    assert MISTRAL_ID.fullmatch(call["id"]), call["id"]
    first, *rest = got.call_deltas
    assert (first.id, first.name) == (call["id"], call["name"])
    assert all(d.id == "" and d.name == "" for d in rest)
    return call["name"], json.loads(call["arguments"])


def said(got: Collected) -> str:
    """The text of a response without tool calls; checks it streamed in token-sized pieces."""
    assert got.end is not None
    assert got.end.finish_reason == pb.FINISH_REASON_STOP
    assert not got.calls
    assert len(got.deltas) > 3
    assert max(len(d) for d in got.deltas) <= 16
    assert got.end.usage.completion_tokens == len(got.deltas)
    return got.text


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    async with serve(settings()) as running:
        yield running


async def test_greeting_says_what_it_can_do(running: Running) -> None:
    got = await Conversation(running).say("hello")
    text = said(got)
    assert text.startswith("Hello")
    for ability in ("balance", "transactions", "loan", "block", "branch hours", "agent"):
        assert ability in text
    assert got.end is not None
    assert got.end.model == "banking"
    assert got.end.usage.prompt_tokens > 0
    assert 0 <= got.end.time_to_first_token_ms <= got.end.total_ms


async def test_loan_quote_asks_for_each_missing_slot_in_turn(running: Running) -> None:
    call = Conversation(running)
    assert "How much" in said(await call.say("i'd like a loan"))
    assert "how many years" in said(await call.say("twenty thousand dollars"))
    assert "interest rate" in said(await call.say("five years"))
    got = await call.say("six percent")
    assert called(got) == ("loan_payment", {"principal": 20000, "annual_rate_percent": 6, "term_months": 60})
    answer = said(await call.result(got))
    assert "$386.66" in answer
    assert "$20,000" in answer
    assert "5 years" in answer
    assert "6%" in answer


@pytest.mark.parametrize(
    ("utterance", "arguments"),
    [
        (
            "twenty thousand dollars over five years at six percent",
            {"principal": 20000, "annual_rate_percent": 6, "term_months": 60},
        ),
        (
            "what would the monthly payment be on a thirty year mortgage of $250,000 at six and a half percent",
            {"principal": 250000, "annual_rate_percent": 6.5, "term_months": 360},
        ),
        (
            "can i get a quote for a 250k loan at two point five percent over fifteen years",
            {"principal": 250000, "annual_rate_percent": 2.5, "term_months": 180},
        ),
        (
            "mortgage of one hundred and fifty thousand for 30 years at 7%",
            {"principal": 150000, "annual_rate_percent": 7, "term_months": 360},
        ),
        (
            "car loan twelve thousand five hundred dollars eighteen months at four point nine percent",
            {"principal": 12500, "annual_rate_percent": 4.9, "term_months": 18},
        ),
    ],
)
async def test_loan_quote_in_one_breath(running: Running, utterance: str, arguments: dict[str, Any]) -> None:
    assert called(await Conversation(running).say(utterance)) == ("loan_payment", arguments)


async def test_unclear_answer_is_asked_again_with_a_hint(running: Running) -> None:
    call = Conversation(running)
    await call.say("i need a mortgage quote")
    again = said(await call.say("um let me think"))
    assert "didn't catch" in again
    assert "twenty thousand dollars" in again


async def test_balance_verifies_identity_first(running: Running) -> None:
    call = Conversation(running)
    assert "date of birth" in said(await call.say("what's my balance"))
    assert "last four digits" in said(await call.say("january fifth nineteen eighty five"))
    got = await call.say("one two three four")
    assert called(got) == ("verify_identity", {"date_of_birth": "1985-01-05", "last_four": "1234"})
    got = await call.result(got)
    assert called(got) == ("get_balance", {})
    assert "$1,234.56" in said(await call.result(got))
    # Verified once is verified for the rest of the call.
    got = await call.say("and my last three transactions on savings")
    assert called(got) == ("recent_transactions", {"count": 3, "account_type": "savings"})
    answer = said(await call.result(got))
    assert "Grocery Mart" in answer
    assert "$45.20" in answer
    assert "deposit of $1,500" in answer


async def test_failed_verification_asks_again(running: Running) -> None:
    call = Conversation(running)
    await call.say("recent transactions please")
    await call.say("march third nineteen ninety")
    got = await call.say("my last four are twelve thirty four")
    assert called(got)[1] == {"date_of_birth": "1990-03-03", "last_four": "1234"}
    answer = said(await call.result(got, {"verified": False}))
    assert "don't match" in answer
    assert "date of birth" in answer


@pytest.mark.parametrize(
    ("utterance", "tool", "arguments"),
    [
        ("i lost my card", "block_card", {"reason": "lost", "confirmed": True}),
        ("someone stole my wallet", "block_card", {"reason": "stolen", "confirmed": True}),
        ("please block my card", "block_card", {"reason": "other", "confirmed": True}),
        ("unblock my card", "unblock_card", {"confirmed": True}),
        ("i found my card can you turn it back on", "unblock_card", {"confirmed": True}),
        ("please un block my debit card", "unblock_card", {"confirmed": True}),
    ],
)
async def test_block_and_unblock_are_never_confused(
    running: Running, utterance: str, tool: str, arguments: dict[str, Any]
) -> None:
    call = Conversation(running)
    await call.say(utterance)
    await call.say("january fifth nineteen eighty five")
    got = await call.result(await call.say("one two three four"))
    assert "Just to confirm" in said(got)
    assert ("unblock" in said(got)) == (tool == "unblock_card")
    got = await call.say("yes please")
    assert called(got) == (tool, arguments)
    answer = said(await call.result(got))
    assert ("unblocked" in answer) == (tool == "unblock_card")


async def test_which_card_question_from_the_tool_is_asked_and_answered(running: Running) -> None:
    call = Conversation(running)
    await call.say("i lost my card")
    await call.say("january fifth nineteen eighty five")
    await call.result(await call.say("one two three four"))
    got = await call.say("yes")
    assert called(got) == ("block_card", {"reason": "lost", "confirmed": True})
    question = {
        "error": "Which card should I block: your debit card or your credit card?",
        "needs_card": True,
        "cards": [
            {"kind": "debit", "card_last_four": "1111", "status": "active"},
            {"kind": "credit", "card_last_four": "2222", "status": "active"},
        ],
    }
    assert said(await call.result(got, question)) == question["error"]
    got = await call.say("the credit one")
    assert called(got) == ("block_card", {"reason": "lost", "card_last_four": "2222", "confirmed": True})


async def test_a_tool_asking_for_an_argument_again_gets_the_next_answer(running: Running) -> None:
    call = Conversation(running)
    got = await call.say("a loan of ten million dollars over five years at six percent")
    assert called(got)[1]["principal"] == 10_000_000
    ask = {
        "error": "I can quote loans from $1,000 to $5,000,000. What amount did you have in mind?",
        "field": "principal",
    }
    assert said(await call.result(got, ask)) == ask["error"]
    got = await call.say("fifty thousand")
    assert called(got) == ("loan_payment", {"principal": 50000, "annual_rate_percent": 6, "term_months": 60})


async def test_a_locked_verification_ends_the_task(running: Running) -> None:
    call = Conversation(running)
    await call.say("what's my balance")
    await call.say("january fifth nineteen eighty five")
    got = await call.say("one two three four")
    locked = {"verified": False, "locked": True, "message": "For your security, verification is locked for now."}
    answer = said(await call.result(got, locked))
    assert answer.startswith("For your security, verification is locked for now.")
    assert "anything else" in answer


async def test_a_no_at_confirmation_blocks_nothing(running: Running) -> None:
    call = Conversation(running)
    await call.say("block my card")
    await call.say("january fifth nineteen eighty five")
    await call.result(await call.say("one two three four"))
    assert "won't block" in said(await call.say("no wait"))


async def test_dont_block_is_not_a_block(running: Running) -> None:
    got = await Conversation(running).say("please don't block my card")
    assert "won't block" in said(got)


async def test_branch_hours_with_a_location(running: Running) -> None:
    call = Conversation(running)
    got = await call.say("what are the hours of your branch in springfield")
    assert called(got) == ("branch_hours", {"location": "springfield"})
    assert "12 Main Street" in said(await call.result(got))
    assert called(await Conversation(running).say("when are you open")) == ("branch_hours", {})


async def test_agent_and_goodbye(running: Running) -> None:
    call = Conversation(running)
    got = await call.say("can i speak to a real person")
    assert called(got) == ("transfer_to_agent", {"reason": "caller asked for an agent"})
    assert "2 minutes" in said(await call.result(got))
    call = Conversation(running)
    got = await call.say("thanks that's all goodbye")
    assert called(got)[0] == "end_call"
    assert "Goodbye" in said(await call.result(got))


async def test_no_after_anything_else_ends_the_call(running: Running) -> None:
    call = Conversation(running)
    got = await call.say("branch hours")
    assert "anything else" in said(await call.result(got))
    assert called(await call.say("no")) == ("end_call", {"reason": "caller said goodbye"})


async def test_fallback_says_what_it_can_do(running: Running) -> None:
    text = said(await Conversation(running).say("can you open a brokerage account for me"))
    assert text.startswith("Sorry, I can't help with that.")
    assert "quote loan and mortgage payments" in text


async def test_only_offered_tools_are_called(running: Running) -> None:
    call = Conversation(running, tools=definitions("branch_hours", "transfer_to_agent"))
    text = said(await call.say("twenty thousand dollars over five years at six percent"))
    assert "can't help with loan quotes" in text
    assert "give branch hours and locations, or connect you to an agent" in text
    text = said(await Conversation(running, tools=[]).say("what's my balance"))
    assert "can't help with account balances" in text


async def test_without_verify_identity_offered_the_balance_is_asked_directly(running: Running) -> None:
    got = await Conversation(running, tools=definitions("get_balance")).say("how much money do i have in savings")
    assert called(got) == ("get_balance", {"account_type": "savings"})


async def test_tool_choice_none_calls_no_tool(running: Running) -> None:
    call = Conversation(running, tool_choice=pb.TOOL_CHOICE_NONE)
    assert "can't help with branch hours" in said(await call.say("what time do you close"))


async def test_tool_error_results_are_explained(running: Running) -> None:
    call = Conversation(running)
    got = await call.say("ten thousand dollars over two years at five percent")
    answer = said(await call.result(got, {"error": "the loan service is down"}))
    assert "the loan service is down" in answer


async def test_same_request_same_stream_and_fresh_ids_each_turn(running: Running) -> None:
    messages = [user("twenty thousand dollars over five years at six percent")]
    one = await collect(running.stub, request(*messages, tools=definitions()))
    two = await collect(running.stub, request(*messages, tools=definitions()))
    assert one.call_deltas == two.call_deltas
    call = Conversation(running)
    first = await call.say("branch hours")
    await call.result(first)
    second = await call.say("what about the springfield branch hours")
    assert called(second) == ("branch_hours", {"location": "springfield"})
    assert first.calls[0]["id"] != second.calls[0]["id"]


async def test_max_tokens_and_stop_strings(running: Running) -> None:
    got = await collect(running.stub, request(user("hello"), tools=definitions(), max_tokens=4))
    assert got.end is not None
    assert got.end.finish_reason == pb.FINISH_REASON_LENGTH
    assert len(got.deltas) == 4
    got = await collect(running.stub, request(user("hello"), tools=definitions(), stop=["thanks"]))
    assert got.text == "Hello, "


async def test_adapters_are_not_supported(running: Running) -> None:
    listed = await running.stub.ListAdapters(pb.ListAdaptersRequest())
    assert (listed.base_model, list(listed.adapters)) == ("banking", [])
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await running.stub.LoadAdapter(pb.LoadAdapterRequest(name="collections", path="/adapters/c"))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "VOICEBOT_LLM_ENGINE=vllm" in (err.value.details() or "")
    assert (await running.stub.UnloadAdapter(pb.UnloadAdapterRequest(name="collections"))).was_loaded is False


def test_the_engine_reads_tools_from_requests_only() -> None:
    code = "import sys, llm_svc.app; assert not [m for m in sys.modules if m.startswith('orchestrator')]"
    subprocess.run([sys.executable, "-c", code], check=True)
