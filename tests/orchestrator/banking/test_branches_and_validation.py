"""Branch lookups and the schema checks on tool arguments."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.banking.branches import BRANCHES, Branch, find_branches
from orchestrator.banking.validation import validate_arguments
from orchestrator.tools.definitions import TOOLS

SCHEMAS = {tool["name"]: tool["parameters"] for tool in TOOLS}


def test_hours_are_written_as_they_are_said() -> None:
    by_id = {b.branch_id: b for b in BRANCHES}
    assert by_id["downtown"].hours_text() == (
        "Monday to Friday 9 a.m. to 5 p.m., Saturday 9 a.m. to 1 p.m., closed Sunday"
    )
    assert by_id["riverside"].hours_text().startswith("Monday to Friday 8:30 a.m. to 6 p.m.")
    assert by_id["northgate"].hours_text() == (
        "Monday to Thursday 9 a.m. to 5 p.m., Friday 9 a.m. to 7 p.m., Saturday 10 a.m. to 2 p.m., closed Sunday"
    )
    assert by_id["airport"].hours_text() == "every day 7 a.m. to 9 p.m."
    assert by_id["chatham"].hours_text().endswith("closed Saturday and Sunday")


def test_a_branch_needs_seven_days_of_hours() -> None:
    with pytest.raises(ValueError, match="7 days"):
        Branch("x", "X", "1 A St", "Town", "00000", "555-0100", 0.0, 0.0, (None,) * 6)


@pytest.mark.parametrize(
    ("location", "names", "how"),
    [
        ("riverside", ["Riverside"], "name"),
        ("the River Road branch", ["Riverside"], "name"),
        ("main street", ["Downtown"], "name"),
        ("downtown", ["Downtown"], "name"),
        ("Chatham", ["Chatham"], "name"),
        ("62704", ["Riverside"], "zip"),
        ("near 62711 please", ["Riverside"], "nearest_zip"),
        ("62712", ["Downtown"], "nearest_zip"),
        ("springfield", ["Downtown", "Riverside", "Northgate", "Airport"], "name"),
        (None, [], "none"),
        ("", [], "none"),
        ("nearest branch", [], "none"),
        ("elm street", [], "unknown"),
        ("99999", [], "unknown"),
    ],
)
def test_find_branches(location: str | None, names: list[str], how: str) -> None:
    match = find_branches(location)
    assert [b.name for b in match.branches] == names
    assert match.how == how


def test_valid_arguments_pass_and_are_coerced() -> None:
    cleaned, violations = validate_arguments(
        {"principal": "$200,000", "annual_rate_percent": "6.5%", "term_months": 360.0}, SCHEMAS["loan_payment"]
    )
    assert violations == []
    assert cleaned == {"principal": 200000, "annual_rate_percent": 6.5, "term_months": 360}


@pytest.mark.parametrize(
    ("tool", "arguments", "field", "problem"),
    [
        ("loan_payment", {"annual_rate_percent": 5, "term_months": 60}, "principal", "missing"),
        ("loan_payment", {"principal": "lots", "annual_rate_percent": 5, "term_months": 60}, "principal", "type"),
        ("loan_payment", {"principal": 0, "annual_rate_percent": 5, "term_months": 60}, "principal", "minimum"),
        (
            "loan_payment",
            {"principal": 1e4, "annual_rate_percent": 31, "term_months": 60},
            "annual_rate_percent",
            "maximum",
        ),
        ("loan_payment", {"principal": 1e4, "annual_rate_percent": 5, "term_months": 60.5}, "term_months", "type"),
        ("loan_payment", {"principal": True, "annual_rate_percent": 5, "term_months": 60}, "principal", "type"),
        ("recent_transactions", {"count": 11}, "count", "maximum"),
        ("recent_transactions", {"count": 0}, "count", "minimum"),
        ("get_balance", {"account_type": "brokerage"}, "account_type", "enum"),
        ("block_card", {"reason": "bored", "confirmed": True}, "reason", "enum"),
        ("block_card", {"reason": "lost", "confirmed": "perhaps"}, "confirmed", "type"),
        ("verify_identity", {"date_of_birth": "1980-03-04"}, "last_four", "missing"),
    ],
)
def test_violations_name_the_field_and_the_problem(
    tool: str, arguments: dict[str, Any], field: str, problem: str
) -> None:
    _, violations = validate_arguments(arguments, SCHEMAS[tool])
    assert [(v.field, v.problem) for v in violations] == [(field, problem)]
    assert field in violations[0].message


def test_enum_values_match_without_case_and_unknown_properties_are_dropped() -> None:
    cleaned, violations = validate_arguments({"account_type": " Savings ", "pin": "1234"}, SCHEMAS["get_balance"])
    assert violations == []
    assert cleaned == {"account_type": "savings"}


def test_nulls_are_absent_and_booleans_may_be_words() -> None:
    cleaned, violations = validate_arguments({"reason": "lost", "confirmed": "yes"}, SCHEMAS["block_card"])
    assert (cleaned, violations) == ({"reason": "lost", "confirmed": True}, [])
    _, violations = validate_arguments({"reason": "lost", "confirmed": None}, SCHEMAS["block_card"])
    assert [(v.field, v.problem) for v in violations] == [("confirmed", "missing")]


def test_the_arguments_must_be_an_object() -> None:
    _, violations = validate_arguments([1, 2], SCHEMAS["end_call"])
    assert [(v.field, v.problem) for v in violations] == [("", "not_object")]


def test_strings_accept_numbers_so_last_four_may_arrive_as_a_number() -> None:
    cleaned, violations = validate_arguments(
        {"date_of_birth": "1980-03-04", "last_four": 4242}, SCHEMAS["verify_identity"]
    )
    assert violations == []
    assert cleaned["last_four"] == "4242"
