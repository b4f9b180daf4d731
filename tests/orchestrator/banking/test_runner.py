"""The tool runner end to end over the demo store: verification, cards, compliance, bad input."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from mesh.pii import find_pii
from orchestrator.banking.handlers import LOCKED, VERIFY_FIRST, BankingTools, VerificationState
from orchestrator.banking.loans import LOAN_DISCLOSURE, PRINCIPAL_HINT, RATE_HINT, TERM_HINT
from orchestrator.banking.runner import UNAVAILABLE, BankingToolRunner
from orchestrator.banking.store import AccountStore
from orchestrator.sessions import SessionState
from orchestrator.tools.definitions import TOOLS
from orchestrator.turn import ToolOutcome
from tests.orchestrator.banking.demo import ALEX, CHEN, FULL_NUMBERS, PRIYA, SAM, TAYLOR, TODAY, session

ALEX_FACTS = {"date_of_birth": "march fourth nineteen eighty", "last_four": "four two four two"}


async def call(
    runner: BankingToolRunner, state: Any, name: str, **arguments: Any
) -> tuple[ToolOutcome, dict[str, Any]]:
    outcome = await runner.run(name, json.dumps(arguments), state)
    return outcome, json.loads(outcome.content)


async def verified(runner: BankingToolRunner, caller_id: str, date_of_birth: str, last_four: str) -> VerificationState:
    state = session(caller_id)
    outcome, body = await call(runner, state, "verify_identity", date_of_birth=date_of_birth, last_four=last_four)
    assert outcome.ok, body
    assert body["verified"]
    return state


# -- identity verification ---------------------------------------------------------------------


async def test_verification_with_spoken_date_and_digits(runner: BankingToolRunner) -> None:
    state = session(ALEX)
    outcome, body = await call(runner, state, "verify_identity", **ALEX_FACTS)
    assert outcome.ok
    assert body == {"verified": True, "message": "Thank you, Alex, you're verified."}
    assert outcome.intent == "identity_verification"
    assert not outcome.cacheable
    assert state.verified


async def test_verification_with_an_account_number_ending(runner: BankingToolRunner) -> None:
    await verified(runner, ALEX, "1980-03-04", "2345")


async def test_three_mismatches_lock_verification_for_the_session(runner: BankingToolRunner) -> None:
    state = session(ALEX)
    outcome, body = await call(runner, state, "verify_identity", date_of_birth="1980-03-05", last_four="4242")
    assert (outcome.ok, body["verified"], body["attempts_left"]) == (False, False, 2)
    assert body["message"] == "Those details don't match our records. You have 2 more tries."
    _, body = await call(runner, state, "verify_identity", date_of_birth="1980-03-04", last_four="1111")
    assert body["message"].endswith("You have one more try.")
    outcome, body = await call(runner, state, "verify_identity", date_of_birth="1980-03-04", last_four="0000")
    assert body == {"verified": False, "locked": True, "attempts_left": 0, "offer_agent": True, "message": LOCKED}
    assert "agent" in LOCKED
    assert state.verification_failures == 3

    # Even the right answer no longer works, and personal tools offer an agent.
    outcome, body = await call(runner, state, "verify_identity", **ALEX_FACTS)
    assert not outcome.ok
    assert body["locked"]
    assert not state.verified
    outcome, body = await call(runner, state, "get_balance")
    assert not outcome.ok
    assert body["error"] == LOCKED
    assert body["offer_agent"]
    # A transfer still goes through.
    outcome, _ = await call(runner, state, "transfer_to_agent", reason="could not verify")
    assert outcome.action == "transfer"


async def test_unreadable_answers_are_asked_again_without_costing_an_attempt(runner: BankingToolRunner) -> None:
    state = session(ALEX)
    outcome, body = await call(runner, state, "verify_identity", date_of_birth="sometime in spring", last_four="4242")
    assert not outcome.ok
    assert body["field"] == "date_of_birth"
    assert "month, day and year" in body["error"]
    outcome, body = await call(runner, state, "verify_identity", date_of_birth="1980-03-04", last_four="42")
    assert body["field"] == "last_four"
    assert "four digits" in body["error"]
    assert state.verification_failures == 0
    await call(runner, state, "verify_identity", **ALEX_FACTS)
    assert state.verified


async def test_unknown_caller_gets_the_same_answer_as_a_wrong_fact(runner: BankingToolRunner) -> None:
    stranger = session("+19995550000")
    _, body = await call(runner, stranger, "verify_identity", **ALEX_FACTS)
    wrong = session(ALEX)
    _, wrong_body = await call(runner, wrong, "verify_identity", date_of_birth="1980-03-05", last_four="4242")
    assert body == wrong_body


async def test_a_withheld_number_cannot_be_verified_and_is_offered_an_agent(runner: BankingToolRunner) -> None:
    state = session("")
    outcome, body = await call(runner, state, "verify_identity", **ALEX_FACTS)
    assert not outcome.ok
    assert body["offer_agent"]
    assert state.verification_failures == 0


async def test_already_verified_callers_are_not_checked_again(runner: BankingToolRunner) -> None:
    state = session(ALEX, verified=True)
    outcome, body = await call(runner, state, "verify_identity", date_of_birth="2000-01-01", last_four="0000")
    assert outcome.ok
    assert body["verified"]
    assert state.verification_failures == 0


async def test_the_orchestrators_session_state_works_as_the_session(runner: BankingToolRunner) -> None:
    state = SessionState(session_id="s1", caller_id=ALEX, language_code="en-US", tenant="", voice="", adapter="")
    outcome, _ = await call(runner, state, "verify_identity", date_of_birth="1980-03-05", last_four="4242")
    assert state.verification_failures == 1
    outcome, _ = await call(runner, state, "verify_identity", **ALEX_FACTS)
    assert outcome.ok
    assert state.verified


# -- accounts ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["get_balance", "recent_transactions"])
async def test_account_tools_need_verification(runner: BankingToolRunner, name: str) -> None:
    outcome, body = await call(runner, session(ALEX), name)
    assert not outcome.ok
    assert body == {"error": VERIFY_FIRST, "verification_required": True}


async def test_balance_of_each_account_type(runner: BankingToolRunner) -> None:
    alex = await verified(runner, ALEX, "1980-03-04", "4242")
    outcome, body = await call(runner, alex, "get_balance")
    assert outcome.ok
    assert not outcome.cacheable
    assert outcome.intent == "balance_inquiry"
    assert body["account_type"] == "checking"
    assert (body["balance"], body["available"], body["currency"]) == (2450.17, 2450.17, "USD")
    assert body["message"] == "Your Everyday Checking account ending in 2345 has a balance of $2,450.17."
    _, body = await call(runner, alex, "get_balance", account_type="savings")
    assert body["balance"] == 12800
    outcome, body = await call(runner, alex, "get_balance", account_type="credit_card")
    assert not outcome.ok
    assert "don't see a credit card account" in body["error"]

    chen = await verified(runner, CHEN, "2001-02-28", "1111")
    _, body = await call(runner, chen, "get_balance")
    assert body["message"].endswith("has a balance of $96.20, of which $46.20 is available.")
    _, body = await call(runner, chen, "get_balance", account_type="credit_card")
    assert body["message"] == (
        "Your Cash Back Credit Card ending in 4321 has a balance of $1,204.33, with $2,795.67 of available credit."
    )


async def test_recent_transactions_newest_first(runner: BankingToolRunner) -> None:
    alex = await verified(runner, ALEX, "1980-03-04", "4242")
    outcome, body = await call(runner, alex, "recent_transactions", count=3)
    assert outcome.ok
    assert not outcome.cacheable
    items = body["transactions"]
    assert [i["description"] for i in items] == ["Corner Market groceries", "Coffee House", "Payroll deposit ACME Corp"]
    assert [i["amount"] for i in items] == [-54.12, -4.75, 2850]
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", i["date"]) for i in items)
    assert "$54.12 at Corner Market groceries" in body["message"]
    assert "a deposit of $2,850.00 from Payroll deposit ACME Corp" in body["message"]
    _, body = await call(runner, alex, "recent_transactions", account_type="savings")
    assert {i["account_type"] for i in body["transactions"]} == {"savings"}
    _, body = await call(runner, alex, "recent_transactions")
    assert len(body["transactions"]) == 5


# -- cards ------------------------------------------------------------------------------------


async def test_block_asks_for_confirmation_then_blocks_then_says_already_blocked(runner: BankingToolRunner) -> None:
    alex = await verified(runner, ALEX, "1980-03-04", "4242")
    outcome, body = await call(runner, alex, "block_card", reason="lost", confirmed=False)
    assert not outcome.ok
    assert outcome.intent == "card_block"
    assert body["needs_confirmation"]
    assert body["blocked"] is False
    assert body["error"].startswith("Please confirm: should I block your debit card ending in 4242?")

    outcome, body = await call(runner, alex, "block_card", reason="lost")  # confirmed left out: ask
    assert body["needs_confirmation"]

    outcome, body = await call(runner, alex, "block_card", reason="lost", confirmed=True)
    assert outcome.ok
    assert body["blocked"]
    assert body["card_last_four"] == "4242"
    assert body["replacement_days"] == 5
    assert "is now blocked" in body["message"]

    for confirmed in (True, False):
        outcome, body = await call(runner, alex, "block_card", reason="stolen", confirmed=confirmed)
        assert outcome.ok
        assert body["already_blocked"]
        assert body["message"] == "Your debit card ending in 4242 is already blocked."


async def test_unblock_asks_for_confirmation_then_unblocks_then_says_already_active(runner: BankingToolRunner) -> None:
    sam = await verified(runner, SAM, "July 4th, 1975", "1117")
    outcome, body = await call(runner, sam, "unblock_card", confirmed=False)
    assert not outcome.ok
    assert body["needs_confirmation"]
    assert "unblock your debit card ending in 1117" in body["error"]
    outcome, body = await call(runner, sam, "unblock_card", confirmed=True)
    assert outcome.ok
    assert body["unblocked"]
    assert body["card_last_four"] == "1117"
    outcome, body = await call(runner, sam, "unblock_card", confirmed=True)
    assert outcome.ok
    assert body["already_active"]
    assert body["message"] == "Your debit card ending in 1117 isn't blocked; it's ready to use."


async def test_a_card_reported_stolen_is_not_unblocked_by_the_bot(runner: BankingToolRunner) -> None:
    taylor = await verified(runner, TAYLOR, "december thirty first nineteen sixty eight", "7891")
    outcome, body = await call(runner, taylor, "unblock_card", confirmed=True)
    assert not outcome.ok
    assert body["offer_agent"]
    assert body["unblocked"] is False
    assert "reported stolen" in body["error"]


async def test_a_caller_with_two_cards_is_asked_which(runner: BankingToolRunner) -> None:
    chen = await verified(runner, CHEN, "02/28/2001", "0005")
    outcome, body = await call(runner, chen, "block_card", reason="lost", confirmed=True)
    assert not outcome.ok
    assert body["needs_card"]
    assert body["error"] == (
        "Which card should I block: your debit card ending in 1111 or your credit card ending in 0005?"
    )
    assert [c["card_last_four"] for c in body["cards"]] == ["1111", "0005"]


async def test_a_card_can_be_named_when_the_schema_offers_card_last_four(store: AccountStore) -> None:
    definitions = [dict(tool) for tool in TOOLS]
    for tool in definitions:
        if tool["name"] in ("block_card", "unblock_card"):
            parameters = dict(tool["parameters"])
            parameters["properties"] = {**parameters["properties"], "card_last_four": {"type": "string"}}
            tool["parameters"] = parameters
    runner = BankingToolRunner(BankingTools(store, today=lambda: TODAY), definitions)
    chen = await verified(runner, CHEN, "2001-02-28", "1111")
    outcome, body = await call(
        runner, chen, "block_card", reason="stolen", confirmed=True, card_last_four="zero zero zero five"
    )
    assert outcome.ok
    assert body["card_last_four"] == "0005"
    outcome, body = await call(runner, chen, "block_card", reason="stolen", confirmed=True, card_last_four="9999")
    assert not outcome.ok
    assert body["error"] == "I don't see a card ending in 9999. Your cards end in 1111 and 0005."


@pytest.mark.parametrize("name", ["block_card", "unblock_card"])
async def test_card_tools_need_verification(runner: BankingToolRunner, name: str) -> None:
    outcome, body = await call(runner, session(PRIYA), name, reason="lost", confirmed=True)
    assert not outcome.ok
    assert body["verification_required"]


# -- general tools ----------------------------------------------------------------------------


async def test_loan_quote_ends_with_the_disclosure_and_is_cacheable(runner: BankingToolRunner) -> None:
    outcome, body = await call(
        runner, session(), "loan_payment", principal=20000, annual_rate_percent=6, term_months=60
    )
    assert outcome.ok
    assert outcome.cacheable
    assert outcome.intent == "loan_quote"
    assert body["monthly_payment"] == 386.66
    assert (body["principal"], body["annual_rate_percent"], body["term_months"]) == (20000, 6, 60)
    assert body["disclosure"] == LOAN_DISCLOSURE
    assert body["message"].endswith(LOAN_DISCLOSURE)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"principal": 500, "annual_rate_percent": 6, "term_months": 60}, PRINCIPAL_HINT),
        ({"principal": 10_000_000, "annual_rate_percent": 6, "term_months": 60}, PRINCIPAL_HINT),
        ({"principal": 0, "annual_rate_percent": 6, "term_months": 60}, PRINCIPAL_HINT),
        ({"annual_rate_percent": 6, "term_months": 60}, PRINCIPAL_HINT),
        ({"principal": 20000, "annual_rate_percent": 45, "term_months": 60}, RATE_HINT),
        ({"principal": 20000, "annual_rate_percent": "high", "term_months": 60}, RATE_HINT),
        ({"principal": 20000, "annual_rate_percent": 6, "term_months": 600}, TERM_HINT),
        ({"principal": 20000, "annual_rate_percent": 6}, TERM_HINT),
    ],
)
async def test_bad_loan_inputs_get_a_spoken_question(
    runner: BankingToolRunner, arguments: dict[str, Any], message: str
) -> None:
    outcome, body = await call(runner, session(), "loan_payment", **arguments)
    assert not outcome.ok
    assert not outcome.cacheable
    assert body["error"] == message


async def test_branch_hours_are_cacheable_and_ask_for_a_place_when_none_is_given(runner: BankingToolRunner) -> None:
    outcome, body = await call(runner, session(), "branch_hours", location="Riverside")
    assert outcome.ok
    assert outcome.cacheable
    assert outcome.intent == "branch_hours"
    assert body["branches"] == [
        {
            "name": "Riverside",
            "address": "2200 River Road, Springfield 62704",
            "phone": "217-555-0151",
            "hours": "Monday to Friday 8:30 a.m. to 6 p.m., Saturday 9 a.m. to 2 p.m., closed Sunday",
        }
    ]
    _, body = await call(runner, session(), "branch_hours", location="nearest")
    assert body["needs_location"]
    assert len(body["branches"]) == 5
    assert "Which area or ZIP code" in body["message"]
    _, body = await call(runner, session(), "branch_hours", location="62711")
    assert body["message"].startswith("The nearest branch is Riverside")
    _, body = await call(runner, session(), "branch_hours", location="Atlantis")
    assert body["branches"] == []
    assert "Atlantis" in body["message"]


async def test_transfer_and_end_call_ask_the_orchestrator_to_act(runner: BankingToolRunner) -> None:
    outcome, body = await call(runner, session(), "transfer_to_agent", reason="dispute a charge")
    assert (outcome.ok, outcome.action, outcome.detail, outcome.cacheable) == (
        True,
        "transfer",
        "dispute a charge",
        False,
    )
    assert body["action"] == "transfer"
    assert body["reason"] == "dispute a charge"
    assert body["transferred"]
    outcome, body = await call(runner, session(), "transfer_to_agent")
    assert outcome.action == "transfer"
    assert outcome.detail == "caller asked for an agent"
    outcome, body = await call(runner, session(), "end_call")
    assert (outcome.ok, outcome.action, outcome.intent) == (True, "end_call", "end_call")
    assert body["action"] == "end_call"
    assert body["ended"]


# -- the runner never raises ------------------------------------------------------------------


async def test_unknown_tool_is_an_error_the_model_can_read(runner: BankingToolRunner) -> None:
    outcome, body = await call(runner, session(), "wire_money", amount=1000)
    assert not outcome.ok
    assert outcome.action == "none"
    assert outcome.intent == "unknown_tool"
    assert "There is no tool named 'wire_money'" in body["error"]
    assert "loan_payment" in body["error"]


@pytest.mark.parametrize("arguments_json", ["{not json", "[1, 2]", '"text"', "null"])
async def test_malformed_arguments_are_an_error_the_model_can_read(
    runner: BankingToolRunner, arguments_json: str
) -> None:
    outcome = await runner.run("loan_payment", arguments_json, session())
    assert not outcome.ok
    assert "error" in json.loads(outcome.content)


async def test_empty_arguments_mean_none(runner: BankingToolRunner) -> None:
    outcome = await runner.run("end_call", "", session())
    assert outcome.ok
    assert outcome.action == "end_call"


async def test_a_failing_store_becomes_an_unavailable_answer() -> None:
    store = AccountStore(":memory:")  # never opened: every query fails
    runner = BankingToolRunner(store)
    outcome = await runner.run("get_balance", "{}", session(ALEX, verified=True))
    assert not outcome.ok
    assert json.loads(outcome.content) == {"error": UNAVAILABLE, "offer_agent": True}
    store.close()


def test_every_offered_tool_has_a_handler(store: AccountStore) -> None:
    runner = BankingToolRunner(store)
    assert runner.names == tuple(tool["name"] for tool in TOOLS)
    with pytest.raises(ValueError, match="no banking handler for tool 'teleport'"):
        BankingToolRunner(store, [{"name": "teleport", "parameters": {"type": "object"}}])


# -- compliance: no full card or account number in any result ---------------------------------


async def test_no_tool_result_holds_a_full_card_or_account_number(runner: BankingToolRunner) -> None:
    customers = [
        (ALEX, "1980-03-04", "4242"),
        (PRIYA, "1992-11-23", "5556"),
        (SAM, "1975-07-04", "1117"),
        (CHEN, "2001-02-28", "1111"),
        (TAYLOR, "1968-12-31", "4444"),
    ]
    contents: list[str] = []
    details: list[str] = []
    for caller_id, born, last_four in customers:
        state = await verified(runner, caller_id, born, last_four)
        calls: list[tuple[str, dict[str, Any]]] = [
            ("get_balance", {}),
            ("get_balance", {"account_type": "savings"}),
            ("get_balance", {"account_type": "credit_card"}),
            ("recent_transactions", {"count": 10}),
            ("block_card", {"reason": "lost", "confirmed": False}),
            ("block_card", {"reason": "lost", "confirmed": True}),
            ("unblock_card", {"confirmed": False}),
            ("unblock_card", {"confirmed": True}),
            ("branch_hours", {}),
            ("loan_payment", {"principal": 5_000_000, "annual_rate_percent": 30, "term_months": 480}),
            # Numbers the model or the caller put into free text are masked too.
            ("transfer_to_agent", {"reason": "card 4242 4242 4242 4242 and account 4400012345"}),
            ("end_call", {"reason": "read out 4111111111111111"}),
            ("wire_money", {"to": "4400012345"}),
        ]
        for name, arguments in calls:
            outcome = await runner.run(name, json.dumps(arguments), state)
            contents.append(outcome.content)
            details.append(outcome.detail)
    text = "\n".join(contents + details)
    for number in FULL_NUMBERS:
        assert number not in text
        assert number not in re.sub(r"(?<=\d)[ .-](?=\d)", "", text)  # nor written in groups
    for content in contents:
        for value in json.loads(content).values():
            if isinstance(value, str):
                assert not [f for f in find_pii(value) if f.kind in ("card_number", "account_number")], value
    assert "card **** **** **** 4242 and account ******2345" in text  # masked numbers keep their last four
