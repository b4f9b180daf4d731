"""The cache's safety rules for a bank: what may hit, and what may be stored.

Similarity alone is not safe: "block my card" and "unblock my card" embed almost identically,
and so do "send 200 dollars" and "send 2000 dollars". A lookup may only hit an entry whose
query has the same :func:`signature`:

* the same **polarity**: for each group of opposites (block/unblock, open/close,
  increase/decrease, add/remove, start/stop, credit/debit, minimum/maximum, ...) the same pole,
  and the same **negation** (any of "not", "no", "never", "can't", "cannot", ...);
* exactly the same **numbers, amounts and dates**: digits and number words ("twenty thousand"
  is 20000, "20k" and "20,000" too), currencies, percentages, months, weekdays, relative days,
  clock times and written dates.

The signature is part of the index partition key, so an incompatible entry is never even a
candidate. :func:`refusal` says why an answer (or query) must not be stored: card numbers
(Luhn-valid digit runs), account and IBAN numbers, masked card endings, balances and amounts
tied to "your"/"you have", e-mail addresses, phone numbers, social security numbers,
answers that confirm an action on the caller's account ("your card has been blocked"), and
metadata ``cacheable=false``.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from mesh.number_words import CARDINALS, MONTHS, ORDINALS
from mesh.pii import luhn_valid

__all__ = [
    "Signature",
    "action_done",
    "luhn_valid",
    "normalize",
    "numbers",
    "personal_data",
    "polarity",
    "refusal",
    "signature",
]

# --- normalisation ------------------------------------------------------------------------

_SPACE = re.compile(r"\s+")
_TRAILING = re.compile(r"[\s?!.;,:]+$")


def normalize(text: str) -> str:
    """Canonical form of a query for entry ids: NFKC, case-folded, single spaces, no trailing punctuation."""
    text = unicodedata.normalize("NFKC", text).replace("\u2019", "'").casefold()
    return _TRAILING.sub("", _SPACE.sub(" ", text).strip())


_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?|\d+(?:[.,:/]\d+)*|[$€£¥%]")


def words(text: str) -> list[str]:
    """Lower-case word, number and currency-sign tokens of ``text``."""
    return _WORD.findall(normalize(text))


# --- polarity and negation ----------------------------------------------------------------

# Each group lists its two opposite poles ("+" words, "-" words); a word belongs to one pole of
# one group. Inflections are listed rather than stemmed so that the rule stays predictable.
_POLES: dict[str, tuple[str, str]] = {
    "block": (
        "block blocks blocked blocking lock locks locked locking freeze freezes freezing froze frozen suspend "
        "suspends suspended suspending",
        "unblock unblocks unblocked unblocking unlock unlocks unlocked unlocking unfreeze unfreezes "
        "unfreezing unfroze unfrozen unsuspend unsuspended reactivate reactivated reactivating",
    ),
    "open": (
        "open opens opened opening create creates created creating",
        "close closes closed closing closure shut shuts terminate terminates terminated terminating termination",
    ),
    "amount": (
        "increase increases increased increasing raise raises raised raising higher boost extend extends "
        "extended extending extension",
        "decrease decreases decreased decreasing lower lowers lowered lowering reduce reduces reduced "
        "reducing reduction shrink",
    ),
    "add": (
        "add adds added adding include includes included including insert",
        "remove removes removed removing removal delete deletes deleted deleting deletion exclude excludes "
        "excluded excluding",
    ),
    "start": (
        "start starts started starting begin begins began beginning activate activates activated activating "
        "activation enable enables enabled enabling resume resumes resumed resuming renew renews renewed "
        "renewing renewal switchon",
        "stop stops stopped stopping cease deactivate deactivates deactivated deactivating deactivation "
        "disable disables disabled disabling pause pauses paused pausing cancel cancels cancelled canceled "
        "cancelling canceling cancellation switchoff",
    ),
    "subscribe": (
        "subscribe subscribed enroll enrol enrolled register registered registering signup",
        "unsubscribe unsubscribed unenroll unenrol deregister deregistered optout",
    ),
    "session": ("login signin logon", "logout signout logoff"),
    "deposit": (
        "deposit deposits deposited depositing lodge",
        "withdraw withdraws withdrew withdrawn withdrawing withdrawal withdrawals",
    ),
    "card_kind": ("credit", "debit"),
    "direction": ("send sends sent sending outgoing outbound", "receive receives received receiving incoming inbound"),
    "reach": ("domestic national local locally domestically", "international internationally abroad foreign overseas"),
    "verdict": (
        "approve approves approved approving approval accept accepts accepted accepting acceptance",
        "reject rejects rejected rejecting rejection decline declines declined declining deny denies denied "
        "refuse refused refusal",
    ),
    "permission": (
        "allow allows allowed permit permits permitted",
        "forbid forbids forbidden prohibit prohibits prohibited ban banned",
    ),
    "link": (
        "link links linked linking connect connects connected connecting",
        "unlink unlinks unlinked unlinking disconnect disconnects disconnected disconnecting",
    ),
    "order": ("before earlier early prior advance", "after later afterwards late overdue"),
    "extreme": ("maximum max highest most largest biggest upper", "minimum min lowest least smallest"),
    "trade": ("buy buys bought buying purchase", "sell sells sold selling"),
    "grade": ("upgrade upgrades upgraded upgrading", "downgrade downgrades downgraded downgrading"),
    "visibility": ("show shows showing unhide reveal", "hide hides hidden hiding"),
    "segment": ("personal individual retail", "business businesses corporate company commercial sme"),
    "rate_kind": ("fixed", "variable floating tracker"),
    "channel": ("online internet app website web mobile", "counter person"),
    "period": ("next upcoming following", "last previous past preceding"),
    "compare": ("more over above exceed exceeds exceeding greater beyond", "less fewer under below within"),
    "state": ("lost", "found"),
    "tax": ("taxable taxed", "untaxed exempt"),
    "joint": ("joint", "sole"),
    "secure": ("secure safe legit legitimate", "unsafe insecure scam fraudulent"),
}

# Two-word phrases that act as one polar word ("sign in", "opt out", "turn off").
_PHRASES: dict[tuple[str, str], str] = {
    ("sign", "in"): "signin",
    ("log", "in"): "login",
    ("sign", "up"): "signup",
    ("sign", "out"): "signout",
    ("log", "out"): "logout",
    ("log", "off"): "logoff",
    ("opt", "out"): "optout",
    ("opt", "in"): "subscribe",
    ("set", "up"): "create",
    ("take", "out"): "withdraw",
    ("in", "person"): "person",
    ("turn", "on"): "switchon",
    ("switch", "on"): "switchon",
    ("turn", "off"): "switchoff",
    ("switch", "off"): "switchoff",
}

_POLE_OF: dict[str, tuple[str, str]] = {
    word: (group, pole)
    for group, (plus, minus) in _POLES.items()
    for pole, members in (("+", plus), ("-", minus))
    for word in members.split()
}

_NEGATIONS = frozenset(
    {
        "not", "no", "never", "cannot", "nothing", "none", "neither", "nor", "nobody", "nowhere", "cant", "dont",
        "doesnt", "didnt", "wont", "isnt", "arent", "wasnt", "werent", "couldnt", "shouldnt", "wouldnt", "havent",
        "hasnt", "hadnt", "mustnt", "neednt", "aint", "unable", "without",
    }
)  # fmt: skip


# Words that start like a flipped polar word but are not one.
_NOT_POLAR = frozenset({"disclose", "discloses", "disclosed", "disclosure", "disclosing"})


def _is_negation(word: str) -> bool:
    return word in _NEGATIONS or word.endswith("n't")


def _pole(word: str) -> tuple[str, str] | None:
    """The (group, pole) of ``word``; "un"/"dis"/"de" flip a listed word's pole and "re" keeps it."""
    pole = _POLE_OF.get(word)
    if pole is not None or word in _NOT_POLAR:
        return pole
    for prefix, flip in (("un", True), ("dis", True), ("de", True), ("re", False)):
        base = _POLE_OF.get(word[len(prefix) :]) if word.startswith(prefix) and len(word) > len(prefix) + 3 else None
        if base is not None:
            group, sign = base
            return (group, ("-" if sign == "+" else "+") if flip else sign)
    return None


