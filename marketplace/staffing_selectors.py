"""Reads for staffing: the arrivals forecast, the measured handle time, the plan per half hour.

The method (docs/architecture.md, "Staffing"):

- **Expected arrivals** of a half-hour slot: the tickets created in the same
  slot of the same weekday in the last ``STAFFING_FORECAST_WEEKS`` weeks (4),
  averaged with the most recent week weighing most (weights 4, 3, 2, 1).  Only
  occurrences that have ended count: for a slot less than a week ahead that is
  last week's and those before it; for a slot further ahead, the most recent
  ones that have happened.  Weeks before the first ticket ever recorded are
  left out (no record is not no demand), and the weights of the others are
  renormalised; with none left the forecast is 0.  Slots are UTC half hours,
  as the planner shows them.
- **Handle time**: the mean time from assignment to resolve of the tickets
  resolved in the same weeks; ``STAFFING_HANDLE_SECONDS_DEFAULT`` (600 s) until
  ``STAFFING_HANDLE_MIN_SAMPLES`` (20) tickets measure it.
- **Capacity**: the mean ``capacity`` of approved agents.
- **Required**: Erlang C (``marketplace.staffing``) for the expected arrivals
  per hour, that handle time and capacity, to answer ``STAFFING_SERVICE_LEVEL``
  (80 %) within ``STAFFING_ANSWER_SECONDS`` (60 s); never below
  ``STAFFING_MIN_AGENTS`` (1), so that a person is always within reach.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db.models import (
    Avg,
    Case,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    IntegerField,
    Q,
    Value,
    When,
)
from django.db.models.functions import ExtractMinute, TruncHour
from django.utils import timezone

from agents.models import Agent, AgentStatus
from marketplace.models import BookingStatus, ShiftBooking, ShiftSlot, SlotStatus
from marketplace.staffing import erlang_c
from tickets.models import Ticket

SLOT = timedelta(minutes=30)
SLOTS_PER_DAY = 48


def _policy(name: str):
    return settings.HUMANLINE[name]


def grid_floor(moment: datetime) -> datetime:
    """The start of the UTC half hour that holds ``moment``."""
    moment = moment.astimezone(UTC).replace(second=0, microsecond=0)
    return moment - timedelta(minutes=moment.minute % 30)


def today() -> date:
    """Today in UTC, the planner's day."""
    return timezone.now().astimezone(UTC).date()


def day_slots(day: date) -> list[datetime]:
    start = datetime.combine(day, time(), UTC)
    return [start + i * SLOT for i in range(SLOTS_PER_DAY)]


# --- the inputs ---------------------------------------------------------------


@dataclass(frozen=True)
class Inputs:
    """What every required headcount is computed from, at one moment."""

    handle_seconds: float
    handle_samples: int  # tickets that measured it
    handle_measured: bool  # False: too few samples, the default is used
    mean_capacity: float
    answer_seconds: int
    service_level: float
    weeks: int
    min_agents: int

    def as_dict(self) -> dict:
        return {
            "handle_seconds": round(self.handle_seconds, 1),
            "handle_samples": self.handle_samples,
            "handle_measured": self.handle_measured,
            "mean_capacity": round(self.mean_capacity, 2),
            "answer_seconds": self.answer_seconds,
            "service_level": self.service_level,
            "weeks": self.weeks,
            "min_agents": self.min_agents,
        }


def handle_time(*, now: datetime, weeks: int) -> tuple[float, int, bool]:
    """(mean seconds from assignment to resolve, tickets measured, whether they were enough)
    over the last ``weeks``; the default when they were not."""
    held = ExpressionWrapper(F("resolved_at") - F("assigned_at"), output_field=DurationField())
    figures = Ticket.objects.filter(
        resolved_at__gte=now - timedelta(weeks=weeks),
        resolved_at__lt=now,
        assigned_at__isnull=False,
        assigned_at__lte=F("resolved_at"),
    ).aggregate(n=Count("id"), mean=Avg(held))
    samples = figures["n"]
    if samples < _policy("STAFFING_HANDLE_MIN_SAMPLES") or not figures["mean"]:
        return float(_policy("STAFFING_HANDLE_SECONDS_DEFAULT")), samples, False
    return figures["mean"].total_seconds(), samples, True


def mean_capacity() -> float:
    """Tickets an approved agent holds at once, on average (the default with no agents)."""
    mean = Agent.objects.filter(status=AgentStatus.APPROVED).aggregate(c=Avg("capacity"))["c"]
    return float(mean or _policy("AGENT_CAPACITY_DEFAULT"))


