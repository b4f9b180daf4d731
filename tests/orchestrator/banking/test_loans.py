"""Loan quotes are exact to the cent: published figures, an exact-fraction cross-check, schedule sums."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.banking.loans import (
    LOAN_DISCLOSURE,
    PRINCIPAL_HINT,
    RATE_HINT,
    TERM_HINT,
    LoanInputError,
    amortization_schedule,
    describe_term,
    monthly_payment,
    quote,
)


def exact_payment(principal: str, annual_rate_percent: str, months: int) -> Decimal:
    """The textbook formula P*r/(1-(1+r)^-n) in exact rational arithmetic, rounded half up to cents."""
    rate = Fraction(annual_rate_percent) / 1200
    value = Fraction(principal) / months if rate == 0 else Fraction(principal) * rate / (1 - (1 + rate) ** -months)
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


# Published amortisation figures (the standard fixed-rate mortgage and car-loan tables).
@pytest.mark.parametrize(
    ("principal", "rate", "months", "payment"),
    [
        ("200000", "6.5", 360, "1264.14"),
        ("20000", "6", 60, "386.66"),
        ("100000", "5", 360, "536.82"),
        ("300000", "4", 360, "1432.25"),
        ("250000", "3.5", 180, "1787.21"),
        ("25000", "4.5", 60, "466.08"),
    ],
)
def test_matches_published_reference_payments(principal: str, rate: str, months: int, payment: str) -> None:
    assert monthly_payment(Decimal(principal), Decimal(rate), months) == Decimal(payment)
    assert quote(principal, rate, months).monthly_payment == Decimal(payment)


@pytest.mark.parametrize(
    ("principal", "rate", "months"),
    [
        ("1000", "0.01", 480),
        ("5000000", "30", 480),
        ("5000000", "0.125", 1),
        ("1234.56", "7.25", 37),
        ("999999.99", "12.99", 84),
        ("45000", "29.99", 72),
        ("1000", "0", 7),
    ],
)
def test_matches_exact_rational_and_high_precision_decimal_arithmetic(principal: str, rate: str, months: int) -> None:
    with localcontext() as ctx:
        ctx.prec = 120
        r = Decimal(rate) / 1200
        raw = Decimal(principal) / months if r == 0 else Decimal(principal) * r / (1 - (1 + r) ** -months)
    by_decimal = raw.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert monthly_payment(Decimal(principal), Decimal(rate), months) == exact_payment(principal, rate, months)
    assert monthly_payment(Decimal(principal), Decimal(rate), months) == by_decimal


def test_a_payment_of_exactly_half_a_cent_rounds_up() -> None:
    # 1000 * (1 + 0.0429 / 12) = 1003.575 exactly; finite-precision division would give 1003.57499...
    assert monthly_payment(Decimal(1000), Decimal("4.29"), 1) == Decimal("1003.58")


def test_zero_rate_divides_the_principal_and_the_last_payment_takes_the_remainder() -> None:
    schedule = amortization_schedule(Decimal("1000"), Decimal("0"), 3)
    assert [item.payment for item in schedule] == [Decimal("333.33"), Decimal("333.33"), Decimal("333.34")]
    assert all(item.interest == 0 for item in schedule)
    assert quote(1000, 0, 3).total_interest == 0


def test_one_month_loan_repays_principal_plus_one_month_of_interest() -> None:
    loan = quote(12000, 12, 1)
    assert loan.monthly_payment == loan.final_payment == Decimal("12120.00")
    assert loan.total_interest == Decimal("120.00")
    assert loan.payments == 1


def test_largest_quotable_loan_is_exact() -> None:
    loan = quote(5_000_000, 30, 480)
    assert loan.monthly_payment == exact_payment("5000000", "30", 480) == Decimal("125000.89")
    assert sum(item.principal for item in amortization_schedule(Decimal(5_000_000), Decimal(30), 480)) == 5_000_000


def test_schedule_reference_loan_in_detail() -> None:
    schedule = amortization_schedule(Decimal("200000"), Decimal("6.5"), 360)
    assert len(schedule) == 360
    first = schedule[0]
    assert (first.interest, first.principal, first.balance) == (
        Decimal("1083.33"),
        Decimal("180.81"),
        Decimal("199819.19"),
    )
    assert schedule[-1].balance == 0
    assert sum(item.principal for item in schedule) == Decimal("200000.00")
    assert all(item.payment == Decimal("1264.14") for item in schedule[:-1])
    assert schedule[-1].payment == schedule[-1].interest + schedule[-1].principal


@settings(max_examples=150, deadline=None)
@given(
    cents=st.integers(min_value=100_000, max_value=500_000_000),
    rate_bp=st.integers(min_value=0, max_value=3000),
    months=st.integers(min_value=1, max_value=480),
)
def test_every_schedule_sums_exactly_to_the_principal(cents: int, rate_bp: int, months: int) -> None:
    principal = Decimal(cents).scaleb(-2)
    rate = Decimal(rate_bp).scaleb(-2)
    schedule = amortization_schedule(principal, rate, months)
    assert sum(item.principal for item in schedule) == principal
    assert schedule[-1].balance == 0
    assert all(item.payment == item.interest + item.principal for item in schedule)
    assert all(item.principal >= 0 and item.interest >= 0 for item in schedule)
    assert len(schedule) <= months
    loan = quote(principal, rate, months)
    assert loan.total_paid == sum(item.payment for item in schedule)
    assert loan.monthly_payment == exact_payment(str(principal), str(rate), months)
    if rate_bp <= 1000 and months <= 360:
        # Half a cent of rounding a month, compounded over 30 years at 10%, is at most about $11.
        assert abs(loan.final_payment - loan.monthly_payment) <= 15


def test_extreme_rate_and_term_put_the_compounded_rounding_into_the_last_payment() -> None:
    # $25.00005 a month rounds to exactly the monthly interest: the level payments repay nothing.
    loan = quote(1000, 30, 345)
    assert loan.monthly_payment == Decimal("25.00")
    assert loan.final_payment == Decimal("1025.00")


def test_tiny_payment_at_zero_rate_clears_the_balance_early_instead_of_going_negative() -> None:
    # $2.085 a month rounds up to $2.09; 479 of those would overpay $1,000.80.
    schedule = amortization_schedule(Decimal("1000.80"), Decimal("0"), 480)
    assert len(schedule) == 479
    assert schedule[-1].payment == Decimal("1.78")
    assert sum(item.principal for item in schedule) == Decimal("1000.80")


def test_quote_is_spoken_with_the_disclosure_last() -> None:
    text = quote(20000, 6, 60).spoken()
    assert text.startswith("For $20,000 at 6% over 5 years, the estimated monthly payment is $386.66")
    assert text.endswith(LOAN_DISCLOSURE)
    assert "not an offer of credit" in LOAN_DISCLOSURE


def test_float_rates_are_read_as_written() -> None:
    assert quote(200000.0, 6.5, 360.0).annual_rate_percent == Decimal("6.5")


@pytest.mark.parametrize(
    ("principal", "rate", "months", "field", "hint"),
    [
        (999.99, 5, 60, "principal", PRINCIPAL_HINT),
        (5_000_000.01, 5, 60, "principal", PRINCIPAL_HINT),
        ("lots", 5, 60, "principal", PRINCIPAL_HINT),
        ("NaN", 5, 60, "principal", PRINCIPAL_HINT),
        (10000, -0.5, 60, "annual_rate_percent", RATE_HINT),
        (10000, 30.01, 60, "annual_rate_percent", RATE_HINT),
        (10000, 5, 0, "term_months", TERM_HINT),
        (10000, 5, 481, "term_months", TERM_HINT),
        (10000, 5, 12.5, "term_months", TERM_HINT),
    ],
)
def test_out_of_range_inputs_are_refused_with_a_spoken_question(
    principal: object, rate: object, months: object, field: str, hint: str
) -> None:
    with pytest.raises(LoanInputError) as caught:
        quote(principal, rate, months)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert caught.value.message == hint


def test_hints_name_the_limits() -> None:
    assert PRINCIPAL_HINT == "I can quote loans from $1,000 to $5,000,000 — what amount did you have in mind?"
    assert "0% to 30%" in RATE_HINT
    assert "480 months" in TERM_HINT


@pytest.mark.parametrize(
    ("months", "words"), [(1, "1 month"), (12, "1 year"), (18, "18 months"), (360, "30 years"), (60, "5 years")]
)
def test_describe_term(months: int, words: str) -> None:
    assert describe_term(months) == words
