"""Text normalisation for speech: what a banking voicebot writes, as a person would say it.

``normalize("Your card 4111 1111 1111 1234 was charged $1,234.56 on 03/15/2024.")`` gives
"Your card ending in one two three four was charged one thousand two hundred thirty-four dollars
and fifty-six cents on March fifteenth twenty twenty-four."

Rules, in the order they apply (earlier rules see the raw digits, later ones what is left):

1. Markdown emphasis, code marks, headings and bullets are dropped.
2. Card, account and social security numbers (as ``mesh.pii`` finds them: Luhn-valid 13-19
   digit cards, 8-17 digit accounts, with or without separators; any other run of 8 or more
   digits too) and numbers already masked like ``****1234`` are read as "ending in" and their
   last four digits one by one. The other digits never reach the spoken text. Digits after
   "ending in" or "last four" are read one by one.
3. Dates: ISO ``2024-03-15``, US ``03/15/2024`` (day first when the first field is over 12),
   ``March 15, 2024``, ``15 March 2024``, ``Mar. 15th``.
4. Phone numbers (``555-123-4567``, ``(555) 123-4567``, ``1-800-555-0199``) digit by digit.
5. Ranges ``$100-$200`` and ``5-10`` become "to".
6. Currency: ``$``, ``€``, ``£`` and ``USD``/``EUR``/``GBP`` before or after the amount, with
   cents, scale words (``$1.5 million``, ``$2M``) and a sign.
7. Times (``9:30 a.m.``), percentages, ordinals (``22nd``), then every other number:
   thousands separators, decimals ("three point one four"), signs, leading zeros read digit by
   digit.
8. Abbreviations ("Dr." -> "Doctor", "e.g." -> "for example"), initialisms ("U.S." -> "U S")
   and symbols ("&" -> "and").

Everything is pure Python and runs in microseconds per sentence, on the event loop.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from mesh.pii import find_pii


def _wordlist(text: str) -> list[str]:
    return text.split()


_ONES = _wordlist(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen"
)
_TENS = _wordlist("_ _ twenty thirty forty fifty sixty seventy eighty ninety")
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (10**3, "thousand"))
_ORDINAL_WORDS = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}
MONTHS = _wordlist("January February March April May June July August September October November December")
_MONTH_BY_PREFIX = {name[:3].lower(): name for name in MONTHS} | {"sept": "September"}


def cardinal(n: int) -> str:
    """A whole number in words: 1234 -> "one thousand two hundred thirty-four".

    Numbers of a quadrillion or more are read digit by digit.
    """
    if n < 0:
        return "minus " + cardinal(-n)
    if n >= 10**15:
        return digits(str(n))
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{_ONES[hundreds]} hundred" + (f" {cardinal(rest)}" if rest else "")
    for value, name in _SCALES:
        if n >= value:
            head, rest = divmod(n, value)
            return f"{cardinal(head)} {name}" + (f" {cardinal(rest)}" if rest else "")
    raise AssertionError("unreachable")


def ordinal(n: int) -> str:
    """A whole number as an ordinal: 22 -> "twenty-second"."""
    words = cardinal(n)
    head, sep, last = words.rpartition("-" if "-" in words.rsplit(" ", 1)[-1] else " ")
    if last in _ORDINAL_WORDS:
        last = _ORDINAL_WORDS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return head + sep + last


def year(n: int) -> str:
    """A year as people say it: 1999 -> "nineteen ninety-nine", 2005 -> "two thousand five"."""
    if n < 1000 or n >= 10000 or n % 1000 == 0 or 2000 <= n < 2010:
        return cardinal(n)
    head, tail = divmod(n, 100)
    if tail == 0:
        return f"{cardinal(head)} hundred"
    return f"{cardinal(head)} {cardinal(tail) if tail >= 10 else 'oh ' + _ONES[tail]}"


def digits(text: str) -> str:
    """Each digit of ``text`` as a word, other characters dropped: "0199" -> "zero one nine nine"."""
    return " ".join(_ONES[int(c)] for c in text if c.isdigit())


def decimal(text: str) -> str:
    """A number written with optional separators and decimals: "1,234.05" -> "... point zero five"."""
    whole, _, frac = text.replace(",", "").partition(".")
    words = cardinal(int(whole or "0"))
    return f"{words} point {digits(frac)}" if frac else words


# --- 1. markdown -------------------------------------------------------------------------------

_EMPHASIS = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_MARKDOWN = re.compile(r"`+|^\s{0,3}#{1,6}\s+|^\s*[-*+]\s+", re.MULTILINE)
_UNICODE = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": ", ",
        "\u2022": "*",
        "\u00a0": " ",
        "\u202f": " ",
    }
)

# --- 2. card and account numbers -----------------------------------------------------------------

_ENDING_CONTEXT = re.compile(
    r"(?:ending|ends)\s+(?:in|with)\s*:?\s*$|last\s+(?:four|4)(?:\s+digits)?(?:\s+(?:are|is|of))?\s*:?\s*$", re.I
)
_MASKED = re.compile(r"(?<![\w*•])(?:[*xX•#]{2,}[\s-]?)+(\d{4})\b")
# What mesh.pii does not classify but is still too long to be anything but an identifier.
_LONG_DIGITS = re.compile(r"(?<![\w$€£.,])\d{8,}(?![\w]|[.,]\d)")
_SECRET_KINDS = frozenset({"card_number", "account_number", "national_id"})
_AFTER_ENDING = re.compile(r"\b(\d{4})\b")


def _ending_in(text: str, start: int, last4: str) -> str:
    spoken = digits(last4)
    return spoken if _ENDING_CONTEXT.search(text[:start]) else f"ending in {spoken}"


def _last4(number: str) -> str:
    return re.sub(r"\D", "", number)[-4:]


def _accounts(text: str) -> str:
    text = _MASKED.sub(lambda m: _ending_in(m.string, m.start(), m.group(1)), text)
    pieces: list[str] = []
    last = 0
    for found in find_pii(text):
        if found.kind not in _SECRET_KINDS or text[found.start - 1 : found.start] in ("$", "€", "£"):
            continue
        pieces += [text[last : found.start], _ending_in(text, found.start, _last4(text[found.start : found.end]))]
        last = found.end
    text = "".join(pieces) + text[last:]
    text = _LONG_DIGITS.sub(lambda m: _ending_in(m.string, m.start(), _last4(m.group())), text)

    def after_ending(m: re.Match[str]) -> str:
        return digits(m.group(1)) if _ENDING_CONTEXT.search(m.string[: m.start()]) else m.group()

    return _AFTER_ENDING.sub(after_ending, text)


# --- 3. dates ----------------------------------------------------------------------------------

_MONTH_WORD = r"(?P<month>Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"  # noqa: E501
_DAY = r"(?P<day>[0-3]?\d)(?:st|nd|rd|th)?"
_ISO_DATE = re.compile(r"\b(?P<year>\d{4})-(?P<month>[01]\d)-(?P<day>[0-3]\d)\b")
_SLASH_DATE = re.compile(r"\b(?P<a>[01]?\d|[0-3]\d)/(?P<b>[0-3]?\d)/(?P<year>\d{4}|\d{2})\b")
_MONTH_DAY = re.compile(rf"\b{_MONTH_WORD}\s+{_DAY}\b(?:,?\s+(?P<year>\d{{4}})\b)?")
_DAY_MONTH = re.compile(rf"\b{_DAY}\s+(?:of\s+)?{_MONTH_WORD}(?:,?\s+(?P<year>\d{{4}})\b)?")


def _date_words(month: int, day: int, year_text: str | None, *, day_first: bool = False) -> str | None:
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    name = MONTHS[month - 1]
    spoken = f"the {ordinal(day)} of {name}" if day_first else f"{name} {ordinal(day)}"
    if year_text:
        value = int(year_text)
        if len(year_text) == 2:
            value += 2000 if value < 70 else 1900
        spoken += f" {year(value)}"
    return spoken


def _dates(text: str) -> str:
    def iso(m: re.Match[str]) -> str:
        return _date_words(int(m["month"]), int(m["day"]), m["year"]) or m.group()

    def slash(m: re.Match[str]) -> str:
        a, b = int(m["a"]), int(m["b"])
        month, day = (b, a) if a > 12 else (a, b)
        return _date_words(month, day, m["year"]) or m.group()

    def month_day(m: re.Match[str]) -> str:
        month = MONTHS.index(_MONTH_BY_PREFIX[m["month"][:3].lower()]) + 1
        return _date_words(month, int(m["day"]), m["year"]) or m.group()

    def day_month(m: re.Match[str]) -> str:
        month = MONTHS.index(_MONTH_BY_PREFIX[m["month"][:3].lower()]) + 1
        return _date_words(month, int(m["day"]), m["year"], day_first=True) or m.group()

    text = _ISO_DATE.sub(iso, text)
    text = _SLASH_DATE.sub(slash, text)
    text = _MONTH_DAY.sub(month_day, text)
    return _DAY_MONTH.sub(day_month, text)


# --- 4. phone numbers ----------------------------------------------------------------------------

_PHONE = re.compile(
    r"(?<![\w-])(?:(?P<cc>\+?1)[ .-])?(?:\((?P<area1>\d{3})\)\s?|(?P<area2>\d{3})[ .-])"
    r"(?P<ex>\d{3})[ .-](?P<line>\d{4})\b"
)


def _phones(text: str) -> str:
    def phone(m: re.Match[str]) -> str:
        parts = [m["cc"], m["area1"] or m["area2"], m["ex"], m["line"]]
        return ", ".join(digits(p) for p in parts if p)

    return _PHONE.sub(phone, text)


# --- 5-6. ranges and currency ------------------------------------------------------------------------

_RANGE = re.compile(r"(?<=\d)\s?-\s?(?=[$€£]?\d)")
_CURRENCIES = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "€": ("euro", "euros", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
}
_CODES = {"USD": "$", "EUR": "€", "GBP": "£"}
_AMOUNT = r"(?P<amount>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
_SCALE = r"(?:\s?(?P<scale>thousand|million|billion|trillion|[kKmMbB]n?)\b)?"
_CURRENCY_BEFORE = re.compile(rf"(?P<sign>-)?(?P<symbol>[$€£]|\b(?:USD|EUR|GBP)\s?)\s?{_AMOUNT}{_SCALE}")
_CURRENCY_AFTER = re.compile(rf"(?<![\w.,]){_AMOUNT}{_SCALE}\s?(?P<code>USD|EUR|GBP)\b")
_SCALE_WORDS = {"k": "thousand", "m": "million", "b": "billion", "bn": "billion"}


def money(amount: str, symbol: str, scale: str | None = None, *, negative: bool = False) -> str:
    """An amount of money in words: ("1,234.56", "$") -> "one thousand ... dollars and fifty-six cents"."""
    one, many, minor_one, minor_many = _CURRENCIES[symbol]
    sign = "minus " if negative else ""
    whole_text, _, frac = amount.replace(",", "").partition(".")
    whole = int(whole_text)
    if scale:
        scale_word = _SCALE_WORDS.get(scale.lower(), scale.lower())
        return f"{sign}{decimal(amount)} {scale_word} {many}"
    if len(frac) > 2:
        return f"{sign}{decimal(amount)} {many}"
    minor = int(frac.ljust(2, "0")) if frac else 0
    major_words = f"{cardinal(whole)} {one if whole == 1 else many}"
    minor_words = f"{cardinal(minor)} {minor_one if minor == 1 else minor_many}"
    if minor == 0:
        return sign + major_words
    if whole == 0:
        return sign + minor_words
    return f"{sign}{major_words} and {minor_words}"


def _currency(text: str) -> str:
    def before(m: re.Match[str]) -> str:
        symbol = m["symbol"].strip()
        return money(m["amount"], _CODES.get(symbol, symbol), m["scale"], negative=bool(m["sign"]))

    def after(m: re.Match[str]) -> str:
        return money(m["amount"], _CODES[m["code"]], m["scale"])

    text = _CURRENCY_BEFORE.sub(before, text)
    return _CURRENCY_AFTER.sub(after, text)


# --- 7. times, percentages, ordinals, numbers -------------------------------------------------------

_AMPM = r"\s?(?P<ampm>[aApP])\.?\s?[mM]\b\.?"
_TIME = re.compile(rf"\b(?P<hour>[01]?\d|2[0-3]):(?P<minute>[0-5]\d)(?:{_AMPM})?")
_HOUR_AMPM = re.compile(rf"\b(?P<hour>1[0-2]|0?[1-9])(?P<minute>){_AMPM}")
_NUMBER_SIGN = re.compile(r"(?<![\w.])(?:No\.|#)\s?(?=\d)")
_PERCENT = re.compile(r"(?P<sign>-)?(?P<number>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)\s?%")
_ORDINAL = re.compile(r"\b(?P<number>\d{1,3}(?:,\d{3})*|\d+)(?:st|nd|rd|th)\b", re.I)
_NUMBER = re.compile(r"(?<![\w.])(?P<sign>-)?(?P<number>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(?![\w])")
_NUMBER_IN_WORD = re.compile(r"\d+")


def _time(m: re.Match[str]) -> str:
    hour, minute = int(m["hour"]), int(m["minute"] or 0)
    ampm = m["ampm"]
    if minute == 0:
        spoken = cardinal(hour) + ("" if ampm else " o'clock")
    elif minute < 10:
        spoken = f"{cardinal(hour)} oh {cardinal(minute)}"
    else:
        spoken = f"{cardinal(hour)} {cardinal(minute)}"
    if ampm:
        spoken += f" {ampm.lower()} m"
    # A time that ended the sentence keeps its full stop ("at 9 a.m." + end).
    return spoken + ("." if m.group().endswith(".") and m.end() == len(m.string.rstrip()) else "")


def _number(m: re.Match[str]) -> str:
    number = m["number"]
    sign = "minus " if m["sign"] else ""
    if len(number) > 1 and number.startswith("0") and "." not in number:
        return sign + digits(number)
    return sign + decimal(number)


def _numbers(text: str) -> str:
    text = _NUMBER_SIGN.sub("number ", text)
    text = _TIME.sub(_time, text)
    text = _HOUR_AMPM.sub(_time, text)
    text = _PERCENT.sub(lambda m: ("minus " if m["sign"] else "") + decimal(m["number"]) + " percent", text)
    text = _ORDINAL.sub(lambda m: ordinal(int(m["number"].replace(",", ""))), text)
    text = _NUMBER.sub(_number, text)
    # Digits glued to letters ("24h", "A320") are read as cardinals with spaces around them.
    return _NUMBER_IN_WORD.sub(lambda m: f" {cardinal(int(m.group()))} ", text)


# --- 8. abbreviations, initialisms, symbols --------------------------------------------------------

ABBREVIATIONS: dict[str, str] = {
    "Dr.": "Doctor",
    "Mr.": "Mister",
    "Mrs.": "Missus",
    "Ms.": "Miz",
    "Prof.": "Professor",
    "Jr.": "Junior",
    "Sr.": "Senior",
    "Ave.": "Avenue",
    "Blvd.": "Boulevard",
    "Apt.": "Apartment",
    "Dept.": "Department",
    "Inc.": "Incorporated",
    "Ltd.": "Limited",
    "Corp.": "Corporation",
    "Co.": "Company",
    "vs.": "versus",
    "etc.": "et cetera",
    "approx.": "approximately",
    "est.": "estimated",
    "min.": "minimum",
    "max.": "maximum",
    "e.g.": "for example",
    "i.e.": "that is",
    "a.k.a.": "also known as",
    "Ph.D.": "P H D",
}
_ABBREVIATION = re.compile(
    r"(?<![\w.])(" + "|".join(re.escape(a) for a in sorted(ABBREVIATIONS, key=len, reverse=True)) + r")(?=\s|$|[,;:)])"
)
_INITIALISM = re.compile(r"(?<![\w.])((?:[A-Za-z]\.){2,})(?=\s|$|[,;:)])")
_SYMBOLS = (
    (re.compile(r"\s*&\s*"), " and "),
    (re.compile(r"\band/or\b"), "and or"),
    (re.compile(r"(?<=\w)/(?=[A-Za-z])"), " or "),
    (re.compile(r"\s@\s"), " at "),
    (re.compile(r"(?<=\s)\+(?=\s)"), "plus"),
    (re.compile(r"[*_~<>|\\^{}\[\]]"), " "),
)


def _keep_stop(m: re.Match[str], spoken: str) -> str:
    """Keep a full stop that also ends the text (the abbreviation closed the sentence)."""
    return spoken + ("." if m.end() == len(m.string.rstrip()) and m.group().endswith(".") else "")


def _abbreviations(text: str) -> str:
    text = _ABBREVIATION.sub(lambda m: _keep_stop(m, ABBREVIATIONS[m.group(1)]), text)
    text = _INITIALISM.sub(lambda m: _keep_stop(m, " ".join(m.group(1).replace(".", ""))), text)
    for pattern, replacement in _SYMBOLS:
        text = pattern.sub(replacement, text)
    return text


def _ranges(text: str) -> str:
    return _RANGE.sub(" to ", text)


_STEPS: tuple[Callable[[str], str], ...] = (_accounts, _dates, _phones, _ranges, _currency, _numbers, _abbreviations)
_SPACES = re.compile(r"[ \t]+")
_SPACE_BEFORE_PUNCT = re.compile(r" +(?=[,.;:!?])")
_SPEAKABLE = re.compile(r"[^\W_]")


_CONTROLS = str.maketrans({c: " " for c in [*range(0x20), *range(0x7F, 0xA0)] if chr(c) not in "\t\n\r"})
"""Control characters make no sound, and a NUL breaks espeak-ng's C strings (ValueError): spaces instead."""


def normalize(text: str) -> str:
    """Rewrite ``text`` so a TTS engine reads it as a person would; see the module docstring."""
    text = unicodedata.normalize("NFKC", text.translate(_CONTROLS).translate(_UNICODE))
    text = _MARKDOWN.sub("", _EMPHASIS.sub(r"\2", text))
    for step in _STEPS:
        text = step(text)
    text = _SPACE_BEFORE_PUNCT.sub("", _SPACES.sub(" ", text))
    return "\n".join(line.strip() for line in text.splitlines()).strip()


def speakable(text: str) -> bool:
    """True when ``text`` holds at least one letter or digit (punctuation alone makes no sound)."""
    return bool(_SPEAKABLE.search(text))