def staffing_inputs(*, now: datetime | None = None) -> Inputs:
    now = now or timezone.now()
    weeks = _policy("STAFFING_FORECAST_WEEKS")
    handle, samples, measured = handle_time(now=now, weeks=weeks)
    return Inputs(
        handle_seconds=handle,
        handle_samples=samples,
        handle_measured=measured,
        mean_capacity=mean_capacity(),
        answer_seconds=_policy("STAFFING_ANSWER_SECONDS"),
        service_level=_policy("STAFFING_SERVICE_LEVEL"),
        weeks=weeks,
        min_agents=_policy("STAFFING_MIN_AGENTS"),
    )


# --- the forecast -------------------------------------------------------------


@dataclass(frozen=True)
class Forecast:
    expected: float  # tickets expected in the half hour
    weeks_counted: int


def _occurrences(start: datetime, *, now: datetime, weeks: int) -> list[datetime]:
    """The last ``weeks`` ended occurrences of this weekday's slot, the most recent first."""
    reference = min(now, start)
    found, back = [], 1
    while len(found) < weeks:
        past = start - timedelta(weeks=back)
        back += 1
        if past + SLOT <= reference:
            found.append(past)
    return found


def _ranges(starts: set[datetime]) -> list[tuple[datetime, datetime]]:
    """Half hours merged into as few [from, to) ranges as they allow."""
    ranges: list[list[datetime]] = []
    for start in sorted(starts):
        if ranges and ranges[-1][1] == start:
            ranges[-1][1] = start + SLOT
        else:
            ranges.append([start, start + SLOT])
    return [(a, b) for a, b in ranges]


