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
- **target**: the wait target of the ticket's priority (``WAIT_TARGET_SECONDS``:
  urgent 30 s, high 60 s, normal 120 s by default), or one target for all
  when the floor is asked for one (``?target=``).
- **answered within target**: of the tickets assigned in the last hour and
  those still waiting past their target now, the share assigned within their
  target.  A customer still waiting past it counts as a miss already: a floor
  where nobody is answered must not read 100 %.
- **past target**: the waiting tickets past their target now, the longest
  waiting first, each with the reason nobody takes it
  (``marketplace.services.escalation.waiting_reason``), and how many there are.
- **agents**: approved agents by presence; **busy** are the online ones holding
  at least one ticket.
- **offer acceptance**: of the offers made in the last hour that the agent
  answered or let expire, the share accepted.  Withdrawn offers (the agent went
  offline, the customer cancelled) were not the agent's choice and do not count;
  pending ones are not decided yet.  **Not my area**: of those, the declines
  that said so (each keeps that agent off that ticket for good).
- **feedback themes**: product feedback of the last 24 hours grouped by product
  area and kind, largest first.
- **staffing**: the agents this half hour requires (the shift planner's figure,
  ``marketplace.staffing_selectors``) against those online now; and the share
  of the next hour's expected tickets (this half hour's forecast and the next)
  that the agents online now, with their seats, would answer within the
  staffing answer time, by Erlang C.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

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
from marketplace.models import DeclineReason, Offer, OfferStatus
from marketplace.services import escalation
from marketplace.staffing_selectors import staffing_now
from tickets.models import WAITING, Feedback, Ticket

WINDOW = timedelta(hours=1)
BUCKETS = 12  # five-minute bars over the last hour
FEEDBACK_WINDOW = timedelta(hours=24)
PAST_TARGET_SHOWN = 20


def _targets(target_seconds: int | None) -> dict[str, timedelta]:
    """Each priority's wait target, or the one asked for, for every priority."""
    targets = escalation.wait_targets()
    if target_seconds is None:
        return targets
    return {priority: timedelta(seconds=target_seconds) for priority in targets}


def _answered_within(targets: dict[str, timedelta]) -> Q:
    """Assigned within the target of its priority."""
    within = Q()
    for priority, target in targets.items():
        within |= Q(priority=priority, assigned_at__lte=F("queued_at") + target)
    return within


def _waiting_past(targets: dict[str, timedelta], now: datetime) -> Q:
    late = Q()
    for priority, target in targets.items():
        late |= Q(priority=priority, queued_at__lt=now - target)
    return Q(status__in=WAITING) & late


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
    # The one target asked for (``?target=``); None: each priority's own.
    target_seconds: int | None
    wait_targets: dict[str, int]
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
    declined_not_my_area_last_hour: int
    surge_multiplier: str
    past_target_count: int
    staffing_required_now: int
    staffing_expected_next_hour: float
    predicted_service_level_next_hour: float
    staffing_answer_seconds: int
    staffing_service_level_goal: float
    past_target: list[escalation.PastTarget] = field(default_factory=list)
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


def _buckets(*, now: datetime, targets: dict[str, timedelta]) -> list[Bucket]:
    width = WINDOW / BUCKETS
    start = now - WINDOW
    counts = {}
    within = _answered_within(targets)
    for i in range(BUCKETS):
        lo, hi = start + i * width, start + (i + 1) * width
        inside = Q(assigned_at__gt=lo, assigned_at__lte=hi)
        counts[f"a{i}"] = Count("id", filter=inside)
        counts[f"w{i}"] = Count("id", filter=inside & within)
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


def agents_now() -> dict[str, int]:
    """Approved agents ``online``, ``busy`` (online with a ticket) and ``away``: one read."""
    return Agent.objects.filter(status=AgentStatus.APPROVED).aggregate(
        online=Count("id", filter=Q(presence=Presence.ONLINE)),
        busy=Count("id", filter=Q(presence=Presence.ONLINE, active_tickets__gt=0)),
        away=Count("id", filter=Q(presence=Presence.AWAY)),
    )


def floor_now(*, now: datetime | None = None, target_seconds: int | None = None) -> Floor:
    from marketplace.services.pricing import surge_now

    now = now or timezone.now()
    targets = _targets(target_seconds)

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
        .filter(_answered_within(targets))
        .count()
    )
    late = Ticket.objects.filter(_waiting_past(targets, now)).count()
    past_target = Ticket.objects.filter(escalation.past_target(now=now)).count()

    agents = agents_now()
    online = list(
        Agent.objects.filter(status=AgentStatus.APPROVED, presence=Presence.ONLINE).values_list(
            "capacity", "active_tickets"
        )
    )
    free = sum(max(0, capacity - active) for capacity, active in online)
    outlook = staffing_now(
        online=len(online), seats=sum(capacity for capacity, _ in online), now=now
    )

    decided = (OfferStatus.ACCEPTED, OfferStatus.DECLINED, OfferStatus.EXPIRED)
    offers = Offer.objects.filter(
        created_at__gt=now - WINDOW, created_at__lte=now, status__in=decided
    ).aggregate(
        n=Count("id"),
        accepted=Count("id", filter=Q(status=OfferStatus.ACCEPTED)),
        not_my_area=Count("id", filter=Q(decline_reason=DeclineReason.NOT_MY_AREA)),
    )

    return Floor(
        now=now.isoformat(),
        target_seconds=target_seconds,
        wait_targets={p: int(t.total_seconds()) for p, t in escalation.wait_targets().items()},
        waiting=waiting_rows.count(),
        longest_wait_seconds=longest[0].waiting_seconds if longest else 0,
        answered_last_hour=answered,
        wait_p50_seconds=_round(p50),
        wait_p90_seconds=_round(p90),
        within_target_share=round(within / (answered + late), 4) if answered + late else None,
        agents_online=agents["online"],
        agents_busy=agents["busy"],
        agents_away=agents["away"],
        free_seats=free,
        offers_decided_last_hour=offers["n"],
        offers_accepted_last_hour=offers["accepted"],
        offer_acceptance_rate=round(offers["accepted"] / offers["n"], 4) if offers["n"] else None,
        declined_not_my_area_last_hour=offers["not_my_area"],
        surge_multiplier=f"{surge_now().multiplier:.2f}",
        past_target_count=past_target,
        staffing_required_now=outlook.required_now,
        staffing_expected_next_hour=outlook.expected_next_hour,
        predicted_service_level_next_hour=outlook.predicted_service_level_next_hour,
        staffing_answer_seconds=outlook.answer_seconds,
        staffing_service_level_goal=outlook.service_level_goal,
        past_target=escalation.tickets_past_target(now=now, limit=PAST_TARGET_SHOWN),
        longest_waiting=longest,
        buckets=_buckets(now=now, targets=targets),
        feedback_themes=feedback_themes(now=now),
    )
