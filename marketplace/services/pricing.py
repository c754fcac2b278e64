"""Pricing writes and reads: the rate card and the surge multiplier in force."""

import functools
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from agents.models import Skill, User
from config import prepared
from config.errors import InvalidInput
from marketplace import pricing
from marketplace.models import PricingEvent, RateCard
from tickets.models import TicketStatus


def currency() -> str:
    return settings.HUMANLINE["CURRENCY"]


def surge_policy() -> tuple[tuple[tuple[Decimal, Decimal], ...], Decimal]:
    policy = settings.HUMANLINE
    return pricing.parse_bands(policy["SURGE_BANDS"]), Decimal(policy["SURGE_CAP"])


@dataclass(frozen=True)
class Surge:
    multiplier: Decimal
    waiting: int
    free_capacity: int


def _surge_counts_sql() -> str:
    from marketplace.dispatch import rules

    present = rules.eligible(rules.VALUES, rules=rules.ELIGIBILITY[:2])  # E1, E2
    return (
        f"SELECT (SELECT COUNT(DISTINCT customer_id) FROM {rules.TICKET}"  # noqa: S608 (names)
        f" WHERE status = '{TicketStatus.QUEUED.value}'),"
        f" (SELECT COALESCE(SUM(a.capacity - a.active_tickets), 0) FROM {rules.AGENT} a"
        f" WHERE {present})"
    )


def surge_now() -> Surge:
    """The multiplier from the customers waiting and the free seats of online agents.

    Customers, not tickets: one customer's several tickets are one demand, so
    opening more of them cannot raise every offer's pay.

    One statement: every offer made reads it.
    """
    with connection.cursor() as cursor:
        cursor.execute(_surge_counts_sql())
        waiting, free = cursor.fetchone()
    return surge_of(waiting=waiting, free=int(free))


@dataclass(frozen=True)
class Prices:
    """What an offer's price is made of now: the surge and the rate card."""

    surge: Surge
    rates: dict[tuple[str, str], Decimal]


@functools.cache
def _prices_statement() -> prepared.Statement:
    """Built on first use (the rules module imports late); prepared once per
    PostgreSQL connection (``config.prepared``): every offer reads it."""
    return prepared.Statement(
        "humanline_prices",
        f"SELECT 0, c.*, NULL, NULL, NULL FROM ({_surge_counts_sql()}) c"  # noqa: S608
        " UNION ALL SELECT 1, NULL, NULL, r.category, r.currency, r.amount"
        f" FROM {RateCard._meta.db_table} r",
    )


def prices_now() -> Prices:
    """The surge now and the rate card, in one statement: every offer made reads both.

    The first row carries the surge's two counts; every other row is a rate
    card (category, currency, amount).
    """
    amount = RateCard._meta.get_field("amount")
    with connection.cursor() as cursor:
        _prices_statement().execute(connection, cursor, [])
        rows = cursor.fetchall()
    (waiting, free) = next(row[1:3] for row in rows if row[0] == 0)
    rates = {(row[3], row[4]): amount.to_python(row[5]) for row in rows if row[0] == 1}
    return Prices(surge=surge_of(waiting=waiting, free=int(free)), rates=rates)


def surge_of(*, waiting: int, free: int) -> Surge:
    """The surge for counts read elsewhere (the fast path reads them with its ranking)."""
    bands, cap = surge_policy()
    return Surge(
        multiplier=pricing.surge_multiplier(
            waiting=waiting, free_capacity=free, bands=bands, cap=cap
        ),
        waiting=waiting,
        free_capacity=free,
    )


def base_rate(*, category: str, currency_code: str, rates: dict | None = None) -> Decimal:
    """The rate card's amount, or the default rate when the category has none."""
    if rates is not None and (category, currency_code) in rates:
        return rates[(category, currency_code)]
    row = RateCard.objects.filter(category_id=category, currency=currency_code).first()
    if row is not None:
        return row.amount
    return Decimal(settings.HUMANLINE["TASK_RATE_DEFAULT"])


@transaction.atomic
def rate_card_set(*, actor: User, category: str, amount, currency_code: str | None = None):
    """Set what a category pays; audited.  Offers already made keep their price."""
    currency_code = (currency_code or currency()).upper()
    errors = {}
    if not Skill.objects.filter(slug=category).exists():
        errors["category"] = [f"Unknown category '{category}'."]
    if len(currency_code) != 3 or not currency_code.isalpha():
        errors["currency"] = ["Give an ISO 4217 currency code, such as 'EUR'."]
    try:
        value = Decimal(str(amount)).quantize(Decimal("0.01"))
        if value <= 0 or value > Decimal("1000"):
            errors["amount"] = ["The amount must be above 0 and at most 1000."]
    except (InvalidOperation, ValueError):
        errors["amount"] = ["Give the amount as a decimal, such as '2.50'."]
    if errors:
        raise InvalidInput(next(iter(errors.values()))[0], fields=errors)
    row = (
        RateCard.objects.select_for_update()
        .filter(category_id=category, currency=currency_code)
        .first()
    )
    old = row.amount if row else None
    if row is None:
        row = RateCard(category_id=category, currency=currency_code)
    row.amount, row.updated_at, row.updated_by = value, timezone.now(), actor
    row.save()
    PricingEvent.objects.create(
        actor=actor, category=category, currency=currency_code, old_amount=old, new_amount=value
    )
    return row


def ensure_default_rates() -> None:
    """Put back the seeded rate card (tests flush tables, data migrations included)."""
    for slug, amount in pricing.DEFAULT_RATES.items():
        if Skill.objects.filter(slug=slug).exists():
            RateCard.objects.get_or_create(
                category_id=slug, currency="EUR", defaults={"amount": amount}
            )
