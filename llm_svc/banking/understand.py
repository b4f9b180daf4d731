"""What a caller said, as speech-to-text wrote it: the intent and the values in it.

Patterns are checked in a fixed priority so that opposites never collide: a negated block
("don't block my card") before "unblock" before "block", and an agent request before
everything else.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from llm_svc.banking.numbers import Number, find_numbers, parse_date, spoken_digits, tokens

# Intent names, in the order they are tried.
KEEP_CARD = "keep_card"
AGENT = "agent"
UNBLOCK = "unblock"
BLOCK = "block"
TRANSACTIONS = "transactions"
BALANCE = "balance"
LOAN = "loan"
BRANCH = "branch"
CANCEL = "cancel"
GOODBYE = "goodbye"
THANKS = "thanks"
HELP = "help"
GREETING = "greeting"

_CARD = r"(card|debit card|credit card|wallet|purse)"
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        (KEEP_CARD, r"\b(don't|do not|dont|not|never|no need to)\b( \S+){0,3} (block|freeze|lock|cancel)\b"),
        (
            AGENT,
            r"\b(agent|representative|human|real person|live person|actual person|operator|customer service|"
            r"advisor|banker)\b|\b(speak|talk)\w* (to|with) (a |an )?(someone|somebody|person|people)\b",
        ),
        (
            UNBLOCK,
            r"\b(unblock|un block|unfreeze|un freeze|unlock|un lock|reactivate|re activate|re enable|"
            r"turn (it|my card|the card) back on|found (my|the) card)\w*",
        ),
        (
            BLOCK,
            rf"\b(block|freeze|lock|deactivate|disable|cancel|stop)\b( \S+){{0,3}} {_CARD}\b|"
            rf"\b{_CARD}\b.{{0,30}}\b(blocked|frozen|locked|lost|stolen|missing)\b|"
            rf"\b(lost|lose|stolen|stole|missing|misplaced|can't find|cannot find|cant find)\b.{{0,30}}\b{_CARD}\b|"
            r"\bblock (it|that|them)\b",
        ),
        (
            TRANSACTIONS,
            r"\b(transactions?|recent (activity|charges|purchases|payments|spending)|"
            r"last (\S+ )?(charges|purchases|payments)|statement|what did i (spend|buy)|spending|"
            r"account (activity|history))\b",
        ),
        (
            BALANCE,
            r"\b(balance|how much (money )?(do i have|have i got|is (there )?(in|on)|is left|i have)|"
            r"available (funds|money))\b",
        ),
        (
            LOAN,
            r"\b(loans?|mortgages?|borrow\w*|financ\w*|monthly payments?|repayments?|car payment|amortization|"
            r"quotes?)\b",
        ),
        (
            BRANCH,
            r"\b(branch(es)?|hours|opening times|locations?|located|address|nearest|closest|near me|"
            r"what time (do|does|are|is)|when (are|do|does) (you|it|the \w+) (open|close)|are you open|"
            r"open (today|tomorrow|on|until|till|at|now)|close at|atm)\b",
        ),
        (CANCEL, r"^(cancel|never mind|nevermind|forget (it|that|about it)|scratch that|stop)\b"),
        (
            GOODBYE,
            r"\b(bye|goodbye|good bye|that's all|that is all|that's it|that is it|nothing else|no thanks|"
            r"no thank you|hang up|i'm done|im done|i am done|all set|have a (good|nice|great) (day|one|night))\b",
        ),
        (THANKS, r"^(ok |okay |great |perfect )?(thanks|thank you)( (so|very) much)?$"),
        (HELP, r"\b(what can you (do|help)|what do you do|help me|options|menu|how can you help)\b|^help$"),
        (GREETING, r"^(hi|hello|hey|good (morning|afternoon|evening)|howdy|hiya)\b"),
    )
)
_YES_START = re.compile(
    r"^(yes|yeah|yep|yup|sure|correct|right|that's right|that is right|please do|go ahead|do it|ok|okay|"
    r"affirmative|absolutely|definitely|please)\b"
)
_YES_ANY = re.compile(r"\b(yes|yeah|yep|go ahead|please do|do it)\b")
_NO_START = re.compile(r"^(no|nope|nah|not now|not yet|don't|do not|dont|negative|wait|hold on)\b")
_NO_ANY = re.compile(r"\b(no|nope|don't|do not)\b")
_LAST_FOUR = re.compile(r"\b(last (four|4)( digits| numbers)?|ending (in|with)|ends (in|with))\b")
_TRANSACTION_NOUNS = {"transactions", "transaction", "charges", "purchases", "payments"}
_LOCATION = re.compile(r"\b(?:in|near|on|at|around|by)\s+(.+)$")
_LOCATION_STOP = {
    "close",
    "closes",
    "open",
    "opens",
    "today",
    "tomorrow",
    "please",
    "branch",
    "hours",
    "is",
    "are",
    "and",
    "what",
    "when",
    "the",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "weekend",
    "weekends",
}


_NOT_PLACES = {
    "your",
    "a",
    "an",
    "any",
    "my",
    "our",
    "nearest",
    "closest",
    "local",
    "which",
    "about",
    "of",
    "bank",
    "bank's",
    "for",
    "to",
    "me",
    "hours",
}


@dataclass(frozen=True)
class Utterance:
    """One caller turn, understood.

    ``intent`` is one of the intent names above or None; ``digits`` are the digits read out
    (after "last four" or "ending in" when the caller said so); ``location`` is the place
    named after "in", "near", "on" or "at".
    """

    text: str
    intent: str | None
    yes: bool
    no: bool
    numbers: tuple[Number, ...]
    date: datetime.date | None
    digits: str
    account_type: str | None
    block_reason: str
    location: str | None
    count: int | None


def normalize(text: str) -> str:
    """Lower case, plain apostrophes, punctuation dropped except what numbers need, single spaces."""
    text = text.lower().replace("\u2019", "'")
    text = re.sub(r"[^a-z0-9'$%.,/ -]+", " ", text)
    text = re.sub(r"(?<!\d)[.,](?!\d)", " ", text)
    return " ".join(text.split())


def understand(raw: str, today: datetime.date | None = None) -> Utterance:
    """Intent, yes/no, numbers, date, digits, account type, block reason, location and count in ``raw``."""
    text = normalize(raw)
    intent = next((name for name, pattern in _PATTERNS if pattern.search(text)), None)
    no = bool(_NO_START.search(text)) or (bool(_NO_ANY.search(text)) and not _YES_START.search(text))
    yes = not no and bool(_YES_START.search(text) or _YES_ANY.search(text))
    numbers = tuple(find_numbers(text))
    tail = _LAST_FOUR.split(text, maxsplit=1)
    digits_text = tail[-1] if len(tail) > 1 else text
    if len(tail) == 1:
        digits_text = re.sub(r"\b(four|4) digits\b", " ", digits_text)
    return Utterance(
        text=text,
        intent=intent,
        yes=yes,
        no=no,
        numbers=numbers,
        date=parse_date(text, today),
        digits=spoken_digits(digits_text),
        account_type=_account_type(text),
        block_reason=_block_reason(text),
        location=_location(text) if intent == BRANCH else None,
        count=_count(text, numbers),
    )


def said_last_four(text: str) -> bool:
    """Whether the caller introduced card digits ("my last four are ...", "ending in ...")."""
    return bool(_LAST_FOUR.search(normalize(text)))


def _account_type(text: str) -> str | None:
    if re.search(r"\bsavings?\b", text):
        return "savings"
    if re.search(r"\b(checking|chequing|current account)\b", text):
        return "checking"
    if re.search(r"\bcredit card (balance|account|transactions?|charges)\b", text):
        return "credit_card"
    return None


def _block_reason(text: str) -> str:
    if re.search(r"\b(stolen|stole|theft|thief|robbed|pickpocket\w*)\b", text):
        return "stolen"
    if re.search(r"\b(lost|lose|missing|misplaced|can't find|cannot find|cant find)\b", text):
        return "lost"
    if re.search(r"\b(damaged|broken|broke|cracked|bent|snapped)\b", text):
        return "damaged"
    if re.search(r"\b(fraud\w*|suspicious|didn't make|did not make|don't recognize|unauthori[sz]ed)\b", text):
        return "suspected_fraud"
    return ""


def _location(text: str) -> str | None:
    match = _LOCATION.search(text)
    if match is None:
        return _place_before_branch(text)
    words: list[str] = []
    for word in match[1].split():
        if word in _LOCATION_STOP or word in ("me", "my", "here", "you"):
            break
        words.append(word)
        if len(words) == 4:
            break
    return " ".join(words) or None


def _place_before_branch(text: str) -> str | None:
    """A place named before "branch" or "office" ("the springfield branch"): up to three words."""
    toks = text.split()
    for at, word in enumerate(toks):
        if word in ("branch", "office") and at > 0:
            words: list[str] = []
            for before in reversed(toks[max(0, at - 3) : at]):
                if before in _NOT_PLACES or before in _LOCATION_STOP:
                    break
                words.insert(0, before)
            return " ".join(words) or None
    return None


def _count(text: str, numbers: tuple[Number, ...]) -> int | None:
    toks = tokens(text)
    for number in numbers:
        if number.end < len(toks) and toks[number.end] in _TRANSACTION_NOUNS and 1 <= number.value <= 50:
            return int(number.value)
    return None
