"""Money as ``Decimal`` dollars: rounding to cents and writing amounts the way a bank statement does.

Amounts are written with a thousands comma (``$1,264.14``): the comma also keeps large amounts
from looking like account numbers to ``mesh.pii`` (which reads runs of 8+ digits as numbers to
mask), and TTS reads ``$1,264.14`` as "one thousand two hundred sixty-four dollars and fourteen
cents".
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


def to_cents(amount: Decimal) -> Decimal:
    """``amount`` rounded to whole cents, halves away from zero (ROUND_HALF_UP)."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def from_minor_units(cents: int) -> Decimal:
    """Dollars from an integer count of cents, exactly."""
    return Decimal(cents).scaleb(-2)


def format_usd(amount: Decimal) -> str:
    """``amount`` as US dollars with cents and thousands commas: ``-$1,234.50``."""
    rounded = to_cents(amount)
    sign = "-" if rounded < 0 else ""
    return f"{sign}${abs(rounded):,.2f}"


def format_usd_whole(amount: Decimal) -> str:
    """Like ``format_usd`` but without cents when there are none: ``$200,000``, ``$1,500.50``."""
    rounded = to_cents(amount)
    if rounded == rounded.to_integral_value():
        sign = "-" if rounded < 0 else ""
        return f"{sign}${abs(rounded):,.0f}"
    return format_usd(rounded)


def format_percent(rate: Decimal) -> str:
    """A percentage without trailing zeros: ``6.5%``, ``7%``, ``0.25%``."""
    text = f"{rate.normalize():f}"
    return f"{text}%"
