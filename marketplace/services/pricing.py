"""Pricing writes and reads: the rate card and the surge multiplier in force."""

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import transaction
from django.db.models import F, Func, IntegerField, Max, Subquery, Sum
from django.utils import timezone

from agents.models import Agent, AgentStatus, Presence, Skill, User
from config.errors import InvalidInput
from marketplace import pricing
from marketplace.models import PricingEvent, RateCard


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


def surge_now() -> Surge:
    """The multiplier from the waiting tickets and the free seats of online agents."""
    from tickets.models import Ticket, TicketStatus

    # One statement: the waiting count rides along as a scalar subquery.
    queued = Ticket.objects.filter(status=TicketStatus.QUEUED).order_by()
    counts = (
        Agent.objects.filter(status=AgentStatus.APPROVED, presence=Presence.ONLINE)
        .order_by()
        .aggregate(
            free=Sum(F("capacity") - F("active_tickets")),
            waiting=Max(
                Subquery(
                    queued.annotate(n=Func(F("id"), function="COUNT")).values("n")[:1],
                    output_field=IntegerField(),
                )
            ),
        )
    )
    free = counts["free"] or 0
    waiting = counts["waiting"]
    if waiting is None:  # no online agent: the aggregate saw no row
        waiting = queued.count()
    return surge_of(waiting=waiting, free=free)


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


def rate_table() -> dict[tuple[str, str], Decimal]:
    return {(r.category_id, r.currency): r.amount for r in RateCard.objects.all()}


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
