"""Personal data is found and masked, and ordinary numbers are left alone."""

from __future__ import annotations

import pytest

from mesh.pii import contains_pii, find_pii, luhn_valid, mask_digits, redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("my card is 4111 1111 1111 1111", "my card is **** **** **** 1111"),
        ("card 4111-1111-1111-1111 lost", "card ****-****-****-1111 lost"),
        ("account 12345678901 please", "account *******8901 please"),
        ("ssn 123-45-6789", "ssn [national id]"),
        ("call me on (555) 123-4567", "call me on (***) ***-4567"),
        ("write to jane.doe@example.com", "write to [email]"),
        ("borrow $20,000 over 60 months at 6.5%", "borrow $20,000 over 60 months at 6.5%"),
        # Speech-to-text writes spoken digit strings with thousands separators.
        (
            "my card number is 4,111,111,111,111,111.",
            "my card number is *,***,***,***,**1,111.",
        ),
        ("it is 4,111,111,111,111,111,111,111 ok", "it is *,***,***,***,***,***,**1,111 ok"),
        ("a loan of $1,250,000.00 please", "a loan of $1,250,000.00 please"),
        ("ref 4111111111111111111111", "ref ******************1111"),
        ("my count number is 4800 20,1937 5,521.", "my count number is **** **,**** 5,521."),
        # Whisper also writes spoken digit groups with a comma and a space between them.
        ("card 4,111, 1111,111, 1111,111, 1111, 1111.", "card *,***, ****,***, ****,***, ****, 1111."),
        ("account 4800 2019, 1375,521.", "account **** ****, ***5,521."),
        ("loans of 20,000, 30,000 or 40,000", "loans of 20,000, 30,000 or 40,000"),
        ("turn 3 of 12, 1234567 points", "turn 3 of 12, 1234567 points"),
        ("a balance of $12,345.67 and $250,000", "a balance of $12,345.67 and $250,000"),
        ("on 2026-11-24 at 10:30", "on 2026-11-24 at 10:30"),
        ("born 24.11.1980", "born 24.11.1980"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_luhn() -> None:
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")


def test_kinds_and_spans() -> None:
    findings = find_pii("card 4111111111111111 and 12345678")
    assert [(f.kind, f.start) for f in findings] == [("card_number", 5), ("account_number", 26)]
    assert contains_pii("x@y.io")
    assert not contains_pii("twenty thousand dollars")


def test_mask_digits_keeps_separators_and_the_last_four() -> None:
    assert mask_digits("4111 1111 1111 1234") == "**** **** **** 1234"
    assert mask_digits("123") == "123"


def test_long_text_is_linear_enough() -> None:
    text = "balance 12 " * 20_000
    assert redact(text) == text