def polarity(text: str) -> tuple[bool, frozenset[tuple[str, str]]]:
    """Negation flag and the (group, pole) pairs of ``text``'s polar words."""
    tokens = words(text)
    negated = any(_is_negation(t) for t in tokens)
    poles: set[tuple[str, str]] = set()
    i = 0
    while i < len(tokens):
        phrase = _PHRASES.get((tokens[i], tokens[i + 1])) if i + 1 < len(tokens) else None
        if phrase is not None:
            pole = _pole(phrase)
            if pole is not None:
                poles.add(pole)
            i += 2
            continue
        pole = _pole(tokens[i])
        if pole is not None:
            poles.add(pole)
        i += 1
    return negated, frozenset(poles)


# --- numbers, amounts and dates -----------------------------------------------------------

# "oh" is an exclamation in a free question, not a zero.
_UNITS = {word: value for word, value in CARDINALS.items() if word != "oh"}
_ORDINALS = ORDINALS
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000, "dozen": 12}
_SUFFIX_SCALES = {"k": 1000, "m": 1_000_000, "mn": 1_000_000, "bn": 1_000_000_000, "b": 1_000_000_000}
# "apr" (the rate) and "mar" are words of their own in banking questions, not months.
_MONTHS = {word: value for word, value in MONTHS.items() if word not in ("apr", "mar")}
_WEEKDAYS = {
    "monday": "mon", "mondays": "mon", "tuesday": "tue", "tuesdays": "tue", "wednesday": "wed",
    "wednesdays": "wed", "thursday": "thu", "thursdays": "thu", "friday": "fri", "fridays": "fri",
    "saturday": "sat", "saturdays": "sat", "sunday": "sun", "sundays": "sun", "weekend": "weekend",
    "weekends": "weekend", "weekday": "weekday", "weekdays": "weekday", "holiday": "holiday",
    "holidays": "holiday", "today": "today", "tonight": "today", "tomorrow": "tomorrow",
    "yesterday": "yesterday", "midnight": "midnight", "noon": "noon", "midday": "noon",
}  # fmt: skip
_CURRENCIES = {
    "$": "usd", "dollar": "usd", "dollars": "usd", "usd": "usd", "bucks": "usd", "€": "eur", "euro": "eur",
    "euros": "eur", "eur": "eur", "£": "gbp", "pound": "gbp", "pounds": "gbp", "gbp": "gbp", "quid": "gbp",
    "sterling": "gbp", "¥": "jpy", "yen": "jpy", "jpy": "jpy", "franc": "chf", "francs": "chf", "chf": "chf",
    "cent": "cent", "cents": "cent", "pence": "pence", "p": "pence",
}  # fmt: skip
# "a new one", "which one": after these words "one" is a pronoun, not a number.
_ONE_PRONOUN = frozenset(
    {"a", "the", "which", "this", "that", "new", "another", "each", "any", "every", "old", "other", "same", "right"}
)
_PERCENT = {"%", "percent", "percentage", "pct"}
_AMPM = {"am": "am", "a.m": "am", "pm": "pm", "p.m": "pm"}
# "may" is a month only beside a number or after a preposition ("in May"), not "may I".
_MAY_CONTEXT = {"in", "of", "since", "until", "till", "by", "before", "after", "during", "from", "through"}

