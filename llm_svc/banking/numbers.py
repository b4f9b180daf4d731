"""Numbers, dates and digit strings in caller speech as speech-to-text writes it.

STT output is lower case with little punctuation and spells numbers out: "twenty thousand
dollars over five years at six percent", "two point five percent", "nineteen eighty five",
"one two three four". It may also write digits: "$250,000", "250k", "6.5%". ``find_numbers``
finds each number with the unit that follows it; ``parse_date`` and ``spoken_digits`` read
dates of birth and card digits.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from mesh.number_words import MONTHS, ORDINALS, TEENS, TENS, UNITS

SCALES = {"thousand": 1_000, "grand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
FRACTIONS = {"half": 0.5, "quarter": 0.25}
NUMBER_WORDS = set(UNITS) | set(TEENS) | set(TENS) | {"hundred"} | set(SCALES)
UNIT_WORDS = {
    "percent": "percent",
    "per": "percent",  # "per cent"
    "%": "percent",
    "year": "years",
    "years": "years",
    "yr": "years",
    "yrs": "years",
    "month": "months",
    "months": "months",
    "dollar": "money",
    "dollars": "money",
    "bucks": "money",
    "usd": "money",
}

_TOKEN = re.compile(r"\$?\d[\d,]*(?:\.\d+)?(?:st|nd|rd|th|k|m)?|[a-z]+(?:'[a-z]+)?|[%$/-]")
_DIGITS = re.compile(r"(\$?)(\d[\d,]*(?:\.\d+)?)(st|nd|rd|th|k|m)?")


@dataclass(frozen=True)
class Number:
    """A number found in speech: tokens ``start``..``end`` (exclusive), ``unit`` the word after it.

    ``unit`` is "percent", "years", "months", "money" or "" when none follows; ``digits`` is how
    the number reads digit by digit ("oh five" and "05" give "05").
    """

    value: float
    start: int
    end: int
    unit: str
    digits: str


def tokens(text: str) -> list[str]:
    """Lower-case word, number and symbol tokens; hyphens split words ("thirty-year")."""
    text = text.lower().replace("per cent", "percent")
    return [t for t in _TOKEN.findall(text) if t not in ("-", "/")]


def find_numbers(text: str) -> list[Number]:
    """Every number in ``text``, in order, with the unit word that follows it.

    Spelled-out numbers that cannot continue each other start a new number, so "nineteen
    eighty five" is 19 and 85 and "one two three four" four numbers.
    """
    return _find(tokens(text))


def _find(toks: list[str]) -> list[Number]:
    found: list[Number] = []
    i = 0
    while i < len(toks):
        parsed = _digits_token(toks, i) or _words(toks, i)
        if parsed is None:
            i += 1
            continue
        value, end, unit, digits = parsed
        if not unit and end < len(toks):
            unit = UNIT_WORDS.get(toks[end], "")
            if toks[end] in ("k", "thousand", "grand") and not any(t in SCALES for t in toks[i:end]):
                value *= 1000
                end += 1
                unit = UNIT_WORDS.get(toks[end], "money") if end < len(toks) else "money"
        if unit == "money" and end < len(toks) and toks[end] in UNIT_WORDS:
            end += 1
        found.append(Number(value=value, start=i, end=end, unit=unit, digits=digits))
        i = end
    return found


def _digits_token(toks: list[str], i: int) -> tuple[float, int, str, str] | None:
    match = _DIGITS.fullmatch(toks[i])
    if match is None:
        return None
    dollar, number, suffix = match.groups()
    digits = number.replace(",", "")
    value = float(digits)
    unit = "money" if dollar or (i > 0 and toks[i - 1] == "$") else ""
    if suffix == "k":
        value, unit = value * 1_000, "money"
    elif suffix == "m":
        value, unit = value * 1_000_000, "money"
    end = i + 1
    if end < len(toks) and toks[end] in SCALES:
        value *= SCALES[toks[end]]
        end += 1
    if end + 2 < len(toks) and toks[end] == "and" and toks[end + 1] == "a" and toks[end + 2] in FRACTIONS:
        value += FRACTIONS[toks[end + 2]]
        end += 3
    return value, end, unit, digits


def _words(toks: list[str], i: int) -> tuple[float, int, str, str] | None:
    """Parse spelled-out number words from ``toks[i]``; None when none start there."""
    total = 0
    current = 0
    zeros = 0
    j = i
    any_word = False
    while j < len(toks):
        word = toks[j]
        following = toks[j + 1] if j + 1 < len(toks) else ""
        if word == "a" and not any_word and following in ("hundred", *SCALES):
            current = 1
        elif word in UNITS:
            if any_word and (current % 10 != 0 or 10 <= current % 100 <= 19 or (word == "oh" and current)):
                break
            if word == "oh" and not any_word and not _digit_context(toks, j):
                break
            if UNITS[word] == 0 and total + current == 0:
                zeros += 1
            current += UNITS[word]
        elif word in TEENS or word in TENS:
            if any_word and current % 100 != 0:
                break
            current += TEENS.get(word) or TENS[word]
        elif word == "hundred" and any_word:
            current = (current or 1) * 100
        elif word in SCALES and any_word:
            total += (current or 1) * SCALES[word]
            current = 0
        elif word == "and" and any_word and total + current >= 100 and following in NUMBER_WORDS:
            j += 1
            continue
        else:
            break
        any_word = True
        j += 1
    if not any_word:
        return None
    whole = total + current
    digits = "0" * zeros + (str(whole) if whole else "")
    value = float(whole)
    if j + 1 < len(toks) and toks[j] == "point" and toks[j + 1] in UNITS:
        decimals = ""
        j += 1
        while j < len(toks) and toks[j] in UNITS:
            decimals += str(UNITS[toks[j]])
            j += 1
        value = float(f"{whole}.{decimals}")
    elif j + 2 < len(toks) and toks[j] == "and" and toks[j + 1] == "a" and toks[j + 2] in FRACTIONS:
        value += FRACTIONS[toks[j + 2]]
        j += 3
    if value != whole and j < len(toks) and toks[j] in SCALES:
        value *= SCALES[toks[j]]
        j += 1
    return value, j, "", digits


def _digit_context(toks: list[str], j: int) -> bool:
    """Whether "oh" at ``j`` is a zero: next to other digit words, not the interjection."""
    neighbours = toks[max(0, j - 1) : j] + toks[j + 1 : j + 2]
    return any(t in UNITS or t in TEENS or t in TENS for t in neighbours)


def spoken_digits(text: str) -> str:
    """The digits a caller read out, concatenated: "twelve thirty four" and "one two three four" give "1234".

    "double five" gives "55".
    """
    toks = tokens(text)
    out = ""
    i = 0
    while i < len(toks):
        if toks[i] in ("double", "triple") and i + 1 < len(toks) and toks[i + 1] in UNITS:
            out += str(UNITS[toks[i + 1]]) * (2 if toks[i] == "double" else 3)
            i += 2
            continue
        found = _find(toks[i : i + 1]) if _DIGITS.fullmatch(toks[i]) else None
        if found:
            out += found[0].digits
            i += 1
            continue
        parsed = _words(toks, i)
        if parsed is None:
            i += 1
            continue
        out += parsed[3]
        i = parsed[1]
    return out


def parse_date(text: str, today: datetime.date | None = None) -> datetime.date | None:
    """A calendar date in speech: "january fifth nineteen eighty five", "the 5th of jan 1985", "1/5/1985".

    Two-digit years are taken as the latest year not after ``today``. Returns None when no
    complete, valid date is found.
    """
    today = today or datetime.date.today()
    numeric = re.search(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b", text)
    if numeric:
        return _date(int(numeric[1]), int(numeric[2]), int(numeric[3]))
    slashed = re.search(r"\b(\d{1,2})[/.-](\d{1,2})[/.-](\d{2}|\d{4})\b", text)
    if slashed:
        return _date(_year(slashed[3], today), int(slashed[1]), int(slashed[2]))
    toks = tokens(text)
    month_at = next((k for k, t in enumerate(toks) if t in MONTHS and not _may_is_verb(toks, k)), None)
    if month_at is None:
        return None
    month = MONTHS[toks[month_at]]
    day = _day_before(toks, month_at)
    year_from = month_at + 1
    if day is None:
        day, year_from = _day_after(toks, month_at + 1)
    if day is None:
        return None
    year_digits = _year_digits(_find(toks[year_from:]))
    if year_digits is None:
        return None
    return _date(_year(year_digits, today), month, day)


def _year_digits(groups: list[Number]) -> str | None:
    """The year read as adjacent number groups: "nineteen eighty five" (19, 85) or "two thousand one"."""
    if not groups or groups[0].start > 1:
        return None
    digits = groups[0].digits
    end = groups[0].end
    for group in groups[1:]:
        if len(digits) >= 4 or group.start != end:
            break
        digits += group.digits
        end = group.end
    return digits if len(digits) in (2, 4) and digits.isdigit() else None


def _may_is_verb(toks: list[str], k: int) -> bool:
    return toks[k] == "may" and (k + 1 >= len(toks) or toks[k + 1] in ("i", "you", "we", "be", "have"))


def _day_after(toks: list[str], k: int) -> tuple[int | None, int]:
    if k < len(toks) and toks[k] == "the":
        k += 1
    return _ordinal(toks, k)


def _day_before(toks: list[str], month_at: int) -> int | None:
    k = month_at - 1
    if k >= 0 and toks[k] == "of":
        k -= 1
    for start in (k - 1, k):
        if start >= 0:
            day, end = _ordinal(toks, start)
            if day is not None and end == k + 1:
                return day
    return None


def _ordinal(toks: list[str], k: int) -> tuple[int | None, int]:
    """A day of month at ``toks[k]``: "fifth", "twenty first", "5th", "5"; returns (day, end)."""
    if k >= len(toks):
        return None, k
    word = toks[k]
    if word in ORDINALS:
        return ORDINALS[word], k + 1
    if word in TENS and k + 1 < len(toks) and toks[k + 1] in ORDINALS and ORDINALS[toks[k + 1]] < 10:
        return TENS[word] + ORDINALS[toks[k + 1]], k + 2
    match = re.fullmatch(r"(\d{1,2})(st|nd|rd|th)?", word)
    if match and 1 <= int(match[1]) <= 31:
        return int(match[1]), k + 1
    if word in TENS and k + 1 < len(toks) and toks[k + 1] in UNITS and UNITS[toks[k + 1]] > 0:
        return TENS[word] + UNITS[toks[k + 1]], k + 2
    if word in UNITS and UNITS[word] > 0 and word != "oh":
        return UNITS[word], k + 1
    if word in TEENS or word in ("twenty", "thirty"):
        return (TEENS.get(word) or TENS[word]), k + 1
    return None, k


def _year(digits: str, today: datetime.date) -> int:
    year = int(digits)
    if len(digits) <= 2:
        century = today.year // 100 * 100
        year = century + year if century + year <= today.year else century - 100 + year
    return year


def _date(year: int, month: int, day: int) -> datetime.date | None:
    try:
        return datetime.date(year, month, day)
    except ValueError:
        return None
