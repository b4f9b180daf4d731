"""The demo customers of orchestrator/banking/demo_seed.sql, as the tests know them."""

from __future__ import annotations

import datetime as dt

from orchestrator.banking.handlers import VerificationState

# Demo customers (orchestrator/banking/demo_seed.sql).
ALEX = "+12175550101"  # born 1980-03-04; debit card 4242; checking 2345, savings 7890
PRIYA = "+12175550102"  # born 1992-11-23; debit card 5556
SAM = "+12175550103"  # born 1975-07-04; debit card 1117, blocked as lost
CHEN = "+12175550104"  # born 2001-02-28; debit card 1111 and credit card 0005
TAYLOR = "+12175550105"  # born 1968-12-31; debit card 4444, blocked as stolen; savings 7891

FULL_NUMBERS = (
    "4242424242424242",
    "4000056655665556",
    "6011111111111117",
    "4111111111111111",
    "378282246310005",
    "5555555555554444",
    "4400012345",
    "4400067890",
    "4400023456",
    "4400034567",
    "4400045678",
    "4400056789",
    "6600054321",
    "4400067891",
)

TODAY = dt.date(2026, 5, 1)


def session(caller_id: str = ALEX, verified: bool = False) -> VerificationState:
    return VerificationState(caller_id=caller_id, verified=verified)