_NUMERIC = re.compile(
    r"(?P<date>\b\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}\b)"
    r"|(?P<time>\b\d{1,2}:\d{2}\b)"
    r"|(?P<num>\d+(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(?P<suffix>k|mn|m|bn|b|st|nd|rd|th|am|pm)?\b"
    r"|(?P<sym>[$€£¥%])"
    r"|(?P<word>[a-z]+(?:\.[a-z])?)"
)


def _canonical(number: Decimal) -> str:
    text = format(number.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _word_at(tokens: list[re.Match[str]], index: int) -> str | None:
    return tokens[index].group("word") if 0 <= index < len(tokens) else None


def _read_number_words(tokens: list[re.Match[str]], index: int) -> tuple[int, int]:
    """Value of the number-word run starting at ``index`` ("a hundred and twenty") and the index after it."""
    total = 0
    current = 0
    if _word_at(tokens, index) == "a":
        current = 1
        index += 1
    while index < len(tokens):
        word = _word_at(tokens, index)
        if word in _UNITS:
            current += _UNITS[word]
        elif word in _SCALES:
            scale = _SCALES[word]
            if scale >= 1000:
                total += max(current, 1) * scale
                current = 0
            else:
                current = max(current, 1) * scale
        elif word == "and" and _word_at(tokens, index + 1) in _UNITS:
            pass
        else:
            break
        index += 1
    return total + current, index


def _may_is_month(tokens: list[re.Match[str]], index: int) -> bool:
    before = tokens[index - 1] if index > 0 else None
    after = tokens[index + 1] if index + 1 < len(tokens) else None
    if before is not None and (before.group("num") is not None or before.group("word") in _MAY_CONTEXT):
        return True
    return after is not None and after.group("num") is not None


def numbers(text: str) -> frozenset[str]:
    """Numbers, amounts and dates in ``text`` as comparable tokens.

    Values are canonical ("20,000", "20k", "20 thousand" and "twenty thousand" all give
    ``n:20000``); units, currencies and date parts are tokens of their own (``cur:usd``,
    ``unit:%``, ``month:3``, ``day:mon``, ``time:17:00``, ``date:5/3/2024``, ``ampm:pm``).
    """
    tokens = list(_NUMERIC.finditer(normalize(text)))
    found: set[str] = set()
    index = 0
    while index < len(tokens):
        match = tokens[index]
        word = match.group("word")
        if word == "one" and _word_at(tokens, index - 1) in _ONE_PRONOUN:
            index += 1
            continue
        if word in _UNITS or word in _SCALES or (word == "a" and _word_at(tokens, index + 1) in _SCALES):
            spelled, index = _read_number_words(tokens, index)
            found.add(f"n:{spelled}")
            continue
        index += 1
        if match.group("date") is not None:
            parts = re.split(r"[/.-]", match.group("date"))
            found.add("date:" + "/".join(str(int(p)) for p in parts))
        elif match.group("time") is not None:
            hour, minute = match.group("time").split(":")
            found.add(f"time:{int(hour)}:{minute}")
        elif match.group("num") is not None:
            try:
                value = Decimal(match.group("num").replace(",", ""))
            except InvalidOperation:  # pragma: no cover - the pattern only admits decimals
                continue
            suffix = match.group("suffix") or ""
            if suffix in _SUFFIX_SCALES:
                value *= _SUFFIX_SCALES[suffix]
            elif suffix in ("am", "pm"):
                found.add(f"ampm:{suffix}")
            scale_word = _word_at(tokens, index)
            if scale_word in _SCALES and scale_word != "dozen":
                value *= _SCALES[scale_word]
                index += 1
            found.add(f"n:{_canonical(value)}")
        elif match.group("sym") is not None:
            sym = match.group("sym")
            found.add("unit:%" if sym == "%" else f"cur:{_CURRENCIES[sym]}")
        elif word is not None:
            if word in _ORDINALS:
                found.add(f"n:{_ORDINALS[word]}")
            elif word in _CURRENCIES and word != "p":
                found.add(f"cur:{_CURRENCIES[word]}")
            elif word in _PERCENT and index >= 2 and tokens[index - 2].group("num") is not None:
                found.add("unit:%")
            elif word in _AMPM and index >= 2 and tokens[index - 2].group("num") is not None:
                found.add(f"ampm:{_AMPM[word]}")
            elif word in _WEEKDAYS:
                found.add(f"day:{_WEEKDAYS[word]}")
            elif word in _MONTHS and (word != "may" or _may_is_month(tokens, index - 1)):
                found.add(f"month:{_MONTHS[word]}")
    return frozenset(found)


# --- the signature ------------------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    """What two queries must share for one to hit the other's entry."""

    negated: bool
    poles: frozenset[tuple[str, str]]
    numbers: frozenset[str]

    @property
    def key(self) -> str:
        """A short stable string for the index partition key."""
        parts = ["neg" if self.negated else "pos"]
        parts.extend(f"{group}{pole}" for group, pole in sorted(self.poles))
        parts.extend(sorted(self.numbers))
        return hashlib.sha1("|".join(parts).encode(), usedforsecurity=False).hexdigest()[:16]


def signature(query: str) -> Signature:
    """The polarity, negation and numbers of ``query``."""
    negated, poles = polarity(query)
    return Signature(negated, poles, numbers(query))


# --- what must never be stored ------------------------------------------------------------

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){2,7}(?:\s?[A-Z0-9]{1,4})?\b")
_SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
_SORT_CODE = re.compile(r"\bsort code\W{0,3}\d{2}[\s-]\d{2}[\s-]\d{2}\b", re.IGNORECASE)
# Digit runs that are dates, year ranges or opening-time ranges, not identifiers.
_NOT_AN_ID = re.compile(
    r"^(?:\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}|\d{4}\s?-\s?\d{2,4}|\d{1,2}[.:]\d{2}\s?-\s?\d{1,2}[.:]\d{2})$"
)
_CURRENCY_NEAR = re.compile(r"[$€£¥]\s?$|^\s?(?:[$€£¥]|dollars|euros|pounds|usd|eur|gbp)", re.IGNORECASE)
# Digit runs that may be broken by single spaces, dots or dashes, optionally with +country and (area).
_DIGIT_RUN = re.compile(r"(?<![\w.,])(\+?\(?\d[\d\s().-]*\d)(?![\w,]|\.\d)")
_MASKED = re.compile(
    r"(?:\*{2,}|x{3,}|•{2,})[\s-]?\d{2,4}\b|\b(?:ending|ends|finishing) (?:in|with) \d{2,4}\b", re.IGNORECASE
)
_ACCOUNT_NO = re.compile(r"\b(?:account|acct|a/c|customer|member|policy|loan)\s*(?:number|no\.?|#)\W{0,3}\d{4,}", re.I)
_MONEY = r"(?:[$€£¥]\s?\d[\d,]*(?:\.\d+)?|\d[\d,]*(?:\.\d+)?\s?(?:dollars|euros|pounds|usd|eur|gbp|[$€£¥]))"
_BALANCE = re.compile(
    r"\byour\b(?:\s+[\w-]+){0,4}?\s+(?:balance|credit limit|limit|overdraft|debt|amount due|payment due|"
    r"minimum payment|statement balance|available (?:credit|funds|balance)|outstanding(?: balance| amount)?|"
    r"(?:last|latest|recent|next|pending) (?:payment|transaction|deposit|transfer|purchase|withdrawal|charge|"
    r"bill|instalment|installment))\b[^.!?\n]{0,30}?(?:\bis\b|\bwas\b|\bof\b|\bstands at\b|\bamounts to\b|"
    r"\btotals?\b|:|=)\s*(?:now\s+|currently\s+|only\s+)?" + _MONEY,
    re.IGNORECASE,
)
_YOU_HAVE = re.compile(
    r"\byou (?:currently |still |now )?(?:have|owe|spent|paid|received|were charged)\s+(?:only\s+|about\s+)?" + _MONEY,
    re.IGNORECASE,
)


