"""Task pricing: the rate card times the surge multiplier, fixed into each offer.

Surge answers demand outrunning supply.  The ratio of waiting tickets to free
agent capacity (free seats = capacity minus assigned tickets, over online
approved agents) picks a band; the multiplier is capped (default 2.0, the low
end of ride-hailing's 1.2–3× range, since support tickets are less elastic).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ONE = Decimal("1.00")

# (ratio at or above which the band applies, multiplier)
DEFAULT_SURGE_BANDS: tuple[tuple[Decimal, Decimal], ...] = (
    (Decimal("1.0"), Decimal("1.20")),
    (Decimal("1.5"), Decimal("1.50")),
    (Decimal("2.0"), Decimal("1.80")),
    (Decimal("3.0"), Decimal("2.00")),
)
DEFAULT_SURGE_CAP = Decimal("2.00")

# The starting rate card (EUR) that migration 0004 seeds; staff change it.
DEFAULT_RATES = {
    "general": Decimal("2.00"),
    "account": Decimal("2.00"),
    "payments": Decimal("2.50"),
    "refunds": Decimal("2.50"),
    "technical": Decimal("3.00"),
    "disputes": Decimal("3.50"),
}


def demand_ratio(*, waiting: int, free_capacity: int) -> Decimal | None:
    """Waiting tickets per free seat; None means no free seat at all."""
    if waiting <= 0:
        return Decimal(0)
    if free_capacity <= 0:
        return None
    return Decimal(waiting) / Decimal(free_capacity)


def surge_multiplier(
    *,
    waiting: int,
    free_capacity: int,
    bands: Sequence[tuple[Decimal, Decimal]] = DEFAULT_SURGE_BANDS,
    cap: Decimal = DEFAULT_SURGE_CAP,
) -> Decimal:
    ratio = demand_ratio(waiting=waiting, free_capacity=free_capacity)
    multiplier = ONE
    for threshold, band_multiplier in sorted(bands):
        if ratio is None or ratio >= threshold:
            multiplier = band_multiplier
    return min(max(multiplier, ONE), cap).quantize(CENT)


def task_price(*, base: Decimal, multiplier: Decimal) -> Decimal:
    return (base * multiplier).quantize(CENT, rounding=ROUND_HALF_UP)


def waiting_bonus(*, offers_before: int, step: Decimal, cap: Decimal) -> Decimal:
    """A ticket past its wait target: each new offer pays one step more, up to the cap.

    ``offers_before`` is how many offers with a bonus the ticket had already.
    """
    return min(step * (offers_before + 1), cap).quantize(CENT)


def parse_bands(raw: str) -> tuple[tuple[Decimal, Decimal], ...]:
    """``"1.0:1.2,1.5:1.5"`` → bands; used for the ``SURGE_BANDS`` setting."""
    bands = []
    for part in raw.split(","):
        if part.strip():
            threshold, multiplier = part.split(":")
            bands.append((Decimal(threshold.strip()), Decimal(multiplier.strip())))
    return tuple(sorted(bands))
