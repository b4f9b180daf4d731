"""The tool runner the call pipeline uses: a model's tool call in, a ``ToolOutcome`` out, never an exception.

Wiring (``orchestrator.tooling.load_tools``)::

    store = AccountStore(path)                  # ":memory:" or a file; seeded with DEMO data when empty
    await store.open()                          # in OrchestratorApp.start(); store.close() in stop()
    runner = BankingToolRunner(store)           # schemas from orchestrator.tools.definitions.TOOLS
    outcome = await runner.run(name, arguments_json, session)

``session`` is any object with ``caller_id: str``, ``verified: bool`` and
``verification_failures: int`` (``handlers.CallerSession``; ``orchestrator.sessions.SessionState``
has them). The runner sets ``verified`` and counts failures on it; the orchestrator saves the
session as usual. Run one session's tool calls one at a time, in the order the model made them.

Each outcome carries:

- ``content``: the JSON object text for the model's ROLE_TOOL message. Failures are
  ``{"error": "<message the bot can say>", ...}``; every string in it has card and account
  numbers masked to their last four digits (``mesh.pii``), whatever the store or model sent.
- ``ok``: the tool did what was asked (false for refusals, bad arguments, unknown tools and
  store failures).
- ``action``: "none", "transfer" (``transfer_to_agent``: emit AGENT_TRANSFER with ``detail`` as
  the reason) or "end_call" (``end_call``: end the call after the goodbye; ``detail`` is why).
- ``cacheable``: true only for successful ``loan_payment`` and ``branch_hours`` results, which
  hold nothing personal; everything about a caller's accounts is never cached.
- ``intent``: the caller's intent the tool served (``INTENTS``), for the session and analytics.

Arguments are checked against each tool's JSON schema (``validation``): wrong types, values
outside ``minimum``/``maximum``, missing required fields and unknown ``enum`` values come back
as a spoken question ("I can quote loans from $1,000 to $5,000,000 — what amount did you have
in mind?"). ``format`` and ``pattern`` are hints for the model only: the tools read spoken
dates and digits themselves.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from mesh.errors import ResourceExhausted
from mesh.pii import find_pii, mask_digits, redact
from orchestrator.banking import handlers, loans
from orchestrator.banking.handlers import BankingTools, CallerSession, Reply
from orchestrator.banking.store import AccountStore
from orchestrator.banking.validation import validate_arguments
from orchestrator.tools.definitions import TOOLS
from orchestrator.turn import ToolOutcome

log = logging.getLogger("orchestrator.banking")

Handler = Callable[[dict[str, Any], CallerSession], Awaitable[Reply]]

INTENTS: dict[str, str] = {
    "verify_identity": "identity_verification",
    "get_balance": "balance_inquiry",
    "recent_transactions": "recent_transactions",
    "loan_payment": "loan_quote",
    "block_card": "card_block",
    "unblock_card": "card_unblock",
    "branch_hours": "branch_hours",
    "transfer_to_agent": "agent_transfer",
    "end_call": "end_call",
}
UNKNOWN_INTENT = "unknown_tool"

# Results without anything personal in them; the answer cache may keep what the bot says about them.
CACHEABLE_TOOLS = frozenset({"loan_payment", "branch_hours"})

# What the bot asks when the model sent a missing or out-of-range value, by tool and argument.
FIELD_HINTS: dict[tuple[str, str], str] = {
    ("loan_payment", "principal"): loans.PRINCIPAL_HINT,
    ("loan_payment", "annual_rate_percent"): loans.RATE_HINT,
    ("loan_payment", "term_months"): loans.TERM_HINT,
    ("verify_identity", "date_of_birth"): handlers.UNREADABLE_DATE,
    ("verify_identity", "last_four"): handlers.UNREADABLE_LAST_FOUR,
    ("get_balance", "account_type"): "I can look at your checking, savings or credit card account — which one?",
    ("recent_transactions", "account_type"): "I can look at your checking, savings or credit card account — which one?",
    ("recent_transactions", "count"): "I can read you between 1 and 10 recent transactions — how many would you like?",
    ("block_card", "reason"): "Why should I block the card: was it lost, stolen or damaged, or do you suspect fraud?",
}

# Values for arguments a model may leave out where asking again would only annoy the caller:
# an unconfirmed card action asks for confirmation, and a transfer always goes through.
DEFAULTS: dict[str, dict[str, Any]] = {
    "block_card": {"confirmed": False},
    "unblock_card": {"confirmed": False},
    "transfer_to_agent": {"reason": "caller asked for an agent"},
}

UNAVAILABLE = "I can't reach that information right now. " + handlers.OFFER_AGENT

_MASKED_KINDS = ("card_number", "account_number")


def mask_numbers(value: Any) -> Any:
    """``value`` with every card and account number in its strings masked to the last four digits.

    Dates, amounts with thousands commas and phone numbers are left as they are (``mesh.pii``
    tells them apart); dicts and lists are walked.
    """
    if isinstance(value, str):
        findings = [f for f in find_pii(value) if f.kind in _MASKED_KINDS]
        for finding in reversed(findings):
            value = value[: finding.start] + mask_digits(value[finding.start : finding.end]) + value[finding.end :]
        return value
    if isinstance(value, dict):
        return {key: mask_numbers(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [mask_numbers(item) for item in value]
    return value


def _outcome(name: str, reply: Reply) -> ToolOutcome:
    return ToolOutcome(
        content=json.dumps(mask_numbers(reply.content), ensure_ascii=False),
        ok=reply.ok,
        action=reply.action,
        cacheable=reply.ok and name in CACHEABLE_TOOLS,
        intent=INTENTS.get(name, UNKNOWN_INTENT),
        detail=mask_numbers(reply.detail),
        disclosure=str(reply.content.get("disclosure", "")) if reply.ok and isinstance(reply.content, dict) else "",
    )


class BankingToolRunner:
    """Runs the banking tools the model calls; see the module docstring."""

    def __init__(self, tools: BankingTools | AccountStore, definitions: Sequence[Mapping[str, Any]] = TOOLS) -> None:
        """Run ``definitions`` (name, description, JSON-schema parameters) with the banking handlers.

        Args:
            tools: The handlers, or the store to build them over (real branch table and clock).
            definitions: The tools offered to the model; each needs a handler here.

        Raises:
            ValueError: a definition names a tool this runner cannot run.
        """
        self.tools = tools if isinstance(tools, BankingTools) else BankingTools(tools)
        available: dict[str, Handler] = {
            "verify_identity": self.tools.verify_identity,
            "get_balance": self.tools.get_balance,
            "recent_transactions": self.tools.recent_transactions,
            "loan_payment": self.tools.loan_payment,
            "block_card": self.tools.block_card,
            "unblock_card": self.tools.unblock_card,
            "branch_hours": self.tools.branch_hours,
            "transfer_to_agent": self.tools.transfer_to_agent,
            "end_call": self.tools.end_call,
        }
        self._schemas: dict[str, Mapping[str, Any]] = {}
        self._handlers: dict[str, Handler] = {}
        for definition in definitions:
            name = str(definition["name"])
            if name not in available:
                raise ValueError(f"no banking handler for tool {name!r}")
            self._schemas[name] = definition.get("parameters", {"type": "object"})
            self._handlers[name] = available[name]

    @property
    def names(self) -> tuple[str, ...]:
        """The tools this runner runs, in definition order."""
        return tuple(self._handlers)

    async def run(self, name: str, arguments_json: str, session: CallerSession) -> ToolOutcome:
        """Run one tool call; every failure comes back as an ``ok=False`` outcome the model can read."""
        try:
            return _outcome(name, await self._run(name, arguments_json, session))
        except ResourceExhausted:
            log.warning("banking tool %s refused: the account store is busy", name)
        except Exception:
            log.exception("banking tool %s failed", name)
        return _outcome(name, handlers.failure(UNAVAILABLE, offer_agent=True))

    async def _run(self, name: str, arguments_json: str, session: CallerSession) -> Reply:
        handler = self._handlers.get(name)
        if handler is None:
            known = ", ".join(self._handlers)
            return handlers.failure(f"There is no tool named {redact(name)[:64]!r}. The tools are: {known}.")
        try:
            arguments = json.loads(arguments_json) if arguments_json.strip() else {}
        except json.JSONDecodeError as exc:
            return handlers.failure(f"The arguments of {name} are not valid JSON ({exc.msg}); send a JSON object.")
        if isinstance(arguments, dict):
            arguments = {**DEFAULTS.get(name, {}), **{k: v for k, v in arguments.items() if v is not None}}
        cleaned, violations = validate_arguments(arguments, self._schemas[name])
        if violations:
            first = violations[0]
            message = FIELD_HINTS.get((name, first.field), first.message)
            return handlers.failure(message, field=first.field, problem=first.problem)
        return await handler(cleaned, session)
