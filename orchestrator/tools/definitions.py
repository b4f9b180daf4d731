"""Canonical definitions of the banking tools, and the system prompt for real language models.

Data only: each tool is ``{"name", "description", "parameters"}`` with ``parameters`` a JSON
Schema object, the shape OpenAI-compatible servers (vLLM) take and ``ToolDefinition`` carries
(``parameters_json_schema`` is ``json.dumps(parameters)``). The tools run in the orchestrator;
llm_svc's engines only see them in requests. Each description ends with the result the tool
returns, as a JSON object text in the ROLE_TOOL message; a failed call returns
``{"error": "<message the bot can say>"}`` instead. An error that is a question ("Which card
should I block: your debit card or your credit card?") may add ``field`` (the argument to ask
for again) or ``cards`` (``[{"kind", "card_last_four"}]`` to choose from).
"""

from __future__ import annotations

from typing import Any

_CARD_LAST_FOUR = {
    "type": "string",
    "pattern": "^[0-9]{4}$",
    "description": "Last four digits of the card to act on, when the caller has several and said which; "
    "otherwise omit it (the tool asks which card when it needs to).",
}
_CONFIRMED = {
    "type": "boolean",
    "description": "True only after the caller explicitly said yes to this action in the conversation. "
    "The tool refuses to act when it is false.",
}

TOOLS: tuple[dict[str, Any], ...] = (
    {
        "name": "verify_identity",
        "description": "Verify the caller before any account information or card action. Ask for the date of "
        "birth and the last four digits of the card, one at a time, then call this. "
        'Returns {"verified": true|false}.',
        "parameters": {
            "type": "object",
            "properties": {
                "date_of_birth": {
                    "type": "string",
                    "format": "date",
                    "description": "The caller's date of birth, YYYY-MM-DD.",
                },
                "last_four": {
                    "type": "string",
                    "pattern": "^[0-9]{4}$",
                    "description": "Last four digits of the caller's card number.",
                },
            },
            "required": ["date_of_birth", "last_four"],
            "additionalProperties": False,
        },
    },
    {
        "name": "get_balance",
        "description": "The verified caller's account balance. "
        'Returns {"account_type": "checking", "balance": 1234.56, "available": 1200.0, "currency": "USD"}.',
        "parameters": {
            "type": "object",
            "properties": {
                "account_type": {
                    "type": "string",
                    "enum": ["checking", "savings", "credit_card"],
                    "description": "Which account; checking when the caller does not say.",
                },
            },
            "additionalProperties": False,
        },
    },
    {
        "name": "recent_transactions",
        "description": "The verified caller's most recent transactions, newest first. "
        'Returns {"transactions": [{"date": "2025-03-03", "description": "Grocery Mart", "amount": -45.2}]}; '
        "negative amounts are payments, positive ones deposits.",
        "parameters": {
            "type": "object",
            "properties": {
                "count": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 10,
                    "description": "How many transactions; 5 when the caller does not say.",
                },
                "account_type": {"type": "string", "enum": ["checking", "savings", "credit_card"]},
            },
            "additionalProperties": False,
        },
    },
    {
        "name": "loan_payment",
        "description": "Quote the monthly payment of a fixed-rate loan or mortgage. Ask for any missing amount, "
        "term or rate first; never guess them. Convert years to months yourself (30 years = 360). "
        'Returns {"monthly_payment": 386.66, "total_interest": 3199.36, "principal": 20000, '
        '"annual_rate_percent": 6, "term_months": 60}.',
        "parameters": {
            "type": "object",
            "properties": {
                "principal": {"type": "number", "exclusiveMinimum": 0, "description": "Amount borrowed, in USD."},
                "annual_rate_percent": {
                    "type": "number",
                    "minimum": 0,
                    "maximum": 30,
                    "description": "Annual interest rate in percent, e.g. 6.5.",
                },
                "term_months": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 480,
                    "description": "Repayment term in months.",
                },
            },
            "required": ["principal", "annual_rate_percent", "term_months"],
            "additionalProperties": False,
        },
    },
    {
        "name": "block_card",
        "description": "Block the verified caller's card (lost, stolen, damaged or fraud). Confirm with the "
        "caller first. Never use it when the caller asks to unblock. "
        'Returns {"blocked": true, "card_last_four": "4321", "replacement_days": 5}.',
        "parameters": {
            "type": "object",
            "properties": {
                "reason": {"type": "string", "enum": ["lost", "stolen", "damaged", "suspected_fraud", "other"]},
                "card_last_four": _CARD_LAST_FOUR,
                "confirmed": _CONFIRMED,
            },
            "required": ["reason", "confirmed"],
            "additionalProperties": False,
        },
    },
    {
        "name": "unblock_card",
        "description": "Unblock the verified caller's blocked card (for example, it was found). Confirm with the "
        'caller first. Returns {"unblocked": true, "card_last_four": "4321"}.',
        "parameters": {
            "type": "object",
            "properties": {"card_last_four": _CARD_LAST_FOUR, "confirmed": _CONFIRMED},
            "required": ["confirmed"],
            "additionalProperties": False,
        },
    },
    {
        "name": "branch_hours",
        "description": "Opening hours and addresses of branches, nearest to a place when the caller names one. "
        'Returns {"branches": [{"name": "Downtown", "address": "12 Main Street", '
        '"hours": "Monday to Friday 9 AM to 5 PM"}]}.',
        "parameters": {
            "type": "object",
            "properties": {
                "location": {
                    "type": "string",
                    "description": "Town, street or neighbourhood the caller named; omit when none.",
                },
            },
            "additionalProperties": False,
        },
    },
    {
        "name": "transfer_to_agent",
        "description": "Transfer the call to a human agent when the caller asks for one or you cannot help. "
        'Returns {"transferred": true, "wait_minutes": 2}.',
        "parameters": {
            "type": "object",
            "properties": {
                "reason": {"type": "string", "description": "Why, in a few words, for the agent."},
            },
            "required": ["reason"],
            "additionalProperties": False,
        },
    },
    {
        "name": "end_call",
        "description": "End the call after the caller says goodbye or has nothing else. "
        'Returns {"ended": true}; then say a short goodbye.',
        "parameters": {
            "type": "object",
            "properties": {"reason": {"type": "string", "description": "Why the call ends, in a few words."}},
            "additionalProperties": False,
        },
    },
)

TOOL_NAMES: tuple[str, ...] = tuple(tool["name"] for tool in TOOLS)

SYSTEM_PROMPT = """\
You are the voice assistant of a retail bank, speaking with a caller on the phone. Your words are \
turned into speech, so answer in one to three short, plain sentences: no lists, no markdown, no \
emoji, and write amounts the way they are said ("$386.66 a month"). The caller's words come from \
speech recognition: expect lower case, missing punctuation and numbers written as words \
("twenty thousand dollars over five years at six percent").

You can check balances, read recent transactions, quote loan and mortgage payments, block or \
unblock cards, give branch hours and locations, and transfer the caller to a human agent. Use the \
tools for all of these; never invent balances, transactions, rates or hours. Before any balance, \
transaction or card action, verify the caller with verify_identity: ask for the date of birth, then \
the last four digits of the card, one question at a time. For a loan quote ask for any missing \
amount, term or rate, one at a time, and never assume them. Before block_card or unblock_card, \
repeat the action back and call the tool only after the caller says yes; never block a card when \
the caller asked to unblock it, or the other way round. When the caller says goodbye or has \
nothing else, call end_call. For anything else, say briefly what you can help with, and offer an \
agent.\
"""