def arrivals_by_slot(starts: set[datetime]) -> dict[datetime, int]:
    """Tickets created in each of these UTC half hours: one grouped query."""
    if not starts:
        return {}
    within = Q()
    for low, high in _ranges(starts):
        within |= Q(created_at__gte=low, created_at__lt=high)
    # Both read in UTC: the ``__minute`` lookup would read the current time zone's
    # minute, which is off by a half hour in some zones.
    rows = (
        Ticket.objects.filter(within)
        .annotate(
            hour=TruncHour("created_at", tzinfo=UTC),
            minute=ExtractMinute("created_at", tzinfo=UTC),
        )
        .annotate(
            late=Case(
                When(minute__gte=30, then=Value(1)), default=Value(0), output_field=IntegerField()
            )
        )
        .values("hour", "late")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts: dict[datetime, int] = defaultdict(int)
    for row in rows:
        counts[row["hour"].astimezone(UTC) + row["late"] * SLOT] += row["n"]
    return counts


def first_ticket_at() -> datetime | None:
    """When the first ticket recorded was created (by id: the primary key index answers)."""
    return Ticket.objects.order_by("pk").values_list("created_at", flat=True).first()


def arrivals_forecast(
    *, starts: list[datetime], now: datetime, weeks: int
) -> dict[datetime, Forecast]:
    """Expected tickets in each UTC half hour of ``starts`` (see the module's docstring)."""
    first = first_ticket_at()
    history_from = grid_floor(first) if first else None
    plan = {start: _occurrences(start, now=now, weeks=weeks) for start in starts}
    needed = {
        past
        for pasts in plan.values()
        for past in pasts
        if history_from is not None and past >= history_from
    }
    counts = arrivals_by_slot(needed)
    forecasts = {}
    for start, pasts in plan.items():
        weighed = [
            (weeks - i, counts.get(past, 0))
            for i, past in enumerate(pasts)
            if history_from is not None and past >= history_from
        ]
        total = sum(weight for weight, _ in weighed)
        expected = sum(weight * n for weight, n in weighed) / total if total else 0.0
        forecasts[start] = Forecast(expected=expected, weeks_counted=len(weighed))
    return forecasts


def required_agents(expected: float, inputs: Inputs) -> int:
    """Agents a half hour with ``expected`` arrivals needs to meet the goal."""
    figures = erlang_c(
        expected / (SLOT.total_seconds() / 3600),
        inputs.handle_seconds,
        inputs.answer_seconds,
        service_level=inputs.service_level,
        capacity=inputs.mean_capacity,
    )
    return max(inputs.min_agents, figures.agents)


def predicted_service_level(expected_per_hour: float, agents: int, inputs: Inputs) -> float:
    return erlang_c(
        expected_per_hour,
        inputs.handle_seconds,
        inputs.answer_seconds,
        agents=agents,
        capacity=inputs.mean_capacity,
    ).service_level


# --- the plan per half hour ---------------------------------------------------


@dataclass(frozen=True)
class SlotPlan:
    starts_at: datetime
    ends_at: datetime
    expected_arrivals: float
    required: int
    published: int
    booked: int
    attended: int | None  # once the half hour has ended
    missing: int
    # The share answered within the answer time if the booked agents come.
    predicted_service_level: float

    def as_dict(self) -> dict:
        return {
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "expected_arrivals": round(self.expected_arrivals, 2),
            "required": self.required,
            "published": self.published,
            "booked": self.booked,
            "attended": self.attended,
            "missing": self.missing,
            "predicted_service_level": round(self.predicted_service_level, 4),
        }


def _headcounts(start: datetime, end: datetime) -> dict[datetime, tuple[int, int]]:
    """(published, booked) places per half hour: every published slot covering it."""
    totals: dict[datetime, list[int]] = defaultdict(lambda: [0, 0])
    slots = ShiftSlot.objects.filter(
        status=SlotStatus.PUBLISHED, starts_at__lt=end, ends_at__gt=start
    ).values_list("starts_at", "ends_at", "headcount", "booked_count")
    for slot_start, slot_end, headcount, booked in slots:
        moment = max(grid_floor(slot_start), start)
        while moment < min(slot_end, end):
            totals[moment][0] += headcount
            totals[moment][1] += booked
            moment += SLOT
    return {moment: (pair[0], pair[1]) for moment, pair in totals.items()}


def _attended(start: datetime, end: datetime) -> dict[datetime, int]:
    totals: dict[datetime, int] = defaultdict(int)
    bookings = ShiftBooking.objects.filter(
        status=BookingStatus.ATTENDED, starts_at__lt=end, ends_at__gt=start
    ).values_list("starts_at", "ends_at")
    for booking_start, booking_end in bookings:
        moment = max(grid_floor(booking_start), start)
        while moment < min(booking_end, end):
            totals[moment] += 1
            moment += SLOT
    return totals


def staffing_plan(
    *, starts: list[datetime], now: datetime | None = None, inputs: Inputs | None = None
) -> list[SlotPlan]:
    """Required, published, booked and attended headcount for each UTC half hour of ``starts``."""
    now = now or timezone.now()
    inputs = inputs or staffing_inputs(now=now)
    if not starts:
        return []
    forecasts = arrivals_forecast(starts=starts, now=now, weeks=inputs.weeks)
    low, high = min(starts), max(starts) + SLOT
    headcounts = _headcounts(low, high)
    attended = _attended(low, high)
    plan = []
    for start in starts:
        expected = forecasts[start].expected
        required = required_agents(expected, inputs)
        published, booked = headcounts.get(start, (0, 0))
        plan.append(
            SlotPlan(
                starts_at=start,
                ends_at=start + SLOT,
                expected_arrivals=expected,
                required=required,
                published=published,
                booked=booked,
                attended=attended.get(start, 0) if start + SLOT <= now else None,
                missing=max(0, required - published),
                predicted_service_level=predicted_service_level(expected * 2, booked, inputs),
            )
        )
    return plan


def staffing_day(*, day: date, now: datetime | None = None) -> dict:
    """The plan of one UTC day with its inputs, as the API and the planner show it."""
    now = now or timezone.now()
    inputs = staffing_inputs(now=now)
    plan = staffing_plan(starts=day_slots(day), now=now, inputs=inputs)
    return {"date": day, "inputs": inputs.as_dict(), "slots": [row.as_dict() for row in plan]}


@dataclass(frozen=True)
class Outlook:
    """The floor's staffing figures: the half hour now and the hour ahead."""

    required_now: int
    expected_next_hour: float
    predicted_service_level_next_hour: float
    answer_seconds: int
    service_level_goal: float


def staffing_now(*, online: int, seats: int, now: datetime | None = None) -> Outlook:
    """Required agents this half hour, and how ``online`` agents with ``seats`` would serve
    the next hour's expected arrivals (the current half hour and the next)."""
    now = now or timezone.now()
    inputs = staffing_inputs(now=now)
    current = grid_floor(now)
    forecasts = arrivals_forecast(starts=[current, current + SLOT], now=now, weeks=inputs.weeks)
    next_hour = forecasts[current].expected + forecasts[current + SLOT].expected
    level = erlang_c(
        next_hour,
        inputs.handle_seconds,
        inputs.answer_seconds,
        agents=online,
        capacity=max(1.0, seats / online) if online else 1,
    ).service_level
    return Outlook(
        required_now=required_agents(forecasts[current].expected, inputs),
        expected_next_hour=round(next_hour, 2),
        predicted_service_level_next_hour=round(level, 4),
        answer_seconds=inputs.answer_seconds,
        service_level_goal=inputs.service_level,
    )