_ACTION_VERBS = (
    r"(?:blocked|unblocked|frozen|unfrozen|froze|unfroze|sent|transferred|cancell?ed|canceled|paid|moved|scheduled|"
    r"set up|opened|closed|ordered|activated|deactivated|updated|changed|increased|decreased|raised|lowered|reset|"
    r"disputed|refunded|locked|unlocked|requested|submitted|added|removed|reported|replaced|credited|debited|"
    r"approved|declined|renewed|applied)"
)
# A confirmation of something done to this caller's account: right for them, wrong for anyone else.
_ACTION_DONE = re.compile(
    rf"\b(?:i|we)(?:'ve| have| just| now| already)*\s+(?:\w+\s+){{0,2}}?{_ACTION_VERBS}\b"
    rf"|\byour\s+(?:[\w-]+\s+){{0,3}}?(?:has|have|was|were|is now|are now)\s+(?:been\s+|now\s+|successfully\s+)*"
    rf"{_ACTION_VERBS}\b",
    re.IGNORECASE,
)


_CONDITIONAL = re.compile(r"\b(?:if|when|whenever|once|after|until|unless|before)\b[^.!?;]*$", re.IGNORECASE)


def action_done(text: str) -> bool:
    """True when ``text`` confirms an action done to the caller's account ("your card has been blocked").

    Conditions ("if your payment was declined, ...") describe a rule, not this caller, and pass.
    Only answers are checked: questions say "I" all the time ("how do I reset my PIN?").
    """
    return any(not _CONDITIONAL.search(text[: m.start()]) for m in _ACTION_DONE.finditer(text))


