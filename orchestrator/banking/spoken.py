"""Reading what callers say: dates of birth and "last four" digits, written or spoken.

Speech-to-text and language models hand these over in many shapes; each parser accepts the
common ones and returns ``None`` for anything it cannot read with confidence.

Dates (``parse_date``):

- ISO ``1980-03-04`` (also ``1980/03/04``, ``19800304``);
- numeric with ``/``, ``-`` or ``.``: **US order, month first** -- ``04/03/1980`` is April 3rd,
  1980. When the first number cannot be a month (``25/12/1980``) it is read day first. Two-digit
  years are the most recent past year (``3/4/80`` is 1980); eight digits ``MMDDYYYY`` as typed
  on a keypad;
- words, in any order of month/day/year: "march fourth nineteen eighty", "March 4, 1980",
  "the fourth of march, 1980", "4 Mar 1980", "march twenty first two thousand and one",
  "nineteen eighty march fourth", "march 4th '80", "march four oh five"... Years may be
  "nineteen eighty", "nineteen oh five", "nineteen hundred", "two thousand (and) five",
  "twenty twelve", "1980" or "'80".

Last four digits (``parse_last_four``): "4242", "4 2 4 2", "four two four two", "forty two
forty two", "oh one two three", "double four one two", "ending in 4242". Exactly four digits
must come out.
"""

from __future__ import annotations

import datetime as dt
import re

from mesh.number_words import MONTHS, ORDINALS, TEENS, TENS, UNITS

# Recognisers write a spoken "o" for zero in digit strings ("four o two").
_UNITS = {**UNITS, "o": 0}
_TEENS = TEENS
_TENS = TENS
_ORDINAL_UNITS = {word: value for word, value in ORDINALS.items() if value < 10}
_ORDINAL_TEENS = {word: value for word, value in ORDINALS.items() if value >= 10}
_MONTHS = MONTHS
_FILLER = {"the", "of", "on", "in", "born", "my", "birthday", "is", "date", "birth", "its", "it's", "dob"}

_ISO = re.compile(r"(?<!\d)(\d{4}) ?[-/.] ?(\d{1,2}) ?[-/.] ?(\d{1,2})(?!\d)")
_NUMERIC = re.compile(r"(?<!\d)(\d{1,2}) ?[-/.] ?(\d{1,2}) ?[-/.] ?(\d{4}|\d{2})(?!\d)")
_EIGHT = re.compile(r"^\d{8}$")
_ORDINAL_DIGITS = re.compile(r"^(\d{1,2})(?:st|nd|rd|th)$")


def _today() -> dt.date:
    return dt.date.today()


def _full_year(two_digits: int, today: dt.date) -> int:
    # The most recent year ending in these digits that is not in the future: a birth year.
    year = today.year - today.year % 100 + two_digits
    return year - 100 if year > today.year else year


def _make_date(year: int, month: int, day: int, today: dt.date) -> dt.date | None:
    try:
        value = dt.date(year, month, day)
    except ValueError:
        return None
    if value > today or year < 1900:
        return None
    return value


def _numeric(text: str, today: dt.date) -> dt.date | None:
    if match := _ISO.search(text):
        return _make_date(int(match[1]), int(match[2]), int(match[3]), today)
    if match := _NUMERIC.search(text):
        first, second, year_text = int(match[1]), int(match[2]), match[3]
        year = int(year_text) if len(year_text) == 4 else _full_year(int(year_text), today)
        month, day = (first, second) if first <= 12 else (second, first)
        return _make_date(year, month, day, today)
    compact = text.replace(" ", "")
    if _EIGHT.match(compact):
        as_us = _make_date(int(compact[4:]), int(compact[:2]), int(compact[2:4]), today)
        return as_us or _make_date(int(compact[:4]), int(compact[4:6]), int(compact[6:]), today)
    return None


def _tokens(text: str) -> list[str]:
    text = text.lower().replace("’", "'")
    text = re.sub(r"'(\d{2})\b", r"\1", text)  # '80 -> 80
    text = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1\2", text)
    return [t for t in re.split(r"[^a-z0-9']+", text) if t]


