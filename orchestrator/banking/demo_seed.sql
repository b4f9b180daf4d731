-- DEMO DATA ONLY. Fictional customers for the embedded voicebot: the people, phone numbers
-- (555-01xx, reserved for fiction), dates of birth, account numbers and balances are made up, and
-- the card numbers are the public test numbers of card networks and payment processors (they
-- pass the Luhn check, so PII masking treats them as real). Every row has demo = 1.
-- Transaction dates are relative to the day the store is seeded.

INSERT INTO store_info (key, value) VALUES
    ('demo', '1'),
    ('description', 'Fictional demo customers for the voicebot; not real people, accounts or cards.');

INSERT INTO customers (customer_id, full_name, caller_id, date_of_birth, demo) VALUES
    ('cust-001', 'Alex Rivera', '+12175550101', '1980-03-04', 1),
    ('cust-002', 'Priya Shah', '+12175550102', '1992-11-23', 1),
    ('cust-003', 'Sam Okafor', '+12175550103', '1975-07-04', 1),
    ('cust-004', 'Chen Wei', '+12175550104', '2001-02-28', 1),
    ('cust-005', 'Taylor Brooks', '+12175550105', '1968-12-31', 1);

INSERT INTO accounts (account_id, customer_id, kind, nickname, account_number, balance_cents, available_cents, demo) VALUES
    ('acct-001-chk', 'cust-001', 'checking', 'Everyday Checking', '4400012345', 245017, 245017, 1),
    ('acct-001-sav', 'cust-001', 'savings', 'High Yield Savings', '4400067890', 1280000, 1280000, 1),
    ('acct-002-chk', 'cust-002', 'checking', 'Everyday Checking', '4400023456', 81542, 81542, 1),
    ('acct-003-chk', 'cust-003', 'checking', 'Premier Checking', '4400034567', 531008, 531008, 1),
    ('acct-003-sav', 'cust-003', 'savings', 'Savings', '4400045678', 4120055, 4120055, 1),
    ('acct-004-chk', 'cust-004', 'checking', 'Student Checking', '4400056789', 9620, 4620, 1),
    ('acct-004-cc', 'cust-004', 'credit_card', 'Cash Back Credit Card', '6600054321', 120433, 279567, 1),
    ('acct-005-sav', 'cust-005', 'savings', 'Savings', '4400067891', 15000000, 15000000, 1);

INSERT INTO cards (card_id, customer_id, account_id, kind, card_number, status, block_reason, demo) VALUES
    ('card-001-debit', 'cust-001', 'acct-001-chk', 'debit', '4242424242424242', 'active', NULL, 1),
    ('card-002-debit', 'cust-002', 'acct-002-chk', 'debit', '4000056655665556', 'active', NULL, 1),
    ('card-003-debit', 'cust-003', 'acct-003-chk', 'debit', '6011111111111117', 'blocked', 'lost', 1),
    ('card-004-debit', 'cust-004', 'acct-004-chk', 'debit', '4111111111111111', 'active', NULL, 1),
    ('card-004-credit', 'cust-004', 'acct-004-cc', 'credit', '378282246310005', 'active', NULL, 1),
    ('card-005-debit', 'cust-005', 'acct-005-sav', 'debit', '5555555555554444', 'blocked', 'stolen', 1);

INSERT INTO card_events (card_id, action, at, reason) VALUES
    ('card-003-debit', 'block', strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-6 days'), 'lost'),
    ('card-005-debit', 'block', strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-2 days'), 'stolen');

INSERT INTO transactions (account_id, posted_on, description, amount_cents, demo) VALUES
    ('acct-001-chk', date('now', '-1 day'), 'Corner Market groceries', -5412, 1),
    ('acct-001-chk', date('now', '-2 days'), 'Coffee House', -475, 1),
    ('acct-001-chk', date('now', '-3 days'), 'Payroll deposit ACME Corp', 285000, 1),
    ('acct-001-chk', date('now', '-5 days'), 'City Power and Light', -11890, 1),
    ('acct-001-chk', date('now', '-8 days'), 'ATM withdrawal Main Street', -10000, 1),
    ('acct-001-chk', date('now', '-11 days'), 'Rent payment', -145000, 1),
    ('acct-001-chk', date('now', '-14 days'), 'Streaming subscription', -1599, 1),
    ('acct-001-sav', date('now', '-4 days'), 'Interest payment', 2133, 1),
    ('acct-001-sav', date('now', '-20 days'), 'Transfer from Everyday Checking', 50000, 1),
    ('acct-002-chk', date('now', '-1 day'), 'Pharmacy', -2318, 1),
    ('acct-002-chk', date('now', '-2 days'), 'Ride share', -1744, 1),
    ('acct-002-chk', date('now', '-6 days'), 'Payroll deposit Northwind', 164020, 1),
    ('acct-002-chk', date('now', '-7 days'), 'Mobile phone bill', -6500, 1),
    ('acct-003-chk', date('now', '-1 day'), 'Hardware store', -8733, 1),
    ('acct-003-chk', date('now', '-4 days'), 'Restaurant', -6150, 1),
    ('acct-003-chk', date('now', '-10 days'), 'Pension deposit', 320000, 1),
    ('acct-003-sav', date('now', '-15 days'), 'Interest payment', 6866, 1),
    ('acct-004-chk', date('now', '0 days'), 'Campus bookstore (pending)', -5000, 1),
    ('acct-004-chk', date('now', '-3 days'), 'Transfer from parent', 20000, 1),
    ('acct-004-cc', date('now', '-1 day'), 'Electronics store', -39999, 1),
    ('acct-004-cc', date('now', '-12 days'), 'Airline tickets', -61234, 1),
    ('acct-005-sav', date('now', '-30 days'), 'Interest payment', 18750, 1);
