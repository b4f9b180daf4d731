"""The speech normaliser: numbers, money, dates, ordinals, masking of card and account numbers."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.tts_svc.conftest import wer
from tts_svc.normalize import cardinal, digits, money, normalize, ordinal, speakable, year

DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "zero"),
        (7, "seven"),
        (13, "thirteen"),
        (40, "forty"),
        (42, "forty-two"),
        (100, "one hundred"),
        (105, "one hundred five"),
        (1234, "one thousand two hundred thirty-four"),
        (10_000, "ten thousand"),
        (1_000_001, "one million one"),
        (2_500_000_000, "two billion five hundred million"),
        (-5, "minus five"),
    ],
)
def test_cardinal(n: int, words: str) -> None:
    assert cardinal(n) == words


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (1, "first"),
        (2, "second"),
        (3, "third"),
        (4, "fourth"),
        (5, "fifth"),
        (8, "eighth"),
        (9, "ninth"),
        (11, "eleventh"),
        (12, "twelfth"),
        (20, "twentieth"),
        (21, "twenty-first"),
        (22, "twenty-second"),
        (30, "thirtieth"),
        (100, "one hundredth"),
        (101, "one hundred first"),
        (1000, "one thousandth"),
    ],
)
def test_ordinal(n: int, words: str) -> None:
    assert ordinal(n) == words


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (1999, "nineteen ninety-nine"),
        (2000, "two thousand"),
        (2005, "two thousand five"),
        (2010, "twenty ten"),
        (2024, "twenty twenty-four"),
        (1905, "nineteen oh five"),
        (1900, "nineteen hundred"),
        (800, "eight hundred"),
    ],
)
def test_year(n: int, words: str) -> None:
    assert year(n) == words


@pytest.mark.parametrize(
    ("amount", "symbol", "scale", "words"),
    [
        ("1,234.56", "$", None, "one thousand two hundred thirty-four dollars and fifty-six cents"),
        ("1", "$", None, "one dollar"),
        ("1.00", "$", None, "one dollar"),
        ("0.99", "$", None, "ninety-nine cents"),
        ("0.01", "$", None, "one cent"),
        ("5.5", "$", None, "five dollars and fifty cents"),
        ("1.5", "$", "million", "one point five million dollars"),
        ("2", "$", "M", "two million dollars"),
        ("0.125", "$", None, "zero point one two five dollars"),
        ("50", "€", None, "fifty euros"),
        ("1.01", "£", None, "one pound and one penny"),
        ("3.20", "£", None, "three pounds and twenty pence"),
    ],
)
def test_money(amount: str, symbol: str, scale: str | None, words: str) -> None:
    assert money(amount, symbol, scale) == words


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        # currency
        (
            "Your balance is $1,234.56.",
            "Your balance is one thousand two hundred thirty-four dollars and fifty-six cents.",
        ),
        ("You owe -$50.00 today.", "You owe minus fifty dollars today."),
        ("It is 1,000,000 USD or USD 5.", "It is one million dollars or five dollars."),
        ("Costs $100-$200.", "Costs one hundred dollars to two hundred dollars."),
        ("A $2.5M loan.", "A two point five million dollars loan."),
        (
            "A $12345678 mortgage.",
            "A twelve million three hundred forty-five thousand six hundred seventy-eight dollars mortgage.",
        ),
        # percentages
        ("The APR is 4.25%, up from 3%.", "The APR is four point two five percent, up from three percent."),
        ("Rates fell -0.5 %.", "Rates fell minus zero point five percent."),
        # dates
        ("Due 03/15/2024.", "Due March fifteenth twenty twenty-four."),
        ("Due 15/03/2024.", "Due March fifteenth twenty twenty-four."),
        ("Due 2024-12-31.", "Due December thirty-first twenty twenty-four."),
        ("Due March 1st, 2025.", "Due March first twenty twenty-five."),
        ("Due Jan. 5.", "Due January fifth."),
        ("Due 15 March 2024.", "Due the fifteenth of March twenty twenty-four."),
        ("Due 3/4/99.", "Due March fourth nineteen ninety-nine."),
        # ordinals
        ("The 22nd and the 3rd time.", "The twenty-second and the third time."),
        # times
        ("Open at 9:30 a.m. daily.", "Open at nine thirty a m daily."),
        ("Open at 9am until 5 PM.", "Open at nine a m until five p m."),
        ("At 14:05 or 10:00.", "At fourteen oh five or ten o'clock."),
        # plain numbers
        (
            "Pay in 2-3 days, 60 months, 3.14 and 007.",
            "Pay in two to three days, sixty months, three point one four and zero zero seven.",
        ),
        ("It is No. 5 and #12.", "It is number five and number twelve."),
        # phones: digit by digit, not masked
        ("Call 1-800-555-0199.", "Call one, eight zero zero, five five five, zero one nine nine."),
        ("Call (555) 123-4567.", "Call five five five, one two three, four five six seven."),
        # abbreviations, initialisms, symbols, markdown
        ("Dr. Smith, e.g. the U.S. branch, etc.", "Doctor Smith, for example the U S branch, et cetera."),
        ("**Note:** savings & loans and/or `cards`.", "Note: savings and loans and or cards."),
        ("- first item", "first item"),
    ],
)
def test_normalize(text: str, spoken: str) -> None:
    assert normalize(text) == spoken


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("Card 4111 1111 1111 1234 was used.", "Card ending in one two three four was used."),
        ("Card 4111-1111-1111-1234 was used.", "Card ending in one two three four was used."),
        ("Account 123456789012 is open.", "Account ending in nine zero one two is open."),
        ("Amex 3782 822463 10005 is yours.", "Amex ending in zero zero zero five is yours."),
        (
            "Card ****4321 and XXXX-XXXX-XXXX-9876.",
            "Card ending in four three two one and ending in nine eight seven six.",
        ),
        ("Your card ending in 5678 works.", "Your card ending in five six seven eight works."),
        ("SSN 123-45-6789 on file.", "SSN ending in six seven eight nine on file."),
        ("Ref 1234567890123456789012 sent.", "Ref ending in nine zero one two sent."),
        ("The last four digits are 0042.", "The last four digits are zero zero four two."),
        (
            "Account number 98765432, ending in ****5432.",
            "Account number ending in five four three two, ending in five four three two.",
        ),
    ],
)
def test_card_and_account_numbers_are_masked(text: str, spoken: str) -> None:
    assert normalize(text) == spoken


@given(
    number=st.text(alphabet="0123456789", min_size=8, max_size=19),
    style=st.sampled_from(["plain", "groups", "dashes"]),
    lead=st.sampled_from(["Card", "Account", "Your card number is", "Pay from"]),
)
def test_masked_digits_are_never_spoken(number: str, style: str, lead: str) -> None:
    written = number
    if style != "plain" and len(number) == 16:
        sep = " " if style == "groups" else "-"
        written = sep.join(number[i : i + 4] for i in range(0, 16, 4))
    spoken = normalize(f"{lead} {written} is active.")
    assert not re.search(r"\d", spoken)
    spoken_digits = [w for w in re.findall(r"[a-z]+", spoken) if w in DIGIT_WORDS]
    assert spoken_digits == [DIGIT_WORDS[int(d)] for d in number[-4:]]


@given(st.text(max_size=200))
def test_normalize_never_fails_and_leaves_no_digits(text: str) -> None:
    spoken = normalize(text)
    assert not re.search(r"[0-9]", spoken)


def test_digits_and_speakable() -> None:
    assert digits("0-19") == "zero one nine"
    assert speakable("Okay.")
    assert speakable("42")
    assert not speakable("... !?")
    assert not speakable("")


def test_wer_scoring_normalises_numbers() -> None:
    assert wer("Your balance is $1,234.56.", "your balance is 1,234 dollars and 56 cents") == 0.0
    assert wer("Due on 03/02/2025.", "Due on March 2nd, 2025") == 0.0
    assert wer("The U.S. branch", "the US branch") == 0.0
    assert wer("one two three four", "one two four") == 0.25
