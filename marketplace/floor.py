"""The operations floor's figures: reads only, computed from the database on each call.

Definitions (the floor page and ``GET /api/v1/admin/floor/`` show these):

- **waiting**: tickets in ``queued`` or ``offered`` now; the **longest wait** is
  ``now - queued_at`` of the oldest of them.
- **wait** of an answered ticket: ``assigned_at - queued_at``.  ``queued_at``
  survives a requeue (the customer keeps their place), so a ticket that lost
  its agent and was taken again counts from when the customer first joined
  the line: the wait as the customer lived it.
- **p50 / p90**: percentiles of the waits of the tickets assigned in the last
  hour, by linear interpolation between the closest ranks (PostgreSQL's
  ``percentile_cont``; the same formula in Python on SQLite).
- **answered within target**: of those tickets, the share whose wait was at most
  ``target_seconds`` (``FLOOR_ANSWER_TARGET_SECONDS``, 60 s by default).
- **agents**: approved agents by presence; **busy** are the online ones holding
  at least one ticket.
- **offer acceptance**: of the offers made in the last hour that the agent
  answered or let expire, the share accepted.  Withdrawn offers (the agent went
  offline, the customer cancelled) were not the agent's choice and do not count;
  pending ones are not decided yet.
- **feedback themes**: product feedback of the last 24 hours grouped by product
  area and kind, largest first.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import (
    Aggregate,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    FloatField,
    Max,
    Q,
)
from django.utils import timezone

from agents.models import Agent, AgentStatus, Presence
from marketplace.models import Offer, OfferStatus
from tickets.models import WAITING, Feedback, Ticket

WINDOW = timedelta(hours=1)
BUCKETS = 12  # five-minute bars over the last hour
FEEDBACK_WINDOW = timedelta(hours=24)
DEFAULT_TARGET_SECONDS = 60


def answer_target_seconds() -> int:
    return int(settings.HUMANLINE.get("FLOOR_ANSWER_TARGET_SECONDS", DEFAULT_TARGET_SECONDS))


class _PercentileCont(Aggregate):
    """PostgreSQL's ``percentile_cont(p) WITHIN GROUP (ORDER BY expr)``."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, *, fraction: float, **extra):
        super().__init__(expression, fraction=float(fraction), **extra)