class _Cursor:
    """Reads number words and digit words from a word list, one grammar rule at a time."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self, offset: int = 0) -> str:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else ""

    def skip(self, words: set[str]) -> None:
        while self.peek() in words:
            self.pos += 1

    def day(self) -> int | None:
        """A day of the month: "fourth", "4", "4th", "twenty first", "twenty-one", "thirtieth"."""
        word = self.peek()
        if match := _ORDINAL_DIGITS.match(word):
            self.pos += 1
            return int(match[1])
        if word.isdigit() and len(word) <= 2:
            self.pos += 1
            return int(word)
        if word in _ORDINAL_UNITS or word in _ORDINAL_TEENS:
            self.pos += 1
            return _ORDINAL_UNITS.get(word) or _ORDINAL_TEENS[word]
        if word in ("twenty", "thirty"):
            tens = _TENS[word]
            following = self.peek(1)
            unit = _ORDINAL_UNITS.get(following) or (_UNITS.get(following) if following not in ("oh", "o") else None)
            if unit and tens + unit <= 31:
                self.pos += 2
                return tens + unit
            self.pos += 1
            return tens
        if word in _TEENS:
            self.pos += 1
            return _TEENS[word]
        if word in _UNITS and word not in ("zero", "oh", "o"):
            self.pos += 1
            return _UNITS[word]
        return None

    def two_digits(self) -> int | None:
        """0-99 as said in a year: "eighty four", "oh five", "twelve", "ninety"."""
        word = self.peek()
        if word in ("oh", "o", "zero") and self.peek(1) in _UNITS:
            self.pos += 2
            return _UNITS[self.tokens[self.pos - 1]]
        if word in _TEENS:
            self.pos += 1
            return _TEENS[word]
        if word in _TENS:
            self.pos += 1
            if self.peek() in _UNITS and self.peek() not in ("oh", "o", "zero"):
                self.pos += 1
                return _TENS[word] + _UNITS[self.tokens[self.pos - 1]]
            return _TENS[word]
        return None

    def year(self, today: dt.date) -> int | None:
        """A year: "1980", "80", "nineteen eighty", "two thousand and five", "nineteen hundred"."""
        word = self.peek()
        if word.isdigit():
            self.pos += 1
            if len(word) == 4:
                return int(word)
            return _full_year(int(word), today) if len(word) == 2 else None
        if word == "two" and self.peek(1) == "thousand":
            self.pos += 2
            self.skip({"and"})
            rest = self.two_digits()
            if rest is None and self.peek() in _UNITS:
                rest = _UNITS[self.peek()]
                self.pos += 1
            return 2000 + (rest or 0)
        start = self.pos
        century = self.two_digits()
        if century is None:
            return None
        if self.peek() == "hundred":
            self.pos += 1
            self.skip({"and"})
            return century * 100 + (self.two_digits() or 0)
        rest = self.two_digits()
        if rest is not None and 10 <= century <= 20:
            return century * 100 + rest
        if rest is None and self.pos == start + 1 and century >= 10:
            return _full_year(century, today)
        if rest is None and self.pos == start + 2:
            return _full_year(century, today)  # "eighty four" alone
        self.pos = start
        return None


def _words(text: str, today: dt.date) -> dt.date | None:
    tokens = [t for t in _tokens(text) if t not in _FILLER]
    month_at = next((i for i, t in enumerate(tokens) if t in _MONTHS), None)
    if month_at is None:
        # Digits said one by one, month first: "oh three oh four nineteen eighty".
        digits = _spoken_digits(tokens)
        return _numeric(digits, today) if len(digits) == 8 else None
    month = _MONTHS[tokens[month_at]]
    before = [t for t in tokens[:month_at] if t != "and"]
    after = tokens[month_at + 1 :]
    while after and after[0] == "and":
        after.pop(0)

    # Day before the month ("the fourth of march 1980", "4 march 1980"), year after it.
    if before:
        cursor = _Cursor(before)
        day = cursor.day()
        if day is not None and cursor.pos == len(before):
            rest = _Cursor(after)
            year = rest.year(today)
            if year is not None and rest.pos == len(after):
                return _make_date(year, month, day, today)
        # Year before the month ("nineteen eighty march fourth", "1980 march 4").
        cursor = _Cursor(before)
        year = cursor.year(today)
        if year is not None and cursor.pos == len(before):
            rest = _Cursor(after)
            day = rest.day()
            if day is not None and rest.pos == len(after):
                return _make_date(year, month, day, today)
        return None

    # Month first: "march fourth nineteen eighty", "march 4 1980". Day words can run into the
    # year ("march twenty nineteen eighty"), so try the longest day reading first, then shorter.
    cursor = _Cursor(after)
    day = cursor.day()
    if day is None:
        return None
    candidates = [(day, cursor.pos)]
    if day > 20 and day % 10:
        candidates.append((day - day % 10, 1))
    for candidate_day, used in candidates:
        rest = _Cursor(after[used:])
        rest.skip({"and"})
        year = rest.year(today)
        if year is not None and rest.pos == len(rest.tokens):
            return _make_date(year, month, candidate_day, today)
    return None


def parse_date(text: str, today: dt.date | None = None) -> dt.date | None:
    """A past calendar date (a date of birth) from ``text``, or None when it cannot be read.

    See the module docstring for the accepted shapes. Dates after ``today`` or before 1900 are
    refused.
    """
    today = today or _today()
    text = text.strip()
    if not text or len(text) > 100:
        return None
    return _numeric(text, today) or _words(text, today)


_HOMOPHONES = {"for": 4, "fore": 4, "to": 2, "too": 2, "won": 1, "ate": 8}
_MULTIPLIERS = {"double": 2, "triple": 3}


def _spoken_digits(tokens: list[str]) -> str:
    """Digits said one by one or in pairs ("forty two", "double four", "oh one"); other words are skipped."""
    digits: list[str] = []
    repeat = 1
    index = 0
    while index < len(tokens):
        word = tokens[index]
        index += 1
        if word == "four" and index >= 2 and tokens[index - 2] == "last" and not digits:
            continue  # "last four (digits are) ..."
        if word in _MULTIPLIERS:
            repeat = _MULTIPLIERS[word]
            continue
        if word.isdigit():
            digits.append(word * repeat if repeat > 1 and len(word) == 1 else word)
        elif word in _UNITS or word in _HOMOPHONES:
            digits.append(str(_UNITS.get(word, _HOMOPHONES.get(word))) * repeat)
        elif word in _TEENS:
            digits.append(str(_TEENS[word]))
        elif word in _TENS:
            tens = _TENS[word]
            following = tokens[index] if index < len(tokens) else ""
            if following in _UNITS and following not in ("oh", "o", "zero"):
                index += 1
                tens += _UNITS[following]
            digits.append(str(tens))
        repeat = 1
    return "".join(digits)


def parse_last_four(text: str) -> str | None:
    """Exactly four digits from ``text`` ("4242", "four two four two", "forty two forty two"), else None.

    Words that are not numbers ("ending in", "my card") are skipped; "for", "to" and "too" are
    read as the digits they sound like.
    """
    if len(text) > 100:
        return None
    digits = _spoken_digits([t for t in re.split(r"[^a-z0-9]+", text.lower()) if t])
    return digits if len(digits) == 4 else None
