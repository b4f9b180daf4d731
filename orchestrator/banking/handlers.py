"""What each banking tool does, given arguments already checked against its schema.

Each handler returns a ``Reply``: the JSON object the model reads (the fields that
``orchestrator/tools/definitions.py`` documents for the tool, plus a ``message`` it can say as
is), whether the tool did what was asked, and the call action it asks for. Failures carry
``{"error": "<spoken message>"}`` as the definitions promise.

Verification (``verify_identity``): the date of birth and the last four digits of one of the
caller's cards or accounts, checked against the store by the call's caller id. Unreadable
input is asked for again without costing an attempt; ``MAX_ATTEMPTS`` (3) mismatches lock
verification for the rest of the session, and every later personal request is answered with
an offer of an agent. The mismatch message is the same whether the caller id is unknown or a
fact is wrong, so the bot does not reveal which phone numbers are customers.

Personal tools (balance, transactions, card block/unblock) run only for a verified caller.
Card actions act only with ``confirmed=true``; without it they answer with what would be done
and ask for the caller's yes. Both are idempotent: blocking a blocked card says it already is.
A card blocked as stolen or for suspected fraud is not unblocked by the bot (an agent must).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from mesh.pii import redact
from orchestrator.banking import branches as branch_table
from orchestrator.banking.loans import LOAN_DISCLOSURE, LoanInputError, quote
from orchestrator.banking.money import format_usd
from orchestrator.banking.spoken import parse_date, parse_last_four
from orchestrator.banking.store import ACTIVE, BLOCKED, AccountStore, Card, Customer

MAX_ATTEMPTS = 3
REPLACEMENT_DAYS = 5
AGENT_WAIT_MINUTES = 2
DEFAULT_TRANSACTIONS = 5
# Reasons after which a replacement card is sent; a card blocked for these two stays blocked until an agent acts.
REPLACED_REASONS = ("lost", "stolen", "damaged", "suspected_fraud")
AGENT_ONLY_UNBLOCK = ("stolen", "suspected_fraud")

NONE_ACTION = "none"
TRANSFER_ACTION = "transfer"
END_CALL_ACTION = "end_call"

OFFER_AGENT = "I can transfer you to an agent who can help — would you like that?"
VERIFY_FIRST = (
    "Before I can help with your accounts I need to verify your identity: "
    "please tell me your date of birth and the last four digits of your card."
)
LOCKED = "For your security I can't verify your identity on this call after three unsuccessful attempts. " + OFFER_AGENT
NO_CALLER_ID = "I can't verify callers whose phone number is withheld. " + OFFER_AGENT
UNREADABLE_DATE = (
    "I didn't catch the date of birth. Could you say the month, day and year, like March fourth, nineteen eighty?"
)
UNREADABLE_LAST_FOUR = "I need exactly four digits: the last four digits of your card or account number."
GOODBYE = "Thank you for calling. Goodbye."
TRANSFERRING = "I'm transferring you to an agent now. Please stay on the line."


class CallerSession(Protocol):
    """What the tools read and update in a call's session.

    ``orchestrator.sessions.SessionState`` has these attributes; ``VerificationState`` is a
    stand-alone implementation. The tools set ``verified`` and count ``verification_failures``;
    the session keeps them for the rest of the call (and across a resume).
    """

    caller_id: str
    verified: bool
    verification_failures: int


@dataclass
class VerificationState:
    """A caller's standing in one call: who is calling, verified or not, and failed attempts so far."""

    caller_id: str = ""
    verified: bool = False
    verification_failures: int = 0


def is_locked(session: CallerSession) -> bool:
    """True when verification failed ``MAX_ATTEMPTS`` times in this session."""
    return not session.verified and session.verification_failures >= MAX_ATTEMPTS


@dataclass(frozen=True)
class Reply:
    """A handler's answer: ``content`` for the model, whether it succeeded, and the call action."""

    content: dict[str, Any]
    ok: bool = True
    action: str = NONE_ACTION
    detail: str = ""


def failure(message: str, **fields: Any) -> Reply:
    """A failed call: ``{"error": message, ...fields}``."""
    return Reply({"error": message, **fields}, ok=False)


def _number(amount: Decimal) -> int | float:
    """A JSON number for an amount: 200000 stays an integer, 1264.14 a float with the same digits."""
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def _card_name(card: Card) -> str:
    return f"{card.kind} card ending in {card.last_four}"


def _join(items: list[str], word: str = "and") -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {word} {items[-1]}"


