"""Redaction of personal data before anything is stored or logged.

One pass of one regular expression finds candidates; a classifier decides what each one is:

- e-mail addresses, written (``jane.doe@bank.com``) or spoken (``jane dot doe at bank dot com``) -> ``[EMAIL]``
- card numbers: 13-19 digits, Luhn-valid, plain or grouped with spaces or dashes -> ``[CARD]``
- US social security numbers written ``123-45-6789`` or ``123 45 6789`` -> ``[SSN]``
- UK national insurance numbers (``AB 12 34 56 C``) -> ``[NATIONAL_ID]``
- phone numbers: ``+`` followed by 8-15 digits, North American shapes (``(555) 123-4567``,
  ``1-555-123-4567``, ``555-1234``), and grouped numbers of 10-11 digits starting with 0 -> ``[PHONE]``
- IBANs (``GB82 WEST 1234 5698 7654 32``) -> ``[ACCOUNT]``
- any other run of 8 or more digits, plain or grouped (account numbers, Luhn-invalid card
  numbers, unformatted SSNs) -> ``[ACCOUNT]``
- six or more spoken digits in a row (``four one one one ...``) -> ``[DIGITS]``

This is stricter than ``mesh.pii`` (which the orchestrator uses to mask logs and speech) because
the analytics store is kept for months: values are replaced whole (no last four digits kept),
and it also catches digit runs glued to letters (``ACC12345678``), runs over 17 digits, 7-digit
local numbers, IBANs, UK national insurance numbers and spoken digits and e-mails. Everything
``mesh.pii`` finds, this removes: what is left of its findings after this module's own pass (such as
speech-to-text's comma groupings, ``4,111, 1111,111``) is replaced last, and a property test holds
it to that.

Kept on purpose: runs of up to 7 digits that match no shape above (amounts, counts, years,
short references), dates (``2026-11-24``, ``24.11.2026``, ``11-24-2026``) and numbers with thousands separators
(``$250,000``), so that reports stay useful. Redaction is idempotent: the labels contain no digits.
"""

from __future__ import annotations

import enum
import functools
import json
import re
from collections.abc import Callable
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from mesh.pii import find_pii, luhn_valid

CARD = "[CARD]"
ACCOUNT = "[ACCOUNT]"
SSN = "[SSN]"
NATIONAL_ID = "[NATIONAL_ID]"
PHONE = "[PHONE]"
EMAIL = "[EMAIL]"
DIGITS = "[DIGITS]"
REDACTED = "[REDACTED]"

_DIGIT_WORDS = frozenset({"zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"})
_DIGIT_WORD = "(?:" + "|".join(sorted(_DIGIT_WORDS)) + ")"

