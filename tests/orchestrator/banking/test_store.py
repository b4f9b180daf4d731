"""The SQLite accounts store: demo seed, identity checks, masking, card status changes, worker threads."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import threading
from pathlib import Path

import pytest

from mesh.errors import ResourceExhausted
from mesh.workers import WorkerBridge
from orchestrator.banking.store import ACTIVE, BLOCKED, AccountStore, normalize_caller_id
from tests.orchestrator.banking.demo import ALEX, CHEN, FULL_NUMBERS, SAM


async def test_every_seeded_row_is_marked_demo(tmp_path: Path) -> None:
    path = tmp_path / "bank.sqlite"
    store = AccountStore(path)
    await store.open()
    store.close()
    assert store.is_demo
    db = sqlite3.connect(path)
    for table in ("customers", "accounts", "cards", "transactions"):
        count, demo = db.execute(f"SELECT COUNT(*), SUM(demo) FROM {table}").fetchone()
        assert count > 0
        assert demo == count, table
    assert db.execute("SELECT value FROM store_info WHERE key = 'demo'").fetchone() == ("1",)
    db.close()


async def test_a_file_store_is_seeded_once_and_keeps_changes(tmp_path: Path) -> None:
    path = tmp_path / "bank.sqlite"
    store = AccountStore(path)
    await store.open()
    customer = await store.customer_for_caller(ALEX)
    assert customer is not None
    card = (await store.cards(customer.customer_id))[0]
    await store.set_card_status(customer.customer_id, card.card_id, BLOCKED, "lost")
    store.close()

    reopened = AccountStore(path)
    await reopened.open()
    cards = await reopened.cards(customer.customer_id)
    reopened.close()
    assert [c.status for c in cards] == [BLOCKED]
    assert sqlite3.connect(path).execute("SELECT COUNT(*) FROM customers").fetchone() == (5,)


async def test_an_unseeded_store_is_empty_and_not_demo() -> None:
    store = AccountStore(":memory:", seed_demo=False)
    await store.open()
    assert not store.is_demo
    assert await store.customer_for_caller(ALEX) is None
    store.close()


@pytest.mark.parametrize("caller_id", ["+12175550101", "12175550101", "(217) 555-0101", "217.555.0101", "2175550101"])
async def test_caller_ids_match_in_any_common_format(store: AccountStore, caller_id: str) -> None:
    customer = await store.customer_for_caller(caller_id)
    assert customer is not None
    assert customer.first_name == "Alex"


def test_normalize_caller_id() -> None:
    assert normalize_caller_id("+44 20 7946 0000") == "+442079460000"
    assert normalize_caller_id("anonymous") == ""


async def test_verify_needs_the_caller_id_the_date_of_birth_and_a_last_four(store: AccountStore) -> None:
    born = dt.date(1980, 3, 4)
    assert await store.verify(ALEX, born, "4242") is not None  # debit card
    assert await store.verify(ALEX, born, "2345") is not None  # checking account
    assert await store.verify(ALEX, born, "1111") is None  # another customer's card
    assert await store.verify(ALEX, dt.date(1980, 4, 3), "4242") is None
    assert await store.verify(CHEN, born, "4242") is None
    assert await store.verify("+19995550000", born, "4242") is None


async def test_accounts_and_cards_come_back_masked(store: AccountStore) -> None:
    customer = await store.customer_for_caller(ALEX)
    assert customer is not None
    accounts = await store.accounts(customer.customer_id)
    assert [(a.kind, a.masked, a.last_four) for a in accounts] == [
        ("checking", "******2345", "2345"),
        ("savings", "******7890", "7890"),
    ]
    assert str(accounts[0].balance) == "2450.17"
    cards = await store.cards(customer.customer_id)
    assert [(c.masked, c.status) for c in cards] == [("************4242", ACTIVE)]
    for item in (*accounts, *cards):
        assert not any(number in repr(item) for number in FULL_NUMBERS)


async def test_transactions_newest_first_limited_and_per_account(store: AccountStore) -> None:
    customer = await store.customer_for_caller(ALEX)
    assert customer is not None
    items = await store.transactions(customer.customer_id, limit=4)
    assert len(items) == 4
    assert [i.posted_on for i in items] == sorted((i.posted_on for i in items), reverse=True)
    assert items[0].description == "Corner Market groceries"
    assert str(items[0].amount) == "-54.12"
    savings = await store.transactions(customer.customer_id, "acct-001-sav", limit=10)
    assert {i.account_id for i in savings} == {"acct-001-sav"}
    assert await store.transactions(customer.customer_id, "acct-004-chk", limit=10) == []  # someone else's


async def test_card_status_changes_are_idempotent_and_audited(tmp_path: Path) -> None:
    path = tmp_path / "bank.sqlite"
    store = AccountStore(path)
    await store.open()
    customer = await store.customer_for_caller(SAM)
    assert customer is not None
    card = (await store.cards(customer.customer_id))[0]
    assert (card.status, card.block_reason) == (BLOCKED, "lost")

    again = await store.set_card_status(customer.customer_id, card.card_id, BLOCKED, "stolen")
    assert not again.changed
    assert again.card.block_reason == "lost"
    unblocked = await store.set_card_status(customer.customer_id, card.card_id, ACTIVE, "found")
    assert unblocked.changed
    assert (unblocked.card.status, unblocked.card.block_reason) == (ACTIVE, None)
    assert not (await store.set_card_status(customer.customer_id, card.card_id, ACTIVE)).changed
    store.close()

    events = sqlite3.connect(path).execute("SELECT action, reason FROM card_events WHERE card_id = ?", (card.card_id,))
    assert events.fetchall() == [("block", "lost"), ("unblock", "found")]


async def test_a_card_of_another_customer_cannot_be_changed(store: AccountStore) -> None:
    alex = await store.customer_for_caller(ALEX)
    assert alex is not None
    with pytest.raises(LookupError):
        await store.set_card_status(alex.customer_id, "card-004-debit", BLOCKED)
    chen = await store.customer_for_caller(CHEN)
    assert chen is not None
    assert {c.status for c in await store.cards(chen.customer_id)} == {ACTIVE}
    with pytest.raises(ValueError, match="unknown card status"):
        await store.set_card_status(alex.customer_id, "card-001-debit", "frozen")


async def test_queries_run_in_the_bridge_threads_never_on_the_event_loop() -> None:
    bridge = WorkerBridge("banking-test", workers=1, max_pending=2)
    store = AccountStore(":memory:", bridge=bridge)
    await store.open()
    seen: list[str] = []

    def probe(db: sqlite3.Connection) -> int:
        seen.append(threading.current_thread().name)
        return int(db.execute("SELECT COUNT(*) FROM customers").fetchone()[0])

    assert await store._run(probe) == 5
    assert seen[0].startswith("banking-test")
    store.close()
    bridge.close()


async def test_a_full_bridge_refuses_with_resource_exhausted() -> None:
    bridge = WorkerBridge("banking-busy", workers=1, max_pending=1)
    store = AccountStore(":memory:", bridge=bridge)
    await store.open()
    release = threading.Event()
    blocked = asyncio.create_task(store._run(lambda db: release.wait(5)))
    await asyncio.sleep(0.05)
    with pytest.raises(ResourceExhausted):
        await store.customer_for_caller(ALEX)
    release.set()
    assert await blocked
    assert await store.customer_for_caller(ALEX) is not None
    store.close()
    bridge.close()


async def test_a_store_that_was_not_opened_says_so() -> None:
    store = AccountStore(":memory:")
    with pytest.raises(RuntimeError, match="not open"):
        await store.customer_for_caller(ALEX)
    store.close()
