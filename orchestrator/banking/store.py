"""The accounts store: customers, accounts, cards and transactions in SQLite.

The embedded build opens an in-memory (or file) database seeded from ``demo_seed.sql``: DEMO
DATA ONLY, fictional customers with public test card numbers (see that file). SQLite blocks, so
every query runs in a ``mesh.workers.WorkerBridge`` thread; the public methods are coroutines.

Full card and account numbers never leave this module: rows are read back into domain types
that hold only the last four digits and the masked number (``mesh.pii.mask_digits``). Identity
checks compare the last four inside the store, in constant time.

Usage::

    store = AccountStore(":memory:")      # or a file path; seeded with demo data when empty
    await store.open()
    customer = await store.verify("+12175550101", date(1980, 3, 4), "4242")
    ...
    store.close()
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import TypeVar

from mesh.pii import mask_digits
from mesh.workers import WorkerBridge
from orchestrator.banking.money import from_minor_units

T = TypeVar("T")

ACTIVE = "active"
BLOCKED = "blocked"


@dataclass(frozen=True)
class Customer:
    """A customer, without the facts used to verify them."""

    customer_id: str
    full_name: str

    @property
    def first_name(self) -> str:
        """The first word of the name, for greetings."""
        return self.full_name.split()[0]


@dataclass(frozen=True)
class Account:
    """An account: ``masked`` is its number with all but the last four digits masked."""

    account_id: str
    kind: str
    nickname: str
    masked: str
    last_four: str
    balance: Decimal
    available: Decimal


@dataclass(frozen=True)
class Card:
    """A payment card: ``masked`` is its number with all but the last four digits masked.

    ``block_reason`` says why a blocked card was blocked ("lost", "stolen", ...); None when active.
    """

    card_id: str
    account_id: str
    kind: str
    masked: str
    last_four: str
    status: str
    block_reason: str | None = None


@dataclass(frozen=True)
class Transaction:
    """A posted transaction; ``amount`` is negative for money out (or a credit card charge)."""

    account_id: str
    posted_on: dt.date
    description: str
    amount: Decimal


@dataclass(frozen=True)
class CardChange:
    """The result of a block or unblock: the card after it, and whether anything changed."""

    card: Card
    changed: bool


def normalize_caller_id(caller_id: str) -> str:
    """A caller id as E.164 (``+12175550101``); 10-digit numbers are taken as North American."""
    digits = re.sub(r"\D", "", caller_id)
    if len(digits) == 10:
        digits = "1" + digits
    return "+" + digits if digits else ""


def _read_sql(name: str) -> str:
    return resources.files("orchestrator.banking").joinpath(name).read_text(encoding="utf-8")


def _account(row: sqlite3.Row) -> Account:
    number = str(row["account_number"])
    return Account(
        account_id=row["account_id"],
        kind=row["kind"],
        nickname=row["nickname"],
        masked=mask_digits(number),
        last_four=number[-4:],
        balance=from_minor_units(row["balance_cents"]),
        available=from_minor_units(row["available_cents"]),
    )


def _card(row: sqlite3.Row) -> Card:
    number = str(row["card_number"])
    return Card(
        card_id=row["card_id"],
        account_id=row["account_id"],
        kind=row["kind"],
        masked=mask_digits(number),
        last_four=number[-4:],
        status=row["status"],
        block_reason=row["block_reason"],
    )


class AccountStore:
    """Customers, accounts, cards and transactions; see the module docstring."""

    def __init__(
        self, path: str | Path = ":memory:", *, seed_demo: bool = True, bridge: WorkerBridge | None = None
    ) -> None:
        """Use the SQLite database at ``path``; nothing opens until ``open``.

        Args:
            path: A file, or ":memory:" for a private in-memory database.
            seed_demo: Fill an empty database with the demo customers.
            bridge: Worker threads for the queries; by default one thread with 64 calls pending at most.
        """
        self.path = str(path)
        self.seed_demo = seed_demo
        self._bridge = bridge or WorkerBridge("banking-store", workers=1, max_pending=64)
        self._owns_bridge = bridge is None
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self.is_demo = False

    async def open(self) -> None:
        """Open the database, create the tables and seed the demo data when it is empty."""
        await self._bridge.run(self._open)

    def _open(self) -> None:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA foreign_keys = ON")
        db.executescript(_read_sql("schema.sql"))
        empty = db.execute("SELECT COUNT(*) FROM customers").fetchone()[0] == 0
        if empty and self.seed_demo:
            db.executescript("BEGIN;" + _read_sql("demo_seed.sql") + "COMMIT;")
        demo = db.execute("SELECT value FROM store_info WHERE key = 'demo'").fetchone()
        self.is_demo = demo is not None and demo[0] == "1"
        self._db = db

    def close(self) -> None:
        """Close the database (and the worker threads this store started)."""
        if self._db is not None:
            with self._lock:
                self._db.close()
                self._db = None
        if self._owns_bridge:
            self._bridge.close()

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._bridge.run(self._locked, fn)

    def _locked(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            if self._db is None:
                raise RuntimeError("the account store is not open")
            return fn(self._db)

    async def customer_for_caller(self, caller_id: str) -> Customer | None:
        """The customer who calls from ``caller_id``, or None."""
        key = normalize_caller_id(caller_id)

        def query(db: sqlite3.Connection) -> Customer | None:
            row = db.execute("SELECT customer_id, full_name FROM customers WHERE caller_id = ?", (key,)).fetchone()
            return Customer(row["customer_id"], row["full_name"]) if row else None

        return await self._run(query)

    async def verify(self, caller_id: str, date_of_birth: dt.date, last_four: str) -> Customer | None:
        """The customer who calls from ``caller_id`` if both facts match, else None.

        ``date_of_birth`` must be theirs and ``last_four`` the last four digits of one of their
        cards or accounts.
        """
        key = normalize_caller_id(caller_id)

        def query(db: sqlite3.Connection) -> Customer | None:
            row = db.execute(
                "SELECT customer_id, full_name, date_of_birth FROM customers WHERE caller_id = ?", (key,)
            ).fetchone()
            if row is None:
                return None
            numbers = [
                str(r[0])
                for r in db.execute(
                    "SELECT card_number FROM cards WHERE customer_id = ? "
                    "UNION ALL SELECT account_number FROM accounts WHERE customer_id = ?",
                    (row["customer_id"], row["customer_id"]),
                )
            ]
            # Every comparison runs, so timing says nothing about which fact was wrong.
            dob_ok = hmac.compare_digest(str(row["date_of_birth"]), date_of_birth.isoformat())
            four_ok = False
            for number in numbers:
                four_ok |= hmac.compare_digest(number[-4:], last_four)
            return Customer(row["customer_id"], row["full_name"]) if dob_ok and four_ok else None

        return await self._run(query)

    async def accounts(self, customer_id: str) -> list[Account]:
        """The customer's accounts: checking first, then savings, then credit cards."""

        def query(db: sqlite3.Connection) -> list[Account]:
            rows = db.execute(
                "SELECT * FROM accounts WHERE customer_id = ? ORDER BY "
                "CASE kind WHEN 'checking' THEN 0 WHEN 'savings' THEN 1 ELSE 2 END, account_id",
                (customer_id,),
            )
            return [_account(row) for row in rows]

        return await self._run(query)

    async def transactions(self, customer_id: str, account_id: str | None = None, limit: int = 5) -> list[Transaction]:
        """The customer's newest transactions (of one account when ``account_id`` is given), newest first."""

        def query(db: sqlite3.Connection) -> list[Transaction]:
            sql = (
                "SELECT t.account_id, t.posted_on, t.description, t.amount_cents FROM transactions t "
                "JOIN accounts a ON a.account_id = t.account_id WHERE a.customer_id = ?"
            )
            params: list[object] = [customer_id]
            if account_id is not None:
                sql += " AND t.account_id = ?"
                params.append(account_id)
            sql += " ORDER BY t.posted_on DESC, t.transaction_id DESC LIMIT ?"
            params.append(limit)
            return [
                Transaction(
                    row["account_id"],
                    dt.date.fromisoformat(row["posted_on"]),
                    row["description"],
                    from_minor_units(row["amount_cents"]),
                )
                for row in db.execute(sql, params)
            ]

        return await self._run(query)

    async def cards(self, customer_id: str) -> list[Card]:
        """The customer's cards: debit first, then credit."""

        def query(db: sqlite3.Connection) -> list[Card]:
            rows = db.execute("SELECT * FROM cards WHERE customer_id = ? ORDER BY kind DESC, card_id", (customer_id,))
            return [_card(row) for row in rows]

        return await self._run(query)

    async def set_card_status(self, customer_id: str, card_id: str, status: str, reason: str = "") -> CardChange:
        """Block (``status="blocked"``) or unblock (``"active"``) one of the customer's cards.

        Idempotent: a card already in ``status`` is left alone and ``changed`` is False. Each
        change is written to ``card_events`` with ``reason``; a block keeps it as ``block_reason``.

        Raises:
            ValueError: unknown status.
            LookupError: the card is not the customer's.
        """
        if status not in (ACTIVE, BLOCKED):
            raise ValueError(f"unknown card status {status!r}")

        def change(db: sqlite3.Connection) -> CardChange:
            db.execute("BEGIN IMMEDIATE")
            try:
                updated = db.execute(
                    "UPDATE cards SET status = ?, block_reason = ?, "
                    "status_changed_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') "
                    "WHERE card_id = ? AND customer_id = ? AND status != ?",
                    (status, (reason or "other") if status == BLOCKED else None, card_id, customer_id, status),
                ).rowcount
                if updated:
                    db.execute(
                        "INSERT INTO card_events (card_id, action, reason) VALUES (?, ?, ?)",
                        (card_id, "block" if status == BLOCKED else "unblock", reason[:200]),
                    )
                row = db.execute(
                    "SELECT * FROM cards WHERE card_id = ? AND customer_id = ?", (card_id, customer_id)
                ).fetchone()
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            if row is None:
                raise LookupError(f"card {card_id} is not a card of customer {customer_id}")
            return CardChange(_card(row), bool(updated))

        return await self._run(change)