def _contact_allowed(value: str, allowed: Iterable[str]) -> bool:
    digits = re.sub(r"\D", "", value)
    for item in allowed:
        if "@" in item:
            if item.strip().casefold() == value.strip().casefold():
                return True
        elif digits and re.sub(r"\D", "", item) == digits:
            return True
    return False


def personal_data(text: str, allowed_contacts: Iterable[str] = ()) -> str | None:
    """What personal or account-specific data ``text`` holds, or None.

    Args:
        text: An answer or query.
        allowed_contacts: Public phone numbers and e-mail addresses (the bank's own) that do
            not count.

    Returns:
        A short reason such as "a card number", or None when nothing was found.
    """
    allowed = tuple(allowed_contacts)
    for match in _EMAIL.finditer(text):
        if not _contact_allowed(match.group(0), allowed):
            return "an e-mail address"
    if _IBAN.search(text):
        return "an IBAN account number"
    if _SSN.search(text):
        return "a social security number"
    if _SORT_CODE.search(text):
        return "a sort code"
    if _MASKED.search(text):
        return "a masked card or account number"
    if _ACCOUNT_NO.search(text):
        return "an account number"
    for match in _DIGIT_RUN.finditer(text):
        run = match.group(1).strip()
        digits = re.sub(r"\D", "", run)
        if len(digits) < 7 or _NOT_AN_ID.match(run):
            continue
        if _CURRENCY_NEAR.search(text[max(0, match.start(1) - 2) : match.start(1)]) or _CURRENCY_NEAR.search(
            text[match.end(1) : match.end(1) + 8]
        ):
            continue
        if _contact_allowed(run, allowed):
            continue
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            return "a card number"
        separated = bool(re.search(r"[\s().-]", run)) or run.startswith("+")
        if separated and len(digits) <= 15:
            return "a phone number"
        if len(digits) >= 8:
            return "an account number"
        if separated:
            return "a phone number"
    if _BALANCE.search(text) or _YOU_HAVE.search(text):
        return "a balance or amount tied to the customer"
    return None


def refusal(query: str, answer: str, metadata: Mapping[str, str], allowed_contacts: Iterable[str] = ()) -> str | None:
    """Why a question/answer pair must not be cached, or None when it may be.

    The reason names the field and what was found, e.g. "answer holds a card number".
    """
    if metadata.get("cacheable", "").strip().lower() == "false":
        return "metadata marks the entry not cacheable (cacheable=false)"
    allowed = tuple(allowed_contacts)
    found = personal_data(answer, allowed)
    if found is not None:
        return f"answer holds {found}"
    if action_done(answer):
        return "answer confirms an action on the customer's account"
    found = personal_data(query, allowed)
    if found is not None:
        return f"query holds {found}"
    return None