def percentile(values: list[float], fraction: float) -> float | None:
    """``percentile_cont`` in Python: interpolate between the closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class WaitingTicket:
    id: int
    subject: str
    category: str
    language: str
    priority: str
    status: str
    waiting_seconds: int


@dataclass(frozen=True)
class Bucket:
    starts_at: str
    answered: int
    within_target: int


@dataclass(frozen=True)
class Theme:
    area: str
    kind: str
    count: int
    latest_text: str
    latest_at: str


@dataclass(frozen=True)
class Floor:
    now: str
    target_seconds: int
    waiting: int
    longest_wait_seconds: int
    answered_last_hour: int
    wait_p50_seconds: float | None
    wait_p90_seconds: float | None
    within_target_share: float | None
    agents_online: int
    agents_busy: int
    agents_away: int
    free_seats: int
    offers_decided_last_hour: int
    offers_accepted_last_hour: int
    offer_acceptance_rate: float | None
    surge_multiplier: str
    longest_waiting: list[WaitingTicket] = field(default_factory=list)
    buckets: list[Bucket] = field(default_factory=list)
    feedback_themes: list[Theme] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _wait_expression():
    return ExpressionWrapper(F("assigned_at") - F("queued_at"), output_field=DurationField())


def answered_waits(*, now: datetime) -> tuple[int, float | None, float | None]:
    """(count, p50, p90) of the waits, in seconds, of tickets assigned in the last hour."""
    answered = Ticket.objects.filter(
        assigned_at__gt=now - WINDOW, assigned_at__lte=now, queued_at__isnull=False
    )
    if connection.vendor == "postgresql":
        from django.db.models.functions import Extract

        seconds = Extract(_wait_expression(), "epoch")
        figures = answered.aggregate(
            n=Count("id"),
            p50=_PercentileCont(seconds, fraction=0.5),
            p90=_PercentileCont(seconds, fraction=0.9),
        )
        return figures["n"], figures["p50"], figures["p90"]
    waits = [
        (assigned - queued).total_seconds()
        for assigned, queued in answered.values_list("assigned_at", "queued_at")
    ]
    return len(waits), percentile(waits, 0.5), percentile(waits, 0.9)


def _buckets(*, now: datetime, target: timedelta) -> list[Bucket]:
    width = WINDOW / BUCKETS
    start = now - WINDOW
    counts = {}
    for i in range(BUCKETS):
        lo, hi = start + i * width, start + (i + 1) * width
        inside = Q(assigned_at__gt=lo, assigned_at__lte=hi)
        counts[f"a{i}"] = Count("id", filter=inside)
        counts[f"w{i}"] = Count("id", filter=inside & Q(assigned_at__lte=F("queued_at") + target))
    rows = Ticket.objects.filter(assigned_at__gt=start, queued_at__isnull=False).aggregate(**counts)
    return [
        Bucket(
            starts_at=(start + i * width).isoformat(),
            answered=rows[f"a{i}"],
            within_target=rows[f"w{i}"],
        )
        for i in range(BUCKETS)
    ]


def feedback_themes(*, now: datetime, limit: int = 8) -> list[Theme]:
    since = now - FEEDBACK_WINDOW
    recent = Feedback.objects.filter(created_at__gt=since, created_at__lte=now)
    groups = list(
        recent.values("area", "kind")
        .annotate(n=Count("id"), latest=Max("created_at"))
        .order_by("-n", "-latest", "area", "kind")[:limit]
    )
    themes = []
    for group in groups:
        latest = (
            recent.filter(area=group["area"], kind=group["kind"])
            .order_by("-created_at", "-id")
            .values_list("text", flat=True)
            .first()
        )
        themes.append(
            Theme(
                area=group["area"],
                kind=group["kind"],
                count=group["n"],
                latest_text=(latest or "")[:200],
                latest_at=group["latest"].isoformat(),
            )
        )
    return themes


def floor_now(*, now: datetime | None = None, target_seconds: int | None = None) -> Floor:
    from marketplace.services.pricing import surge_now

    now = now or timezone.now()
    target_seconds = answer_target_seconds() if target_seconds is None else target_seconds
    target = timedelta(seconds=target_seconds)

    waiting_rows = Ticket.objects.filter(status__in=WAITING, queued_at__isnull=False)
    oldest = list(
        waiting_rows.order_by("queued_at", "id").values(
            "id", "subject", "category", "language", "priority", "status", "queued_at"
        )[:10]
    )
    longest = [
        WaitingTicket(
            id=row["id"],
            subject=row["subject"],
            category=row["category"],
            language=row["language"],
            priority=row["priority"],
            status=row["status"],
            waiting_seconds=max(0, int((now - row["queued_at"]).total_seconds())),
        )
        for row in oldest
    ]

    answered, p50, p90 = answered_waits(now=now)
    within = (
        Ticket.objects.filter(
            assigned_at__gt=now - WINDOW, assigned_at__lte=now, queued_at__isnull=False
        )
        .filter(assigned_at__lte=F("queued_at") + target)
        .count()
    )

    agents = Agent.objects.filter(status=AgentStatus.APPROVED).aggregate(
        online=Count("id", filter=Q(presence=Presence.ONLINE)),
        busy=Count("id", filter=Q(presence=Presence.ONLINE, active_tickets__gt=0)),
        away=Count("id", filter=Q(presence=Presence.AWAY)),
    )
    free = sum(
        max(0, capacity - active)
        for capacity, active in Agent.objects.filter(
            status=AgentStatus.APPROVED, presence=Presence.ONLINE
        ).values_list("capacity", "active_tickets")
    )

    decided = (OfferStatus.ACCEPTED, OfferStatus.DECLINED, OfferStatus.EXPIRED)
    offers = Offer.objects.filter(
        created_at__gt=now - WINDOW, created_at__lte=now, status__in=decided
    ).aggregate(n=Count("id"), accepted=Count("id", filter=Q(status=OfferStatus.ACCEPTED)))

    return Floor(
        now=now.isoformat(),
        target_seconds=target_seconds,
        waiting=waiting_rows.count(),
        longest_wait_seconds=longest[0].waiting_seconds if longest else 0,
        answered_last_hour=answered,
        wait_p50_seconds=_round(p50),
        wait_p90_seconds=_round(p90),
        within_target_share=round(within / answered, 4) if answered else None,
        agents_online=agents["online"],
        agents_busy=agents["busy"],
        agents_away=agents["away"],
        free_seats=free,
        offers_decided_last_hour=offers["n"],
        offers_accepted_last_hour=offers["accepted"],
        offer_acceptance_rate=round(offers["accepted"] / offers["n"], 4) if offers["n"] else None,
        surge_multiplier=f"{surge_now().multiplier:.2f}",
        longest_waiting=longest,
        buckets=_buckets(now=now, target=target),
        feedback_themes=feedback_themes(now=now),
    )
