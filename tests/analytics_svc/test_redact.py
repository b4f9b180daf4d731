"""Unit tests of analytics_svc.redact: each rule, what is kept on purpose, JSON, events."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics_svc.redact import (
    ACCOUNT,
    CARD,
    DIGITS,
    EMAIL,
    NATIONAL_ID,
    PHONE,
    REDACTED,
    SSN,
    classify_number,
    redact_caller_id,
    redact_json,
    redact_message,
    redact_text,
)
from mesh.pii import contains_pii, luhn_valid
from voicebot.v1 import analytics_service_pb2 as pb

# Luhn-valid test numbers of several networks and lengths.
CARDS = [
    "4111111111111111",
    "5555555555554444",
    "378282246310005",
    "6011111111111117",
    "4222222222222",
    "3530111333300000",
]


@pytest.mark.parametrize("card", CARDS)
@pytest.mark.parametrize("separator", ["", " ", "-"])
def test_card_numbers_plain_or_grouped_by_four(card: str, separator: str) -> None:
    grouped = separator.join(card[i : i + 4] for i in range(0, len(card), 4))
    assert redact_text(f"my card is {grouped}, thanks") == f"my card is {CARD}, thanks"


def test_amex_grouping_4_6_5() -> None:
    assert redact_text("amex 3782 822463 10005 ok") == f"amex {CARD} ok"


def test_a_luhn_invalid_16_digit_number_is_still_redacted_as_an_account() -> None:
    assert not luhn_valid("4111111111111112")
    assert redact_text("4111 1111 1111 1112") == ACCOUNT


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("account 12345678", f"account {ACCOUNT}"),
        # Speech-to-text writes spoken digit groups with commas, also followed by a space.
        ("account 4800 2019, 1375,521.", f"account {ACCOUNT}."),
        ("card 4,111, 1111,111, 1111,111, 1111, 1111.", f"card {ACCOUNT}."),
        ("account number 0012-3456-7890", f"account number {ACCOUNT}"),
        ("ref ACC12345678.", f"ref ACC{ACCOUNT}."),
        ("iban GB82 WEST 1234 5698 7654 32 please", f"iban {ACCOUNT} please"),
        ("iban DE89370400440532013000", ACCOUNT.join(["iban ", ""])),
        ("a long one 12345678901234567890123", f"a long one {ACCOUNT}"),
        ("(12345678)", f"({ACCOUNT})"),
    ],
)
def test_account_numbers(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ssn 123-45-6789", f"ssn {SSN}"),
        ("ssn 123 45 6789.", f"ssn {SSN}."),
        ("unformatted 123456789", f"unformatted {ACCOUNT}"),
        ("NI number AB 12 34 56 C", f"NI number {NATIONAL_ID}"),
        ("NI number JG103759A", f"NI number {NATIONAL_ID}"),
    ],
)
def test_national_ids(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    "phone",
    [
        "(555) 123-4567",
        "555-123-4567",
        "555.123.4567",
        "1-555-123-4567",
        "+1 (555) 123-4567",
        "+15551234567",
        "+44 20 7946 0958",
        "020 7946 0958",
        "555-1234",
    ],
)
def test_phone_numbers(phone: str) -> None:
    assert redact_text(f"call me on {phone} today") == f"call me on {PHONE} today"


@pytest.mark.parametrize(
    "text",
    [
        "jane.doe+bank@example.co.uk",
        "JANE_DOE99@Example.COM",
        "jane dot doe at gmail dot com",
        "jane at example dot org",
    ],
)
def test_emails_written_or_spoken(text: str) -> None:
    assert redact_text(f"mail {text} now") == f"mail {EMAIL} now"


@pytest.mark.parametrize(
    "spoken",
    ["four one one one one one one one", "Four, one, one, one, one, one", "five five five oh one two three four"],
)
def test_spoken_digits(spoken: str) -> None:
    assert DIGITS in redact_text(f"my number is {spoken}")
    assert "one one" not in redact_text(f"my number is {spoken}").lower()


@pytest.mark.parametrize(
    "text",
    [
        "I'd like a loan of $250,000.00 over 5 years",
        "pay 1234.56 on 2026-11-24",
        "due 24.11.2026 or 11-24-2026",
        "turn 3 of 12, 1234567 points",
        "one more question, and then one more",
        "What is the interest rate on a personal loan?",
        "I'm at home dot",
        "",
    ],
)
def test_ordinary_text_is_kept(text: str) -> None:
    assert redact_text(text) == text


def test_classify_number_directly() -> None:
    assert classify_number("4111 1111 1111 1111") == CARD
    assert classify_number("123-45-6789") == SSN
    assert classify_number("+4930123456") == PHONE
    assert classify_number("98765432") == ACCOUNT
    assert classify_number("1234567") is None
    assert classify_number("2026-11-24") is None


def test_several_kinds_in_one_text() -> None:
    text = "card 4111-1111-1111-1111, ssn 078-05-1120, mail a@b.io, phone (555) 123-4567, acct 99887766"
    assert redact_text(text) == f"card {CARD}, ssn {SSN}, mail {EMAIL}, phone {PHONE}, acct {ACCOUNT}"


def test_caller_id_loses_every_digit() -> None:
    assert redact_caller_id("+1 555 123 4567") == PHONE
    assert redact_caller_id("5551234") == "#######"
    assert redact_caller_id("sip:alice@pbx.bank.com") == f"sip:{EMAIL}"
    assert redact_caller_id("anonymous") == "anonymous"


def test_json_arguments_stay_json() -> None:
    arguments = {
        "card": "4111 1111 1111 1111",
        "account": 12345678,
        "pin": 1234,
        "cvv": "123",
        "Account_Number": "x",
        "amount": 250000,
        "rate": 4.5,
        "note": ["call 555-123-4567", True, None],
        "nested": {"email": "a@b.io", "term_months": 60},
    }
    redacted = json.loads(redact_json(json.dumps(arguments)))
    assert redacted == {
        "card": CARD,
        "account": ACCOUNT,
        "pin": REDACTED,
        "cvv": REDACTED,
        "Account_Number": REDACTED,
        "amount": 250000,
        "rate": 4.5,
        "note": [f"call {PHONE}", True, None],
        "nested": {"email": REDACTED, "term_months": 60},
    }


def test_text_that_is_not_json_is_redacted_as_text() -> None:
    assert redact_json("{card: 4111 1111 1111 1111") == "{card: " + CARD
    assert redact_json("") == ""


def test_redact_message_walks_every_string_but_ids() -> None:
    event = pb.Event(event_id="e-12345678", session_id="s-12345678")
    event.call_started.CopyFrom(pb.CallStarted(caller_id="5551234", tenant="bank 12345678", adapter="loans"))
    redact_message(event)
    assert (event.event_id, event.session_id) == ("e-12345678", "s-12345678")
    assert event.call_started.caller_id == "#######"
    assert event.call_started.tenant == f"bank {ACCOUNT}"
    assert event.call_started.adapter == "loans"

    tool = pb.Event(event_id="e", session_id="s")
    tool.tool_called.CopyFrom(pb.ToolCalled(name="transfer", arguments_json='{"to": "GB82WEST12345698765432"}'))
    redact_message(tool)
    assert json.loads(tool.tool_called.arguments_json) == {"to": ACCOUNT}


def test_redact_message_handles_maps_and_repeated_messages() -> None:
    row = pb.GetReportResponse(rows=[pb.ReportRow(group="a@b.io", intent_counts={"call 555-123-4567": 2, "loan": 1})])
    redact_message(row)
    assert row.rows[0].group == EMAIL
    assert dict(row.rows[0].intent_counts) == {f"call {PHONE}": 2, "loan": 1}


def _card_numbers() -> st.SearchStrategy[str]:
    def complete(body: str) -> str:
        for check in "0123456789":
            if luhn_valid(body + check):
                return body + check
        raise AssertionError("unreachable")

    return st.integers(12, 18).flatmap(lambda n: st.text("0123456789", min_size=n, max_size=n).map(complete))


WORDS = st.sampled_from(["my", "card", "is", "please", "the", "loan", "of", "thanks", "$250", "5 years", "ok,"])


@settings(max_examples=300, deadline=None)
@given(card=_card_numbers(), separator=st.sampled_from(["", " ", "-"]), before=st.lists(WORDS), after=st.lists(WORDS))
def test_property_no_card_number_survives(card: str, separator: str, before: list[str], after: list[str]) -> None:
    grouped = separator.join(card[i : i + 4] for i in range(0, len(card), 4))
    text = " ".join([*before, grouped, *after])
    redacted = redact_text(text)
    assert card not in redacted.replace(" ", "").replace("-", "")
    assert CARD in redacted or ACCOUNT in redacted


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("0123456789 -.+()@abcxyz_")), max_size=60))
def test_property_redaction_is_idempotent_and_leaves_nothing_mesh_pii_finds(text: str) -> None:
    once = redact_text(text)
    assert redact_text(once) == once
    assert not contains_pii(once)
