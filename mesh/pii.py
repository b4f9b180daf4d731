"""Finding and masking personal data in text: card and account numbers, ids, phones, emails.

One implementation for every service: the orchestrator masks transcripts before logs, traces
and analytics; analytics redacts before storing; the cache refuses answers that hold any; TTS
reads numbers digit by digit with all but the last four masked.

Digit runs may contain spaces, dots, commas or dashes between groups ("4111 1111 1111 1111"). A run of
13-19 digits that passes the Luhn check is a card number; any other run of 8-23 digits is
treated as an account number; 3-2-4 digit groups are a US social security number. Speech-to-text
writes spoken digit strings with commas too ("4,111,111,111,111,111", "4800 20,1937 5,521",
"4,111, 1111,111, 1111"), so a comma, with or without a space after it, separates groups as well;
a well-formed sum below a billion ("$1,250,000.00"), or a list of them, is not a number to hide.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
_SSN = re.compile(r"\b\d{3}[- ]\d{2}[- ]\d{4}\b")
_PHONE = re.compile(r"(?<![\w])(?:\+\d{1,3}[ .-]?)?(?:\(\d{3}\)|\d{3})[ .-]\d{3}[ .-]\d{4}\b")
# Digits with an optional separator between them (one space, dot, comma or dash, or a comma and a
# space between groups of 3+ digits, as speech-to-text writes spoken digit groups: "4,111, 1111,111",
# but not "12, 1234"); at least 8 digits in all.
_DIGIT_RUN = re.compile(r"(?<![\d\w])\d(?:(?:(?<=\d{3}), (?=\d{3})|[ .,-])?\d){7,}(?![\d\w])")
# A sum written with thousands separators, below a billion: 20,000 / 1,250,000.00.
_AMOUNT = re.compile(r"\d{1,3}(?:,\d{3}){1,2}(?:\.\d{1,2})?")
# Dates are numbers, not personal data: 2026-11-24, 24.11.2026, 11-24-2026.
_DATE = re.compile(r"\d{4}[-.]\d{1,2}[-.]\d{1,2}|\d{1,2}[-.]\d{1,2}[-.]\d{4}")


@dataclass(frozen=True)
class Finding:
    """One piece of personal data found in a text: its kind and character span."""

    kind: str
    start: int
    end: int


def luhn_valid(digits: str) -> bool:
    """True when ``digits`` (only digits) passes the Luhn checksum used by card numbers."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _classify_run(run: str) -> str | None:
    if _DATE.fullmatch(run) or _AMOUNT.fullmatch(run):
        return None
    pieces = run.split(", ")
    if len(pieces) > 1 and all(_AMOUNT.fullmatch(piece) or _DATE.fullmatch(piece) for piece in pieces):
        return None  # a list of sums or dates: "$20,000, 30,000 or 40,000"
    digits = re.sub(r"\D", "", run)
    if 13 <= len(digits) <= 19 and luhn_valid(digits):
        return "card_number"
    if len(digits) >= 8:
        return "account_number"
    return None


def find_pii(text: str) -> list[Finding]:
    """Every piece of personal data in ``text``, in order, without overlaps. Linear in the text."""
    found: list[Finding] = []
    taken: list[tuple[int, int]] = []

    def add(kind: str, match: re.Match[str]) -> None:
        start, end = match.span()
        if any(start < t_end and t_start < end for t_start, t_end in taken):
            return
        taken.append((start, end))
        found.append(Finding(kind, start, end))

    for match in _EMAIL.finditer(text):
        add("email", match)
    for match in _SSN.finditer(text):
        add("national_id", match)
    for match in _PHONE.finditer(text):
        add("phone_number", match)
    for match in _DIGIT_RUN.finditer(text):
        kind = _classify_run(match.group())
        if kind is not None:
            add(kind, match)
    return sorted(found, key=lambda f: f.start)


def contains_pii(text: str) -> bool:
    """True when ``text`` holds any personal data ``find_pii`` knows."""
    return bool(find_pii(text))


def mask_digits(value: str, keep_last: int = 4, mask: str = "*") -> str:
    """Mask every digit of ``value`` but the last ``keep_last``, keeping separators: "4111-1111" -> "****-1111"."""
    total = sum(ch.isdigit() for ch in value)
    seen = 0
    out = []
    for ch in value:
        if ch.isdigit():
            seen += 1
            out.append(ch if seen > total - keep_last else mask)
        else:
            out.append(ch)
    return "".join(out)


def redact(text: str) -> str:
    """Replace personal data: numbers keep their last four digits, emails and ids become a tag.

    "card 4111 1111 1111 1111" -> "card **** **** **** 1111"; "me@x.org" -> "[email]".
    """
    if not text:
        return text
    pieces = []
    last = 0
    for finding in find_pii(text):
        pieces.append(text[last : finding.start])
        value = text[finding.start : finding.end]
        if finding.kind in ("card_number", "account_number", "phone_number"):
            pieces.append(mask_digits(value))
        else:
            pieces.append(f"[{finding.kind.replace('_', ' ')}]")
        last = finding.end
    pieces.append(text[last:])
    return "".join(pieces)
