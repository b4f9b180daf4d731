"""Numbers, dates and digits as speech-to-text writes them."""

from __future__ import annotations

import datetime

import pytest

from llm_svc.banking.numbers import find_numbers, parse_date, spoken_digits
from llm_svc.banking.understand import understand


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("twenty thousand dollars over five years at six percent", [(20000, "money"), (5, "years"), (6, "percent")]),
        ("two point five percent", [(2.5, "percent")]),
        ("thirty year mortgage", [(30, "years")]),
        ("thirty-year fixed", [(30, "years")]),
        ("$250,000", [(250000, "money")]),
        ("250k", [(250000, "money")]),
        ("250 k", [(250000, "money")]),
        ("a hundred thousand", [(100000, "")]),
        ("two hundred fifty thousand dollars", [(250000, "money")]),
        ("one hundred and fifty thousand", [(150000, "")]),
        ("twenty five hundred bucks", [(2500, "money")]),
        ("six and a half percent", [(6.5, "percent")]),
        ("6.5%", [(6.5, "percent")]),
        ("six point two five per cent", [(6.25, "percent")]),
        ("1.5 million", [(1500000, "")]),
        ("two point five million", [(2500000, "")]),
        ("one million two hundred thousand", [(1200000, "")]),
        ("eighteen months", [(18, "months")]),
        ("nothing here", []),
        ("i want to borrow for a car", []),
    ],
)
def test_find_numbers(text: str, expected: list[tuple[float, str]]) -> None:
    assert [(n.value, n.unit) for n in find_numbers(text)] == [(pytest.approx(v), u) for v, u in expected]


@pytest.mark.parametrize(
    ("text", "digits"),
    [
        ("one two three four", "1234"),
        ("twelve thirty four", "1234"),
        ("1234", "1234"),
        ("4 3 2 1", "4321"),
        ("double five six seven", "5567"),
        ("oh oh seven five", "0075"),
        ("nine oh one two", "9012"),
    ],
)
def test_spoken_digits(text: str, digits: str) -> None:
    assert spoken_digits(text) == digits


def test_last_four_phrase_is_not_read_as_a_digit() -> None:
    assert understand("my last four digits are one two three four").digits == "1234"
    assert understand("it ends in 9876").digits == "9876"


TODAY = datetime.date(2025, 6, 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("january fifth nineteen eighty five", datetime.date(1985, 1, 5)),
        ("the fifth of january nineteen eighty five", datetime.date(1985, 1, 5)),
        ("march 3 1985", datetime.date(1985, 3, 3)),
        ("march 3rd, 1985", datetime.date(1985, 3, 3)),
        ("03/05/1985", datetime.date(1985, 3, 5)),
        ("1985-01-05", datetime.date(1985, 1, 5)),
        ("july twenty first two thousand one", datetime.date(2001, 7, 21)),
        ("twenty first of july nineteen ninety", datetime.date(1990, 7, 21)),
        ("may the second nineteen oh five", datetime.date(1905, 5, 2)),
        ("december thirty first eighty nine", datetime.date(1989, 12, 31)),
        ("it is the 5th of jan 85", datetime.date(1985, 1, 5)),
        ("june first twenty ten", datetime.date(2010, 6, 1)),
        ("born april 1 2000 and my last four are 1234", datetime.date(2000, 4, 1)),
        ("february thirtieth nineteen ninety", None),
        ("march third", None),
        ("i don't remember", None),
    ],
)
def test_parse_date(text: str, expected: datetime.date | None) -> None:
    assert parse_date(text, TODAY) == expected
