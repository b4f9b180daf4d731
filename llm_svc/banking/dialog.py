"""The banking dialogue: what to say or which tool to call next, from the conversation alone.

The engine is stateless: every request carries the whole conversation, and ``Dialog.respond``
replays it from the first message with the same deterministic policy, so the question it asked
last (and the slots already filled) come out the same every time. Tool results in the history
(ROLE_TOOL) move the dialogue on: a verified identity unlocks the task that needed it; any
other result is phrased into the answer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llm_svc.banking import replies, understand
from llm_svc.banking.understand import Utterance
from llm_svc.engine import Message, Role, Tool, ToolCall

log = logging.getLogger("llm_svc.banking")

# The tool each task ends with, and the tasks that need a verified caller first.
TOOL_FOR = {
    understand.LOAN: "loan_payment",
    understand.BALANCE: "get_balance",
    understand.TRANSACTIONS: "recent_transactions",
    understand.BLOCK: "block_card",
    understand.UNBLOCK: "unblock_card",
    understand.BRANCH: "branch_hours",
    understand.AGENT: "transfer_to_agent",
    understand.GOODBYE: "end_call",
}
NEEDS_IDENTITY = {understand.BALANCE, understand.TRANSACTIONS, understand.BLOCK, understand.UNBLOCK}
VERIFY = "verify_identity"
TOPIC = {
    understand.LOAN: "loan quotes",
    understand.BALANCE: "account balances",
    understand.TRANSACTIONS: "recent transactions",
    understand.BLOCK: "blocking cards",
    understand.UNBLOCK: "unblocking cards",
    understand.BRANCH: "branch hours and locations",
    understand.AGENT: "transfers to an agent",
}
CAN_DO = {
    "get_balance": "check your balance",
    "recent_transactions": "read your recent transactions",
    "loan_payment": "quote loan and mortgage payments",
    "block_card": "block a lost or stolen card",
    "unblock_card": "unblock a card",
    "branch_hours": "give branch hours and locations",
    "transfer_to_agent": "connect you to an agent",
}
MAX_VERIFY_ATTEMPTS = 3
PRINCIPAL_RANGE = (100.0, 100_000_000.0)
RATE_RANGE = (0.0, 30.0)
TERM_MONTHS_RANGE = (1, 480)

# Questions, by the slot they ask for.
ASK_DOB = "dob"
ASK_LAST_FOUR = "last_four"
ASK_PRINCIPAL = "principal"
ASK_TERM = "term"
ASK_RATE = "rate"
ASK_CONFIRM = "confirm"
ASK_ANYTHING_ELSE = "anything_else"
ASK_CARD = "card"
ASK_TOOL = "tool"
SLOT_QUESTIONS = {"principal": "principal", "term_months": "term", "annual_rate_percent": "rate"}
QUESTIONS = {
    ASK_DOB: "What is your date of birth?",
    ASK_LAST_FOUR: "And what are the last four digits of your card number?",
    ASK_PRINCIPAL: "How much would you like to borrow?",
    ASK_TERM: "Over how many years would you like to repay it?",
    ASK_RATE: "What annual interest rate should I use? For example, six percent.",
}
CONFIRM = {
    understand.BLOCK: "Just to confirm: you want me to block your card so nobody can use it. Shall I go ahead?",
    understand.UNBLOCK: "Just to confirm: you want me to unblock your card so you can use it again. Shall I go ahead?",
}
LOAN_SLOTS = (("principal", ASK_PRINCIPAL), ("term_months", ASK_TERM), ("annual_rate_percent", ASK_RATE))
HINTS = {
    ASK_DOB: "Please say the month, day and year, for example, March third, nineteen eighty five.",
    ASK_LAST_FOUR: "Please say the four digits, one at a time.",
    ASK_PRINCIPAL: "Please say an amount, for example, twenty thousand dollars.",
    ASK_TERM: "Please say a number of years, up to forty.",
    ASK_RATE: "Please say a rate of up to thirty percent.",
}


@dataclass(frozen=True)
class Say:
    """Answer with text."""

    text: str


@dataclass(frozen=True)
class Call:
    """Call one tool with these arguments."""

    name: str
    arguments: dict[str, Any]


Action = Say | Call


@dataclass
class Task:
    """A request in progress and the slots filled so far."""

    intent: str
    slots: dict[str, Any] = field(default_factory=dict)


@dataclass
class State:
    """What the replay knows after each message."""

    task: Task | None = None
    asked: str | None = None
    verified: bool = False
    identity: dict[str, str] = field(default_factory=dict)
    failures: int = 0
    calls: dict[str, ToolCall] = field(default_factory=dict)
    cards: list[Mapping[str, Any]] = field(default_factory=list)


class Dialog:
    """The policy for one request: the tools offered decide what it may do."""

    def __init__(self, tools: Mapping[str, Tool]) -> None:
        """Act with ``tools`` (empty when tools are off for this request)."""
        self.tools = tools

    def respond(self, messages: tuple[Message, ...]) -> Action:
        """Replay ``messages`` and return the next action."""
        state = State()
        action: Action = self._greeting()
        for message in messages:
            if message.role is Role.USER:
                action = self._on_user(state, understand.understand(message.content))
            elif message.role is Role.ASSISTANT:
                for call in message.tool_calls:
                    state.calls[call.id] = call
            elif message.role is Role.TOOL:
                action = self._on_tool(state, message)
        return action

    # -- caller turns --------------------------------------------------------------------

    def _on_user(self, state: State, u: Utterance) -> Action:
        intent = u.intent
        task = state.task
        if state.asked == ASK_CONFIRM and task is not None and intent in (None, task.intent, understand.CANCEL):
            if u.no or intent == understand.CANCEL:
                return self._drop(state, f"Okay, I won't {_verb(task.intent)} your card.")
            if u.yes:
                task.slots["confirmed"] = True
                return self._advance(state)
            return self._ask(state, ASK_CONFIRM, "Sorry, was that a yes or a no?")
        if state.asked == ASK_ANYTHING_ELSE and intent is None:
            if u.no:
                return self._start(state, understand.GOODBYE, u)
            if u.yes:
                state.asked = None
                return Say("Sure. What else can I help you with?")
        if intent == understand.KEEP_CARD:
            return self._drop(state, "Okay, I won't block your card.")
        if intent == understand.CANCEL:
            if task is None:
                return self._ask(state, ASK_ANYTHING_ELSE, f"Okay. {replies.ANYTHING_ELSE}")
            return self._drop(state, "Okay, I've cancelled that.")
        if intent in TOOL_FOR:
            if task is None or task.intent != intent:
                return self._start(state, intent, u)
            self._fill(state, u)
            return self._advance(state, reasked=True)
        if intent == understand.THANKS:
            return self._ask(state, ASK_ANYTHING_ELSE, f"You're welcome! {replies.ANYTHING_ELSE}")
        if intent == understand.HELP:
            return self._ask(state, None, f"{self._capabilities()} What would you like to do?")
        if task is not None:
            self._fill(state, u)
            return self._advance(state, reasked=intent != understand.GREETING)
        if intent == understand.GREETING:
            return self._greeting()
        if any(n.unit == "percent" for n in u.numbers) and len(u.numbers) >= 2 and understand.LOAN in TOOL_FOR:
            # "twenty thousand over five years at six percent" with no other words is a loan quote.
            return self._start(state, understand.LOAN, u)
        return self._ask(state, None, f"Sorry, I can't help with that. {self._capabilities()}")

    def _start(self, state: State, intent: str, u: Utterance) -> Action:
        previous = state.task
        state.task = Task(intent)
        if intent == understand.AGENT and previous is not None and previous.intent in TOPIC:
            state.task.slots["reason"] = f"caller asked for an agent about {TOPIC[previous.intent]}"
        state.asked = None
        self._fill(state, u)
        return self._advance(state)

    def _drop(self, state: State, text: str) -> Action:
        state.task = None
        return self._ask(state, ASK_ANYTHING_ELSE, f"{text} {replies.ANYTHING_ELSE}")

    def _ask(self, state: State, slot: str | None, text: str) -> Action:
        state.asked = slot
        return Say(text)

    # -- slots ---------------------------------------------------------------------------

    def _fill(self, state: State, u: Utterance) -> None:
        task = state.task
        if task is None:
            return
        if task.intent in NEEDS_IDENTITY and not state.verified:
            if u.date is not None:
                state.identity["date_of_birth"] = u.date.isoformat()
            if (state.asked == ASK_LAST_FOUR or understand.said_last_four(u.text)) and len(u.digits) == 4:
                state.identity["last_four"] = u.digits
        if u.account_type and task.intent in (understand.BALANCE, understand.TRANSACTIONS):
            task.slots["account_type"] = u.account_type
        if u.count and task.intent == understand.TRANSACTIONS:
            task.slots["count"] = min(u.count, 10)
        if u.block_reason and task.intent == understand.BLOCK:
            task.slots["reason"] = u.block_reason
        if state.asked == ASK_CARD:
            card = _pick_card(state.cards, u)
            if card:
                task.slots["card_last_four"] = card
        if u.location and task.intent == understand.BRANCH:
            task.slots["location"] = u.location
        if task.intent == understand.LOAN:
            self._fill_loan(task, u, state.asked)

    @staticmethod
    def _fill_loan(task: Task, u: Utterance, asked: str | None) -> None:
        slots = task.slots
        loose = []
        for number in u.numbers:
            if number.unit == "percent":
                _put(slots, "annual_rate_percent", number.value, RATE_RANGE)
            elif number.unit in ("years", "months"):
                months = number.value * 12 if number.unit == "years" else number.value
                _put(slots, "term_months", round(months), TERM_MONTHS_RANGE)
            elif number.unit == "money":
                _put(slots, "principal", number.value, PRINCIPAL_RANGE)
            else:
                loose.append(number.value)
        for value in loose:
            if asked == ASK_PRINCIPAL and "principal" not in slots:
                _put(slots, "principal", value, PRINCIPAL_RANGE)
            elif asked == ASK_TERM and "term_months" not in slots:
                _put(slots, "term_months", round(value * 12 if value <= 50 else value), TERM_MONTHS_RANGE)
            elif asked == ASK_RATE and "annual_rate_percent" not in slots:
                _put(slots, "annual_rate_percent", value, RATE_RANGE)
            elif value >= 1000 and "principal" not in slots:
                _put(slots, "principal", value, PRINCIPAL_RANGE)

    # -- the next step of a task ---------------------------------------------------------

    def _advance(self, state: State, *, reasked: bool = False) -> Action:
        task = state.task
        assert task is not None
        tool = TOOL_FOR[task.intent]
        if tool not in self.tools:
            state.task = None
            if task.intent == understand.GOODBYE:
                return self._ask(state, None, "Thank you for calling. Goodbye!")
            return self._ask(
                state, None, f"Sorry, I can't help with {TOPIC[task.intent]} on this call. {self._capabilities()}"
            )
        if task.intent in NEEDS_IDENTITY and not state.verified and VERIFY in self.tools:
            intro = "" if reasked else f"{_sympathy(task)}I can help with that. First I need to verify your identity. "
            if "date_of_birth" not in state.identity:
                return self._question(state, ASK_DOB, intro)
            if "last_four" not in state.identity:
                return self._question(state, ASK_LAST_FOUR, "Thank you. " if state.asked == ASK_DOB else intro)
            return self._call(state, VERIFY, dict(state.identity))
        slots = task.slots
        if task.intent == understand.LOAN:
            for slot, ask in LOAN_SLOTS:
                if slot not in slots:
                    return self._question(state, ask, "" if reasked or state.asked else "Sure, I can quote that. ")
            return self._call(state, tool, dict(slots))
        if task.intent in (understand.BLOCK, understand.UNBLOCK) and not slots.get("confirmed"):
            intro = "" if reasked else _sympathy(task)
            return self._ask(state, ASK_CONFIRM, f"{intro}{CONFIRM[task.intent]}")
        if task.intent == understand.BLOCK:
            arguments = {"reason": slots.get("reason") or "other", "confirmed": True}
            return self._call(state, tool, {**arguments, **_card_slot(slots)})
        if task.intent == understand.UNBLOCK:
            return self._call(state, tool, {"confirmed": True, **_card_slot(slots)})
        if task.intent == understand.AGENT:
            return self._call(state, tool, {"reason": slots.get("reason", "caller asked for an agent")})
        if task.intent == understand.GOODBYE:
            return self._call(state, tool, {"reason": "caller said goodbye"})
        return self._call(state, tool, dict(slots))

    def _question(self, state: State, slot: str, intro: str) -> Action:
        if state.asked == slot:
            return self._ask(state, slot, f"Sorry, I didn't catch that. {HINTS[slot]}")
        return self._ask(state, slot, f"{intro}{QUESTIONS[slot]}")

    def _call(self, state: State, name: str, arguments: dict[str, Any]) -> Action:
        state.asked = None
        return Call(name, _fit(arguments, self.tools[name]))

    # -- tool results --------------------------------------------------------------------

    def _on_tool(self, state: State, message: Message) -> Action:
        call = state.calls.get(message.tool_call_id)
        name = message.name or (call.name if call else "")
        arguments = _object(call.arguments_json) if call else {}
        result = _object(message.content) or {"message": message.content}
        if name == VERIFY:
            return self._on_verified(state, result)
        task = state.task
        error = replies.failure(result)
        if task is not None and TOOL_FOR.get(task.intent) == name:
            if error is not None and error.rstrip().endswith("?"):
                return self._on_tool_question(state, task, error, result)
            state.task = None
        if error is not None:
            text = f"{error} " if error.rstrip()[-1:] in (".", "!") else f"Sorry, I couldn't complete that: {error}. "
            return self._ask(state, ASK_ANYTHING_ELSE, text + replies.ANYTHING_ELSE)
        text = replies.phrase(name, arguments, result)
        ends = name in ("end_call", "transfer_to_agent")
        return self._ask(state, None if ends else ASK_ANYTHING_ELSE, text)

    def _on_tool_question(self, state: State, task: Task, question: str, result: Mapping[str, Any]) -> Action:
        """The tool asks something back ("which card?", "what amount?"): ask the caller, keep the task.

        A ``field`` in the result names the argument to ask for again; ``cards`` lists the cards
        to choose from, by kind and last four digits.
        """
        slot = str(result.get("field") or "")
        task.slots.pop(slot, None)
        cards = result.get("cards")
        state.cards = [c for c in cards if isinstance(c, Mapping)] if isinstance(cards, list) else []
        return self._ask(state, ASK_CARD if state.cards else SLOT_QUESTIONS.get(slot, ASK_TOOL), question)

    def _on_verified(self, state: State, result: Mapping[str, Any]) -> Action:
        verified = bool(result.get("verified")) and replies.failure(result) is None
        if result.get("locked"):
            state.task = None
            message = str(result.get("message") or "I'm sorry, I couldn't verify your identity.")
            return self._ask(state, ASK_ANYTHING_ELSE, f"{message} {replies.ANYTHING_ELSE}")
        if verified:
            state.verified = True
            state.failures = 0
            if state.task is not None:
                return self._advance(state, reasked=True)
            return self._ask(state, None, "Thank you, you're verified. How can I help?")
        state.failures += 1
        state.identity = {}
        if state.failures >= MAX_VERIFY_ATTEMPTS:
            state.task = None
            return self._ask(
                state,
                ASK_ANYTHING_ELSE,
                "I'm sorry, I couldn't verify your identity. For your security, please visit a branch or ask to "
                "speak to an agent.",
            )
        return self._ask(
            state, ASK_DOB, f"Sorry, those details don't match our records. Let's try again. {QUESTIONS[ASK_DOB]}"
        )

    # -- fixed answers -------------------------------------------------------------------

    def _capabilities(self) -> str:
        can = [text for tool, text in CAN_DO.items() if tool in self.tools]
        if not can:
            return "I can only answer general questions on this call."
        if len(can) == 1:
            return f"I can {can[0]}."
        return f"I can {', '.join(can[:-1])}, or {can[-1]}."

    def _greeting(self) -> Action:
        return Say(f"Hello, thanks for calling. {self._capabilities()} How can I help you today?")


def _card_slot(slots: Mapping[str, Any]) -> dict[str, Any]:
    return {"card_last_four": slots["card_last_four"]} if "card_last_four" in slots else {}


def _pick_card(cards: list[Mapping[str, Any]], u: Utterance) -> str | None:
    """The card the caller chose among ``cards``: by its last four digits or by its kind ("the debit one")."""
    endings = [str(c.get("card_last_four", "")) for c in cards]
    if len(u.digits) >= 4 and u.digits[-4:] in endings:
        return u.digits[-4:]
    for card, ending in zip(cards, endings, strict=True):
        kind = str(card.get("kind", "")).replace("_", " ").lower()
        if kind and (kind in u.text or kind.split()[0] in u.text.split()):
            return ending
    return None


def _sympathy(task: Task) -> str:
    return "I'm sorry to hear that. " if task.slots.get("reason") in ("lost", "stolen", "suspected_fraud") else ""


def _verb(intent: str) -> str:
    return "unblock" if intent == understand.UNBLOCK else "block"


def _put(slots: dict[str, Any], name: str, value: float, bounds: tuple[float, float]) -> None:
    if bounds[0] <= value <= bounds[1]:
        slots[name] = int(value) if float(value).is_integer() else value


def _fit(arguments: dict[str, Any], tool: Tool) -> dict[str, Any]:
    """Keep only the arguments the offered tool's schema declares, in its order (all when it declares none)."""
    properties = tool.parameters.get("properties")
    if not isinstance(properties, Mapping) or not properties:
        return arguments
    return {k: arguments[k] for k in properties if k in arguments}


def _object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return {}
    return value if isinstance(value, dict) else {}
