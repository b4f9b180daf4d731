-- The accounts store that the voicebot's banking tools read (SQLite).
--
-- Every table carries a `demo` flag: 1 marks a fictional record from demo_seed.sql, which is all
-- the embedded build ever holds. Full card and account numbers live only in this store; the
-- Python side reads them back masked (all but the last four digits) and never returns them.

CREATE TABLE IF NOT EXISTS store_info (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS customers (
    customer_id TEXT PRIMARY KEY,
    full_name TEXT NOT NULL,
    -- Phone number the customer calls from, E.164 ("+12175550101"); the caller id of a call.
    caller_id TEXT NOT NULL UNIQUE,
    -- ISO 8601 date, checked during identity verification.
    date_of_birth TEXT NOT NULL,
    demo INTEGER NOT NULL DEFAULT 1 CHECK (demo IN (0, 1))
);

CREATE TABLE IF NOT EXISTS accounts (
    account_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (customer_id),
    kind TEXT NOT NULL CHECK (kind IN ('checking', 'savings', 'credit_card')),
    nickname TEXT NOT NULL,
    -- Full account number: never leaves the store unmasked.
    account_number TEXT NOT NULL UNIQUE,
    -- Ledger balance in cents; for a credit card, the amount owed.
    balance_cents INTEGER NOT NULL,
    -- Available to spend in cents (available credit for a credit card).
    available_cents INTEGER NOT NULL,
    demo INTEGER NOT NULL DEFAULT 1 CHECK (demo IN (0, 1))
);

CREATE TABLE IF NOT EXISTS cards (
    card_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (customer_id),
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    kind TEXT NOT NULL CHECK (kind IN ('debit', 'credit')),
    -- Full card number (public test numbers in the demo): never leaves the store unmasked.
    card_number TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'blocked')),
    -- Why a blocked card was blocked: lost, stolen, damaged, suspected_fraud or other; NULL when active.
    block_reason TEXT,
    -- UTC time of the last block or unblock, ISO 8601; NULL when never changed.
    status_changed_at TEXT,
    demo INTEGER NOT NULL DEFAULT 1 CHECK (demo IN (0, 1))
);

CREATE TABLE IF NOT EXISTS transactions (
    transaction_id INTEGER PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    -- ISO 8601 date the transaction posted.
    posted_on TEXT NOT NULL,
    description TEXT NOT NULL,
    -- Cents; negative is money out of the account (or a charge on a credit card).
    amount_cents INTEGER NOT NULL,
    demo INTEGER NOT NULL DEFAULT 1 CHECK (demo IN (0, 1))
);

CREATE INDEX IF NOT EXISTS transactions_by_account ON transactions (account_id, posted_on DESC);

-- Audit trail of card blocks and unblocks made by the voicebot.
CREATE TABLE IF NOT EXISTS card_events (
    event_id INTEGER PRIMARY KEY,
    card_id TEXT NOT NULL REFERENCES cards (card_id),
    action TEXT NOT NULL CHECK (action IN ('block', 'unblock')),
    at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    reason TEXT NOT NULL DEFAULT ''
);