# E-mail addresses go first, in a pass of their own: their local part may hold digits that the
# number pattern would otherwise take ("0)0@x.io").
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
_SPOKEN_EMAIL = re.compile(
    r"\b[a-z0-9._\-]+(?:\s+dot\s+[a-z0-9_\-]+)*\s+at\s+[a-z0-9\-]+(?:\s+dot\s+[a-z0-9\-]+)+\b", re.IGNORECASE
)
# Then the other candidates, in priority order (at one position the first that matches wins).
# Each is tried only when a cheap test on the text says it could match: most turns hold no
# digit and no spoken digits, and one pass of the full alternation costs tens of microseconds.
_PARTS: tuple[tuple[str, str], ...] = (
    ("iban", r"\b[A-Z]{2}\d{2}(?:\ ?[A-Z0-9]{4}){2,7}(?:\ ?[A-Z0-9]{1,3})?\b"),
    ("nino", r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\ ?\d{2}\ ?\d{2}\ ?\d{2}\ ?[A-D]\b"),
    # A digit run with single separators; it may start with "+" or "(" (phone shapes).
    ("number", r"[+(\d](?:(?<=\+)\ ?\d|(?<=\()\d|(?<=\d))(?:[\ .\-]?\(?\d|\)[\ .\-]?\d)*"),
    ("spoken", r"(?i:\b" + _DIGIT_WORD + r"(?:[\s,.\-]+" + _DIGIT_WORD + r"){5,}\b)"),  # six or more
)
# Cheap tests that gate the patterns above: IBANs and national insurance numbers start with two
# capitals and a digit; spoken digits need six digit words.
_ID_HINT = re.compile(r"[A-Z]{2} ?\d")
_MIN_SPOKEN_DIGITS = 6


@functools.lru_cache(maxsize=4)
def _pattern(enabled: tuple[bool, ...]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?P<{name}>{regex})" for (name, regex), on in zip(_PARTS, enabled, strict=True) if on))


# Dates are not personal data: 2026-11-24, 24.11.2026, 11-24-2026 (as mesh.pii reads them).
_DATE = re.compile(r"\d{4}[-.]\d{1,2}[-.]\d{1,2}|\d{1,2}[-.]\d{1,2}[-.]\d{4}")
_SSN_SHAPE = re.compile(r"\d{3}([- ])\d{2}\1\d{4}")
_NANP_SHAPE = re.compile(r"(?:\+?1[ .\-]?)?(?:\(\d{3}\)|\d{3})[ .\-]?\d{3}[ .\-]\d{4}|\d{3}[ .\-]\d{4}")
_GROUPED_ZERO = re.compile(r"0\d*[ .\-(][\d .\-()]*")
_NON_DIGIT = re.compile(r"\D")
_ANY_DIGIT = re.compile(r"\d")
_WORD_SPLIT = re.compile(r"[\s,.\-]+")
_SENSITIVE_KEY = re.compile(
    r"pin|passw|passcode|cvv|cvc|security_?code|otp|secret|ssn|social_?security|card_?num|account_?num|iban|"
    r"routing|national_?id|tax_?id|dob|date_?of_?birth|email|phone|mobile",
    re.IGNORECASE,
)


def classify_number(span: str) -> str | None:
    """The label for a digit run as written (separators included), or None to keep it.

    Args:
        span: Digits with optional single spaces, dots, dashes, brackets and a leading ``+``.
    """
    digits = _NON_DIGIT.sub("", span)
    count = len(digits)
    if count < 7 or _DATE.fullmatch(span):
        return None
    if 13 <= count <= 19 and luhn_valid(digits):
        return CARD
    if _SSN_SHAPE.fullmatch(span):
        return SSN
    if span.startswith("+") and 8 <= count <= 15:
        return PHONE
    if _NANP_SHAPE.fullmatch(span) or (count in (10, 11) and _GROUPED_ZERO.fullmatch(span)):
        return PHONE
    if count >= 8:
        return ACCOUNT
    return None


def _replace(match: re.Match[str]) -> str:
    kind = match.lastgroup
    if kind == "iban":
        return ACCOUNT
    if kind == "nino":
        return NATIONAL_ID
    if kind == "spoken":
        return DIGITS
    text = match.group()
    label = classify_number(text)
    if label is None:
        return text
    if text.startswith("(") and label is not PHONE:
        return "(" + label
    return label


# mesh.pii's kinds as labels: whatever it finds (spoken-digit groupings with commas included) goes.
_MESH_LABELS = {
    "card_number": CARD,
    "account_number": ACCOUNT,
    "national_id": SSN,
    "phone_number": PHONE,
    "email": EMAIL,
}


def _label_mesh_findings(text: str) -> str:
    """Replace what ``mesh.pii.find_pii`` finds with whole labels (it knows the speech-to-text groupings)."""
    out, last = [], 0
    for finding in find_pii(text):
        out.append(text[last : finding.start])
        out.append(_MESH_LABELS.get(finding.kind, ACCOUNT))
        last = finding.end
    return "".join(out) + text[last:] if out else text


def redact_text(text: str) -> str:
    """Replace the personal data in free text with labels such as ``[CARD]``; see the module docstring."""
    if not text:
        return text
    if "@" in text:
        text = _EMAIL.sub(EMAIL, text)
    lowered = text.lower()
    if " at " in lowered and " dot " in lowered:
        text = _SPOKEN_EMAIL.sub(EMAIL, text)
        lowered = text.lower()
    digits = _ANY_DIGIT.search(text) is not None
    if digits and ", " in text:  # speech-to-text's comma groupings ("4,111, 1111,111"), read as mesh.pii does
        text = _label_mesh_findings(text)
        digits = _ANY_DIGIT.search(text) is not None
    ids = digits and _ID_HINT.search(text) is not None
    spoken = sum(word in _DIGIT_WORDS for word in _WORD_SPLIT.split(lowered)) >= _MIN_SPOKEN_DIGITS
    if not (digits or spoken):
        return text
    enabled = (ids, ids, digits, spoken)
    text = _pattern(enabled).sub(_replace, text)
    # Last, whatever mesh.pii still finds (speech-to-text's comma groupings such as "4,111, 1111,111").
    return _label_mesh_findings(text) if digits else text


def redact_caller_id(caller_id: str) -> str:
    """Redact a caller id: personal data as in free text, then every remaining digit becomes ``#``."""
    return _ANY_DIGIT.sub("#", redact_text(caller_id))


def redact_json(text: str) -> str:
    """Redact JSON text (tool arguments) and keep it valid JSON.

    String values and keys are redacted as free text; integers that look like account, card
    or phone numbers become the label as a string; values under keys such as ``pin``,
    ``cvv``, ``password``, ``ssn`` or ``account_number`` become ``[REDACTED]`` whatever they
    hold. Text that is not JSON is redacted as free text.
    """
    if not text:
        return text
    try:
        value = json.loads(text)
    except ValueError:
        return redact_text(text)
    return json.dumps(_redact_value(value), ensure_ascii=False, separators=(",", ":"))


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        label = classify_number(str(abs(value)))
        return value if label is None else label
    if isinstance(value, list):
        return [_redact_value(item) for item in value]
    if isinstance(value, dict):
        return {
            redact_text(key): REDACTED if _SENSITIVE_KEY.search(key) else _redact_value(item)
            for key, item in value.items()
        }
    return value


# Fields redacted with something other than free-text rules, by full field name.
_SPECIAL: dict[str, Callable[[str], str]] = {
    "voicebot.v1.ToolCalled.arguments_json": redact_json,
    "voicebot.v1.CallStarted.caller_id": redact_caller_id,
}
# Idempotency and lookup keys: stored as given (callers must not put personal data in ids).
_KEPT = frozenset({"voicebot.v1.Event.event_id", "voicebot.v1.Event.session_id"})


def redact_message(message: Message) -> None:
    """Redact every string field of ``message`` and its sub-messages in place.

    Free text gets ``redact_text``; tool arguments ``redact_json``; the caller id
    ``redact_caller_id``. Event and session ids are kept as given. New string fields added to
    the protos later are redacted without a change here.
    """
    for field, value in message.ListFields():
        kind, redact = _plan(field)
        if kind is _Kind.TEXT:
            redacted = redact(value)
            if redacted != value:
                setattr(message, field.name, redacted)
        elif kind is _Kind.MESSAGE:
            redact_message(value)
        elif kind is _Kind.REPEATED_TEXT:
            getattr(message, field.name)[:] = [redact(item) for item in value]
        elif kind is _Kind.REPEATED_MESSAGE:
            for item in value:
                redact_message(item)
        elif kind is _Kind.MAP:
            _redact_map(message, field)


class _Kind(enum.Enum):
    SKIP = 0
    TEXT = 1
    REPEATED_TEXT = 2
    MESSAGE = 3
    REPEATED_MESSAGE = 4
    MAP = 5


_PLANS: dict[FieldDescriptor, tuple[_Kind, Callable[[str], str]]] = {}


def _plan(field: FieldDescriptor) -> tuple[_Kind, Callable[[str], str]]:
    """What to do with a field, worked out once per field (descriptor look-ups are not free)."""
    plan = _PLANS.get(field)
    if plan is not None:
        return plan
    redact = _SPECIAL.get(field.full_name, redact_text)
    if field.type == FieldDescriptor.TYPE_STRING and field.full_name in _KEPT:
        kind = _Kind.SKIP
    elif field.type == FieldDescriptor.TYPE_STRING:
        kind = _Kind.REPEATED_TEXT if field.is_repeated else _Kind.TEXT
    elif field.type == FieldDescriptor.TYPE_MESSAGE:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            kind = _Kind.MAP
        else:
            kind = _Kind.REPEATED_MESSAGE if field.is_repeated else _Kind.MESSAGE
    else:
        kind = _Kind.SKIP
    _PLANS[field] = plan = (kind, redact)
    return plan


def _redact_map(message: Message, field: FieldDescriptor) -> None:
    container = getattr(message, field.name)
    assert field.message_type is not None
    value_field = field.message_type.fields_by_name["value"]
    items = list(container.items())
    container.clear()
    for key, item in items:
        key = redact_text(key) if isinstance(key, str) else key
        if value_field.type == FieldDescriptor.TYPE_STRING:
            container[key] = redact_text(item)
        elif value_field.type == FieldDescriptor.TYPE_MESSAGE:
            redact_message(item)
            container[key].CopyFrom(item)
        else:
            container[key] = item
