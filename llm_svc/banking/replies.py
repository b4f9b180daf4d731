"""Spoken answers phrased from tool results (the JSON text of ROLE_TOOL messages).

Results belong to the orchestrator's tools; the phrasing reads the fields documented in
``orchestrator/tools/definitions.py`` and falls back to generic sentences when one is absent,
so an answer is always speakable.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from typing import Any

ANYTHING_ELSE = "Is there anything else I can help you with?"

Result = Mapping[str, Any]


def money(value: Any) -> str:
    """Dollars as written for speech: "$20,000", "$386.66"."""
    amount = float(value)
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    if amount == int(amount):
        return f"{sign}${int(amount):,}"
    return f"{sign}${amount:,.2f}"


def percent(value: float) -> str:
    """A rate as written for speech: "6%", "2.5%"."""
    return f"{value:g}%"


def term(months: int) -> str:
    """A loan term: "5 years", "1 year", "18 months"."""
    if months % 12 == 0:
        years = months // 12
        return f"{years} year" if years == 1 else f"{years} years"
    return f"{months} months"


def spoken_date(text: str) -> str:
    """An ISO date as "March 3"; anything else unchanged."""
    try:
        day = datetime.date.fromisoformat(str(text)[:10])
    except ValueError:
        return str(text)
    return f"{day.strftime('%B')} {day.day}"


def phrase(name: str, arguments: Mapping[str, Any], result: Result) -> str:
    """The answer to speak after tool ``name`` called with ``arguments`` returned ``result``."""
    phraser = _PHRASERS.get(name)
    if phraser is None:
        message = result.get("message") or result.get("summary")
        return f"{message} {ANYTHING_ELSE}" if message else f"All done. {ANYTHING_ELSE}"
    try:
        return phraser(arguments, result)
    except (TypeError, ValueError, KeyError, AttributeError):
        message = result.get("message")
        return f"{message} {ANYTHING_ELSE}" if message else f"That's done. {ANYTHING_ELSE}"


def failure(result: Result) -> str | None:
    """The error a result reports (``error``, or ``ok: false`` with a ``message``), else None."""
    if result.get("error"):
        error = result["error"]
        return str(error.get("message", error) if isinstance(error, Mapping) else error)
    if result.get("ok") is False:
        return str(result.get("message") or "the request failed")
    return None


def _loan(arguments: Mapping[str, Any], result: Result) -> str:
    payment = result["monthly_payment"]
    principal = result.get("principal", arguments.get("principal"))
    rate = result.get("annual_rate_percent", arguments.get("annual_rate_percent"))
    months = result.get("term_months", arguments.get("term_months"))
    text = f"The monthly payment would be about {money(payment)}"
    if principal is not None and rate is not None and months is not None:
        text = (
            f"For {money(principal)} over {term(int(months))} at {percent(float(rate))}, "
            f"the monthly payment would be about {money(payment)}"
        )
    if result.get("total_interest") is not None:
        text += f", with {money(result['total_interest'])} in total interest"
    disclosure = f" {result['disclosure']}" if result.get("disclosure") else ""
    return f"{text}.{disclosure} {ANYTHING_ELSE}"


def _balance(arguments: Mapping[str, Any], result: Result) -> str:
    account = str(result.get("account_type") or arguments.get("account_type") or "account").replace("_", " ")
    text = f"Your {account} balance is {money(result['balance'])}"
    available = result.get("available")
    if available is not None and float(available) != float(result["balance"]):
        text += f", and {money(available)} is available"
    return f"{text}. {ANYTHING_ELSE}"


def _transactions(arguments: Mapping[str, Any], result: Result) -> str:
    items = list(result.get("transactions") or [])
    if not items:
        return f"I don't see any recent transactions on your account. {ANYTHING_ELSE}"
    parts = []
    for item in items:
        amount = float(item.get("amount", 0))
        what = str(item.get("description") or "an unnamed merchant")
        when = spoken_date(item["date"]) if item.get("date") else ""
        part = f"a deposit of {money(amount)} from {what}" if amount >= 0 else f"{money(-amount)} at {what}"
        parts.append(f"{when}, {part}" if when else part)
    head = "Your most recent transaction was" if len(items) == 1 else f"Here are your last {len(items)} transactions:"
    return f"{head} {'; '.join(parts)}. {ANYTHING_ELSE}"


def _card(result: Result) -> str:
    last_four = result.get("card_last_four")
    return f"Your card ending in {last_four}" if last_four else "Your card"


def _block(arguments: Mapping[str, Any], result: Result) -> str:
    if result.get("blocked") is False:
        return f"I couldn't block the card: {result.get('message', 'the bank refused')}. {ANYTHING_ELSE}"
    text = f"{_card(result)} is now blocked, so nobody can use it."
    days = result.get("replacement_days")
    if days:
        text += f" A replacement card will arrive in about {days} business days."
    return f"{text} {ANYTHING_ELSE}"


def _unblock(arguments: Mapping[str, Any], result: Result) -> str:
    if result.get("unblocked") is False:
        return f"I couldn't unblock the card: {result.get('message', 'the bank refused')}. {ANYTHING_ELSE}"
    return f"{_card(result)} is unblocked and ready to use again. {ANYTHING_ELSE}"


def _branches(arguments: Mapping[str, Any], result: Result) -> str:
    branches = list(result.get("branches") or [])
    location = arguments.get("location")
    if not branches:
        where = f" near {location}" if location else ""
        return f"I couldn't find a branch{where}. {ANYTHING_ELSE}"
    parts = []
    for branch in branches[:2]:
        name = str(branch.get("name") or "our")
        address = f" at {branch['address']}" if branch.get("address") else ""
        hours = f" is open {branch['hours']}" if branch.get("hours") else " is open during normal business hours"
        parts.append(f"Our {name} branch{address}{hours}.")
    return f"{' '.join(parts)} {ANYTHING_ELSE}"


def _agent(arguments: Mapping[str, Any], result: Result) -> str:
    wait = result.get("wait_minutes")
    if wait is not None:
        minutes = "a minute" if int(wait) <= 1 else f"{int(wait)} minutes"
        return f"I'm transferring you to an agent now. The wait is about {minutes}. Please stay on the line."
    return "I'm transferring you to an agent now. Please stay on the line."


def _end(arguments: Mapping[str, Any], result: Result) -> str:
    return "Thank you for calling. Goodbye!"


_PHRASERS: dict[str, Callable[[Mapping[str, Any], Result], str]] = {
    "loan_payment": _loan,
    "get_balance": _balance,
    "recent_transactions": _transactions,
    "block_card": _block,
    "unblock_card": _unblock,
    "branch_hours": _branches,
    "transfer_to_agent": _agent,
    "end_call": _end,
}
