"""Loan quotes: the monthly payment of a fixed-rate loan and its amortisation schedule, to the cent.

The payment is the standard annuity formula with the monthly rate ``r = annual_rate_percent / 1200``
over ``n`` monthly payments::

    payment = P * r / (1 - (1 + r) ** -n)        (r > 0)
    payment = P / n                              (r = 0)

computed exactly (rational arithmetic on the ``Decimal`` inputs) and rounded to cents with
ROUND_HALF_UP ($200,000 at 6.5% for 360 months gives $1,264.14); amounts are ``Decimal``. The
schedule charges each month's interest on the outstanding balance, rounded the same way; the
rest of the payment repays principal. The last payment is whatever clears the balance, so the
principal parts sum to the principal exactly. It also absorbs the compounded rounding of the
level payment: within about $11 for rates up to 10% over 30 years, far more at extreme rates
and terms ($1,000 at 30% over 345 months is $25.00 a month, exactly the interest, and $1,025.00
at the end). When the rounded payment over-pays so much that the balance is cleared before
month ``n`` (tiny payments at rates near 0%: $1,000.80 at 0% over 480 months), the schedule
ends that month.

Every quote is an estimate: ``LOAN_DISCLOSURE`` ends each spoken quote (and can be synthesised
once at start-up, as it never changes).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from orchestrator.banking.money import format_percent, format_usd, format_usd_whole, to_cents

LOAN_DISCLOSURE = (
    "This is an estimate for illustration only and not an offer of credit; "
    "your actual rate and payment depend on credit approval."
)

MIN_PRINCIPAL = Decimal(1_000)
MAX_PRINCIPAL = Decimal(5_000_000)
MIN_RATE_PERCENT = Decimal(0)
MAX_RATE_PERCENT = Decimal(30)
MIN_TERM_MONTHS = 1
MAX_TERM_MONTHS = 480

PRINCIPAL_HINT = (
    f"I can quote loans from {format_usd_whole(MIN_PRINCIPAL)} to {format_usd_whole(MAX_PRINCIPAL)}"
    " — what amount did you have in mind?"
)
RATE_HINT = (
    f"I can quote annual interest rates from {format_percent(MIN_RATE_PERCENT)} to {format_percent(MAX_RATE_PERCENT)}"
    " — what rate should I use?"
)
TERM_HINT = (
    f"I can quote terms from {MIN_TERM_MONTHS} month to {MAX_TERM_MONTHS // 12} years ({MAX_TERM_MONTHS} months)"
    " — how many months or years would you like?"
)


class LoanInputError(ValueError):
    """A loan input is missing or out of range; ``field`` names it and the message can be spoken."""

    def __init__(self, field: str, message: str) -> None:
        """Create the error for ``field`` with a message meant for the caller."""
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Installment:
    """One monthly payment of a schedule: ``payment = interest + principal``; ``balance`` is what remains after it."""

    number: int
    payment: Decimal
    interest: Decimal
    principal: Decimal
    balance: Decimal


@dataclass(frozen=True)
class LoanQuote:
    """A fixed-rate loan quote. Amounts are dollars rounded to cents."""

    principal: Decimal
    annual_rate_percent: Decimal
    term_months: int
    monthly_payment: Decimal
    final_payment: Decimal
    payments: int
    total_interest: Decimal
    total_paid: Decimal

    def spoken(self) -> str:
        """The quote as one or two sentences for the caller, ending with ``LOAN_DISCLOSURE``."""
        text = (
            f"For {format_usd_whole(self.principal)} at {format_percent(self.annual_rate_percent)} "
            f"over {describe_term(self.term_months)}, the estimated monthly payment is "
            f"{format_usd(self.monthly_payment)}"
        )
        if self.payments > 1 and self.final_payment != self.monthly_payment:
            text += f", with a final payment of {format_usd(self.final_payment)}"
        text += f", for total interest of {format_usd(self.total_interest)}. "
        return text + LOAN_DISCLOSURE


def describe_term(months: int) -> str:
    """``360`` -> "30 years", ``18`` -> "18 months", ``1`` -> "1 month", ``12`` -> "1 year"."""
    if months % 12 == 0:
        years = months // 12
        return f"{years} year" if years == 1 else f"{years} years"
    return f"{months} month" if months == 1 else f"{months} months"


def _decimal(value: Decimal | int | float | str, field: str, hint: str) -> Decimal:
    # Floats go through str() so 6.5 is Decimal("6.5"), not its binary approximation.
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise LoanInputError(field, hint) from None
    if not number.is_finite():
        raise LoanInputError(field, hint)
    return number


def validate_inputs(
    principal: Decimal | int | float | str,
    annual_rate_percent: Decimal | int | float | str,
    term_months: int | float | str,
) -> tuple[Decimal, Decimal, int]:
    """Check and normalise loan inputs: principal in cents, rate as given, term in whole months.

    Raises:
        LoanInputError: a value is not a number or is outside the quotable range; the message
            says the range and asks again, so it can be read to the caller as is.
    """
    amount = to_cents(_decimal(principal, "principal", PRINCIPAL_HINT))
    if not MIN_PRINCIPAL <= amount <= MAX_PRINCIPAL:
        raise LoanInputError("principal", PRINCIPAL_HINT)
    rate = _decimal(annual_rate_percent, "annual_rate_percent", RATE_HINT)
    if not MIN_RATE_PERCENT <= rate <= MAX_RATE_PERCENT:
        raise LoanInputError("annual_rate_percent", RATE_HINT)
    term = _decimal(term_months, "term_months", TERM_HINT)
    if term != term.to_integral_value() or not MIN_TERM_MONTHS <= term <= MAX_TERM_MONTHS:
        raise LoanInputError("term_months", TERM_HINT)
    return amount, rate, int(term)


def _cents_half_up(value: Fraction) -> Decimal:
    """``value`` (dollars, not negative) rounded half up to whole cents, in integer arithmetic."""
    cents = (2 * value.numerator * 100 + value.denominator) // (2 * value.denominator)
    return Decimal(cents).scaleb(-2)


def monthly_payment(principal: Decimal, annual_rate_percent: Decimal, term_months: int) -> Decimal:
    """The level monthly payment of the annuity formula, rounded to cents (ROUND_HALF_UP).

    Computed in exact rational arithmetic, so a payment that lands on half a cent rounds up as
    ROUND_HALF_UP says ($1,000 at 4.29% for one month is $1,003.575, quoted $1,003.58).
    Inputs are taken as given (see ``validate_inputs`` for the quotable ranges).
    """
    if term_months < 1:
        raise ValueError("term_months must be at least 1")
    if principal < 0 or annual_rate_percent < 0:
        raise ValueError("principal and rate must not be negative")
    amount = Fraction(principal)
    rate = Fraction(annual_rate_percent) / 1200
    if rate == 0:
        return _cents_half_up(amount / term_months)
    growth = (1 + rate) ** term_months
    return _cents_half_up(amount * rate * growth / (growth - 1))


def _schedule_cents(principal: Decimal, annual_rate_percent: Decimal, term_months: int) -> list[tuple[int, int, int]]:
    """The schedule as (interest, principal repaid, balance after) in whole cents, month by month."""
    payment = int(monthly_payment(principal, annual_rate_percent, term_months).scaleb(2))
    rate = Fraction(annual_rate_percent) / 1200
    # Integer cents: interest = balance * num / den, rounded half up, exactly and fast.
    num, den = rate.numerator, rate.denominator
    balance = int(principal.scaleb(2))
    rows: list[tuple[int, int, int]] = []
    for number in range(1, term_months + 1):
        interest = (2 * balance * num + den) // (2 * den)
        repaid = payment - interest
        if number == term_months or repaid >= balance:
            repaid = balance
        balance -= repaid
        rows.append((interest, repaid, balance))
        if balance == 0:
            break
    return rows


def amortization_schedule(principal: Decimal, annual_rate_percent: Decimal, term_months: int) -> list[Installment]:
    """The month-by-month schedule; principal parts sum exactly to ``principal`` (rounded to cents).

    Interest each month is the balance times the monthly rate, rounded half up to cents.
    Every payment but the last is ``monthly_payment``; the last clears the balance.
    """
    rows = _schedule_cents(to_cents(principal), annual_rate_percent, term_months)
    return [
        Installment(
            number,
            Decimal(interest + repaid).scaleb(-2),
            Decimal(interest).scaleb(-2),
            Decimal(repaid).scaleb(-2),
            Decimal(balance).scaleb(-2),
        )
        for number, (interest, repaid, balance) in enumerate(rows, start=1)
    ]


def quote(
    principal: Decimal | int | float | str,
    annual_rate_percent: Decimal | int | float | str,
    term_months: int | float | str,
) -> LoanQuote:
    """Validate the inputs and quote the loan.

    Raises:
        LoanInputError: see ``validate_inputs``.
    """
    amount, rate, term = validate_inputs(principal, annual_rate_percent, term_months)
    rows = _schedule_cents(amount, rate, term)
    total_interest = Decimal(sum(interest for interest, _, _ in rows)).scaleb(-2)
    return LoanQuote(
        principal=amount,
        annual_rate_percent=rate,
        term_months=term,
        monthly_payment=monthly_payment(amount, rate, term),
        final_payment=Decimal(rows[-1][0] + rows[-1][1]).scaleb(-2),
        payments=len(rows),
        total_interest=total_interest,
        total_paid=amount + total_interest,
    )
