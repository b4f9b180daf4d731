"""Dates of birth and last-four digits as callers say them and as speech recognition writes them."""

from __future__ import annotations

import datetime as dt

import pytest

from orchestrator.banking.spoken import parse_date, parse_last_four

TODAY = dt.date(2026, 5, 1)
MARCH_4_1980 = dt.date(1980, 3, 4)


@pytest.mark.parametrize(
    "text",
    [
        "march fourth nineteen eighty",
        "March 4, 1980",
        "March 4th, 1980",
        "march the fourth nineteen eighty",
        "the fourth of march, 1980",
        "4 Mar 1980",
        "nineteen eighty march fourth",
        "march 4th '80",
        "march fourth eighty",
        "my date of birth is march fourth nineteen eighty",
        "1980-03-04",
        "1980/03/04",
        "03/04/1980",
        "3/4/80",
        "3.4.1980",
        "03 / 04 / 1980",
        "03041980",
        "19800304",
        "oh three oh four nineteen eighty",
    ],
)
def test_reads_march_fourth_1980_in_many_shapes(text: str) -> None:
    assert parse_date(text, TODAY) == MARCH_4_1980


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("04/03/1980", dt.date(1980, 4, 3)),  # US order: month first
        ("25/12/1980", dt.date(1980, 12, 25)),  # 25 cannot be a month: day first
        ("12/31/99", dt.date(1999, 12, 31)),
        ("march twenty first two thousand and one", dt.date(2001, 3, 21)),
        ("march twenty one nineteen eighty", dt.date(1980, 3, 21)),
        ("march twenty nineteen eighty", dt.date(1980, 3, 20)),
        ("december thirty first twenty twelve", dt.date(2012, 12, 31)),
        ("july fourth nineteen seventy six", dt.date(1976, 7, 4)),
        ("august thirtieth nineteen ninety nine", dt.date(1999, 8, 30)),
        ("march fourth two thousand", dt.date(2000, 3, 4)),
        ("june first nineteen oh five", dt.date(1905, 6, 1)),
        ("march the fourth nineteen hundred", dt.date(1900, 3, 4)),
        ("sept 9 1999", dt.date(1999, 9, 9)),
        ("Born on 7-4-1976", dt.date(1976, 7, 4)),
        ("february twenty ninth two thousand", dt.date(2000, 2, 29)),
    ],
)
def test_reads_other_dates(text: str, expected: dt.date) -> None:
    assert parse_date(text, TODAY) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "march",
        "february thirtieth 1980",
        "february twenty ninth nineteen eighty one",
        "march fourth 2030",  # after today: not a date of birth
        "13/13/1980",
        "march fourth 1850",
        "x" * 200,
    ],
)
def test_refuses_what_is_not_a_past_date(text: str) -> None:
    assert parse_date(text, TODAY) is None


@pytest.mark.parametrize(
    "text",
    [
        "4242",
        "4 2 4 2",
        "42-42",
        "four two four two",
        "Four, two, four, two.",
        "forty two forty two",
        "ending in 4242",
        "last four digits are four two four two",
        "for two for two",
        "four to four too",
    ],
)
def test_reads_last_four_as_digits_or_words(text: str) -> None:
    assert parse_last_four(text) == "4242"


@pytest.mark.parametrize(
    ("text", "digits"),
    [("oh one two three", "0123"), ("double four one two", "4412"), ("twelve thirty four", "1234"), ("0005", "0005")],
)
def test_reads_zeros_pairs_and_doubles(text: str, digits: str) -> None:
    assert parse_last_four(text) == digits


@pytest.mark.parametrize("text", ["", "123", "12345", "four", "4111 1111 1111 1111", "none of your business"])
def test_refuses_anything_but_exactly_four_digits(text: str) -> None:
    assert parse_last_four(text) is None
