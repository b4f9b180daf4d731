"""The banking domain: what the voicebot's tools do.

- ``loans``: loan quotes and amortisation schedules, exact to the cent; ``LOAN_DISCLOSURE``.
- ``store``: the SQLite accounts store (seeded with DEMO data: ``demo_seed.sql``).
- ``spoken``: dates of birth and last-four digits as callers say them.
- ``branches``: the branch table (DEMO data) and branch lookups.
- ``handlers``: each tool's behaviour, identity verification and its lockout.
- ``runner``: ``BankingToolRunner``, what the call pipeline calls.
"""

from orchestrator.banking.loans import LOAN_DISCLOSURE

__all__ = ["LOAN_DISCLOSURE"]