def _already_blocked(card: Card) -> Reply:
    return Reply(
        {
            "blocked": True,
            "already_blocked": True,
            "card_last_four": card.last_four,
            "message": f"Your {_card_name(card)} is already blocked.",
        }
    )


def _spoken_date(day: dt.date) -> str:
    return f"{day.strftime('%B')} {day.day}"


class BankingTools:
    """The tool handlers over one ``AccountStore`` and branch table."""

    def __init__(
        self,
        store: AccountStore,
        branches: tuple[branch_table.Branch, ...] = branch_table.BRANCHES,
        today: Callable[[], dt.date] = dt.date.today,
    ) -> None:
        """Serve customers from ``store``; ``today`` dates the checks on dates of birth."""
        self.store = store
        self.branches = branches
        self.today = today

    # -- identity ---------------------------------------------------------------------------

    async def verify_identity(self, args: dict[str, Any], session: CallerSession) -> Reply:
        """Check the date of birth and last four digits against the caller id's customer."""
        if session.verified:
            return Reply({"verified": True, "message": "You're already verified."})
        if is_locked(session):
            return Reply(
                {"verified": False, "locked": True, "attempts_left": 0, "offer_agent": True, "message": LOCKED},
                ok=False,
            )
        if not session.caller_id.strip():
            return Reply({"verified": False, "offer_agent": True, "message": NO_CALLER_ID}, ok=False)
        date_of_birth = parse_date(str(args["date_of_birth"]), self.today())
        if date_of_birth is None:
            return failure(UNREADABLE_DATE, verified=False, field="date_of_birth")
        last_four = parse_last_four(str(args["last_four"]))
        if last_four is None:
            return failure(UNREADABLE_LAST_FOUR, verified=False, field="last_four")
        customer = await self.store.verify(session.caller_id, date_of_birth, last_four)
        if customer is not None:
            session.verified = True
            return Reply({"verified": True, "message": f"Thank you, {customer.first_name}, you're verified."})
        session.verification_failures += 1
        left = MAX_ATTEMPTS - session.verification_failures
        if left <= 0:
            return Reply(
                {"verified": False, "locked": True, "attempts_left": 0, "offer_agent": True, "message": LOCKED},
                ok=False,
            )
        tries = "one more try" if left == 1 else f"{left} more tries"
        message = f"Those details don't match our records. You have {tries}."
        return Reply({"verified": False, "attempts_left": left, "message": message}, ok=False)

    async def _customer(self, session: CallerSession) -> Customer | Reply:
        """The verified caller's customer record, or the reply that refuses the request."""
        if is_locked(session):
            return failure(LOCKED, verification_required=True, offer_agent=True)
        if not session.verified:
            return failure(VERIFY_FIRST, verification_required=True)
        customer = await self.store.customer_for_caller(session.caller_id)
        if customer is None:
            return failure("I can't find your accounts right now. " + OFFER_AGENT, offer_agent=True)
        return customer

    # -- accounts ---------------------------------------------------------------------------

    async def get_balance(self, args: dict[str, Any], session: CallerSession) -> Reply:
        """The balance of the caller's checking, savings or credit card account (checking by default)."""
        customer = await self._customer(session)
        if isinstance(customer, Reply):
            return customer
        kind = str(args.get("account_type", "checking"))
        accounts = await self.store.accounts(customer.customer_id)
        matching = [a for a in accounts if a.kind == kind]
        if not matching:
            have = _join([f"{a.nickname} ending in {a.last_four}" for a in accounts]) or "no accounts"
            spoken_kind = kind.replace("_", " ")
            return failure(f"I don't see a {spoken_kind} account for you. You have {have}.", account_type=kind)
        account = matching[0]
        if kind == "credit_card":
            message = (
                f"Your {account.nickname} ending in {account.last_four} has a balance of {format_usd(account.balance)},"
                f" with {format_usd(account.available)} of available credit."
            )
        else:
            message = (
                f"Your {account.nickname} account ending in {account.last_four} "
                f"has a balance of {format_usd(account.balance)}"
            )
            if account.available != account.balance:
                message += f", of which {format_usd(account.available)} is available"
            message += "."
        return Reply(
            {
                "account_type": kind,
                "account_name": account.nickname,
                "account_last_four": account.last_four,
                "balance": _number(account.balance),
                "available": _number(account.available),
                "currency": "USD",
                "message": message,
            }
        )

    async def recent_transactions(self, args: dict[str, Any], session: CallerSession) -> Reply:
        """The newest transactions, of one account type or of all the caller's accounts."""
        customer = await self._customer(session)
        if isinstance(customer, Reply):
            return customer
        count = int(args.get("count", DEFAULT_TRANSACTIONS))
        accounts = await self.store.accounts(customer.customer_id)
        kinds = {a.account_id: a.kind for a in accounts}
        account_id = None
        if "account_type" in args:
            kind = str(args["account_type"])
            matching = [a for a in accounts if a.kind == kind]
            if not matching:
                return failure(f"I don't see a {kind.replace('_', ' ')} account for you.", account_type=kind)
            account_id = matching[0].account_id
        items = await self.store.transactions(customer.customer_id, account_id, count)
        if not items:
            return Reply({"transactions": [], "message": "I don't see any recent transactions."})
        spoken = []
        for item in items:
            what = redact(item.description)
            if item.amount < 0:
                spoken.append(f"on {_spoken_date(item.posted_on)}, {format_usd(-item.amount)} at {what}")
            else:
                spoken.append(f"on {_spoken_date(item.posted_on)}, a deposit of {format_usd(item.amount)} from {what}")
        head = "Your most recent transaction was" if len(items) == 1 else f"Your last {len(items)} transactions were"
        return Reply(
            {
                "transactions": [
                    {
                        "date": item.posted_on.isoformat(),
                        "description": redact(item.description),
                        "amount": _number(item.amount),
                        "account_type": kinds.get(item.account_id, ""),
                    }
                    for item in items
                ],
                "message": f"{head}: {'; '.join(spoken)}.",
            }
        )

    # -- cards ------------------------------------------------------------------------------

    async def _pick_card(
        self, session: CallerSession, args: dict[str, Any], wanted: str, verb: str
    ) -> tuple[Customer, Card] | Reply:
        """The verified caller and the card to act on.

        The card is the one named by ``card_last_four`` when the tool schema offers it, else the
        only card not yet ``wanted``; with several, the reply asks which.
        """
        customer = await self._customer(session)
        if isinstance(customer, Reply):
            return customer
        cards = await self.store.cards(customer.customer_id)
        if not cards:
            return failure("I don't see any cards on your accounts.")
        asked = args.get("card_last_four")
        if asked is not None:
            last_four = parse_last_four(str(asked))
            named = [c for c in cards if c.last_four == last_four]
            if not named:
                endings = _join([c.last_four for c in cards])
                return failure(f"I don't see a card ending in {last_four or asked}. Your cards end in {endings}.")
            return customer, named[0]
        candidates = [c for c in cards if c.status != wanted]
        if len(candidates) == 1:
            return customer, candidates[0]
        if not candidates:
            return customer, cards[0]
        options = _join([f"your {_card_name(c)}" for c in candidates], "or")
        return failure(
            f"Which card should I {verb}: {options}?",
            needs_card=True,
            cards=[{"kind": c.kind, "card_last_four": c.last_four, "status": c.status} for c in candidates],
        )

    async def block_card(self, args: dict[str, Any], session: CallerSession) -> Reply:
        """Block a card after the caller confirmed; says so when it is blocked already."""
        picked = await self._pick_card(session, args, BLOCKED, "block")
        if isinstance(picked, Reply):
            return picked
        customer, card = picked
        reason = str(args.get("reason", "other"))
        if card.status == BLOCKED:
            return _already_blocked(card)
        if not args.get("confirmed"):
            return failure(
                f"Please confirm: should I block your {_card_name(card)}? It can't be used until it's unblocked.",
                blocked=False,
                needs_confirmation=True,
                card_last_four=card.last_four,
            )
        change = await self.store.set_card_status(customer.customer_id, card.card_id, BLOCKED, reason)
        if not change.changed:
            return _already_blocked(card)
        content: dict[str, Any] = {"blocked": True, "card_last_four": card.last_four}
        message = f"Your {_card_name(card)} is now blocked, so nobody can use it."
        if reason in REPLACED_REASONS:
            content["replacement_days"] = REPLACEMENT_DAYS
            message += f" A replacement card will arrive in about {REPLACEMENT_DAYS} business days."
        content["message"] = message
        return Reply(content)

    async def unblock_card(self, args: dict[str, Any], session: CallerSession) -> Reply:
        """Unblock a card after the caller confirmed, unless it was blocked as stolen or for fraud."""
        picked = await self._pick_card(session, args, ACTIVE, "unblock")
        if isinstance(picked, Reply):
            return picked
        customer, card = picked
        if card.status == ACTIVE:
            return Reply(
                {
                    "unblocked": True,
                    "already_active": True,
                    "card_last_four": card.last_four,
                    "message": f"Your {_card_name(card)} isn't blocked; it's ready to use.",
                }
            )
        if card.block_reason in AGENT_ONLY_UNBLOCK:
            why = "stolen" if card.block_reason == "stolen" else "blocked for suspected fraud"
            return failure(
                f"Your {_card_name(card)} was reported {why}, so for your security I can't unblock it here. "
                + OFFER_AGENT,
                unblocked=False,
                offer_agent=True,
                card_last_four=card.last_four,
            )
        if not args.get("confirmed"):
            return failure(
                f"Please confirm: should I unblock your {_card_name(card)} so it can be used again?",
                unblocked=False,
                needs_confirmation=True,
                card_last_four=card.last_four,
            )
        await self.store.set_card_status(customer.customer_id, card.card_id, ACTIVE, "unblocked by caller")
        return Reply(
            {
                "unblocked": True,
                "card_last_four": card.last_four,
                "message": f"Your {_card_name(card)} is unblocked and ready to use again.",
            }
        )

    # -- general ----------------------------------------------------------------------------

    async def loan_payment(self, args: dict[str, Any], session: CallerSession) -> Reply:
        """Quote a fixed-rate loan; the message ends with ``LOAN_DISCLOSURE``."""
        try:
            loan = quote(args["principal"], args["annual_rate_percent"], args["term_months"])
        except LoanInputError as exc:
            return failure(exc.message, field=exc.field)
        return Reply(
            {
                "monthly_payment": _number(loan.monthly_payment),
                "final_payment": _number(loan.final_payment),
                "payments": loan.payments,
                "total_interest": _number(loan.total_interest),
                "total_paid": _number(loan.total_paid),
                "principal": _number(loan.principal),
                "annual_rate_percent": _number(loan.annual_rate_percent),
                "term_months": loan.term_months,
                "disclosure": LOAN_DISCLOSURE,
                "message": loan.spoken(),
            }
        )

    async def branch_hours(self, args: dict[str, Any], session: CallerSession) -> Reply:
        """Hours and addresses of the branches matching ``location`` (all of them when none is given)."""
        location = str(args.get("location", "")).strip()
        match = branch_table.find_branches(location, self.branches)
        names = _join([b.name for b in self.branches])
        if match.how == "unknown":
            where = f"ZIP code {match.unknown_zip}" if match.unknown_zip else location
            return Reply(
                {
                    "branches": [],
                    "message": f"I don't have a branch near {where}. Our branches are {names}; which is closest?",
                }
            )
        needs_location = not match.branches
        found = match.branches or self.branches
        first = found[0]
        if needs_location:
            message = f"Our branches are {names}. Which area or ZIP code are you near?"
        elif match.how == "nearest_zip":
            message = f"The nearest branch is {first.name}, at {first.full_address()}; it's open {first.hours_text()}."
        elif len(found) > 1:
            message = f"We have {len(found)} branches there: {_join([b.name for b in found])}. Which one?"
        else:
            message = f"Our {first.name} branch at {first.full_address()} is open {first.hours_text()}."
        content: dict[str, Any] = {
            "branches": [
                {"name": b.name, "address": b.full_address(), "phone": b.phone, "hours": b.hours_text()} for b in found
            ],
            "message": message,
        }
        if needs_location:
            content["needs_location"] = True
        return Reply(content)

    async def transfer_to_agent(self, args: dict[str, Any], session: CallerSession) -> Reply:
        """Ask the orchestrator to hand the call to an agent (``action="transfer"``)."""
        reason = redact(str(args.get("reason", "")).strip())[:200] or "caller asked for an agent"
        return Reply(
            {
                "transferred": True,
                "wait_minutes": AGENT_WAIT_MINUTES,
                "action": TRANSFER_ACTION,
                "reason": reason,
                "message": TRANSFERRING,
            },
            action=TRANSFER_ACTION,
            detail=reason,
        )

    async def end_call(self, args: dict[str, Any], session: CallerSession) -> Reply:
        """Ask the orchestrator to end the call after the goodbye (``action="end_call"``)."""
        reason = redact(str(args.get("reason", "")).strip())[:200] or "caller said goodbye"
        return Reply(
            {"ended": True, "action": END_CALL_ACTION, "reason": reason, "message": GOODBYE},
            action=END_CALL_ACTION,
            detail=reason,
        )
