"""Fixtures for the banking tools: a real SQLite store seeded with the demo customers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from orchestrator.banking.handlers import BankingTools
from orchestrator.banking.runner import BankingToolRunner
from orchestrator.banking.store import AccountStore
from tests.orchestrator.banking.demo import TODAY


@pytest.fixture
async def store() -> AsyncIterator[AccountStore]:
    account_store = AccountStore(":memory:")
    await account_store.open()
    yield account_store
    account_store.close()


@pytest.fixture
def runner(store: AccountStore) -> BankingToolRunner:
    return BankingToolRunner(BankingTools(store, today=lambda: TODAY))
