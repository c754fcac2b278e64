"""Reads about shifts, always scoped to the caller."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from agents.models import Agent
from marketplace.models import HOLDING, BookingStatus, ShiftBooking, ShiftSlot, SlotStatus


def _zone(name: str):
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def _day_bounds(day: date, zone) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), zone)
    return start, start + timedelta(days=1)


def _with_my_booking(queryset: QuerySet[ShiftSlot], agent: Agent) -> QuerySet[ShiftSlot]:
    mine = ShiftBooking.objects.filter(slot=OuterRef("pk"), agent=agent, status__in=HOLDING).values(
        "status"
    )[:1]
    return queryset.annotate(my_booking_status=Subquery(mine))


def shift_board(
    *,
    agent: Agent,
    day: date | None = None,
    language: str | None = None,
    skill: str | None = None,
) -> QuerySet[ShiftSlot]:
    """Open slots the agent could book: not started, and matching their languages and skills.

    ``day`` is read in the agent's own time zone.
    """
    queryset = ShiftSlot.objects.filter(
        status=SlotStatus.PUBLISHED, starts_at__gt=timezone.now()
    ).select_related("skill")
    queryset = queryset.filter(Q(language="") | Q(language__in=agent.language_codes)).filter(
        Q(skill__isnull=True) | Q(skill__in=agent.skills.all())
    )
    if day:
        start, end = _day_bounds(day, _zone(agent.time_zone))
        queryset = queryset.filter(starts_at__gte=start, starts_at__lt=end)
    if language:
        queryset = queryset.filter(language=language.lower())
    if skill:
        queryset = queryset.filter(skill__slug=skill.lower())
    return _with_my_booking(queryset, agent).order_by("starts_at", "id")


def agent_bookings(*, agent: Agent, upcoming: bool = False) -> QuerySet[ShiftBooking]:
    queryset = ShiftBooking.objects.filter(agent=agent).select_related("slot", "slot__skill")
    if upcoming:
        return queryset.filter(status=BookingStatus.BOOKED, ends_at__gt=timezone.now()).order_by(
            "starts_at"
        )
    return queryset.order_by("-starts_at", "-id")


def attendance_record(*, agent: Agent) -> dict:
    """An agent's record: settled attendance, late cancellations, no-shows."""
    counts = {status: 0 for status in BookingStatus.values}
    rows = ShiftBooking.objects.filter(agent=agent).values("status").annotate(n=Count("id"))
    counts.update({row["status"]: row["n"] for row in rows})
    settled = counts[BookingStatus.ATTENDED] + counts[BookingStatus.NO_SHOW]
    return {
        "agent_id": agent.pk,
        "upcoming": agent_bookings(agent=agent, upcoming=True).count(),
        "attended": counts[BookingStatus.ATTENDED],
        "no_show": counts[BookingStatus.NO_SHOW],
        "late_cancelled": counts[BookingStatus.LATE_CANCELLED],
        "cancelled": counts[BookingStatus.CANCELLED],
        "attendance_rate": round(counts[BookingStatus.ATTENDED] / settled, 4) if settled else None,
    }


def staff_slots(
    *,
    date_from: date | None = None,
    date_to: date | None = None,
    status: str | None = None,
    include_past: bool = False,
) -> QuerySet[ShiftSlot]:
    """Slots for the planner, with fill rate; by default those not yet ended."""
    queryset = ShiftSlot.objects.select_related("skill", "created_by")
    if not include_past and not date_from:
        queryset = queryset.filter(ends_at__gt=timezone.now())
    if date_from:
        queryset = queryset.filter(starts_at__gte=_day_bounds(date_from, UTC)[0])
    if date_to:
        queryset = queryset.filter(starts_at__lt=_day_bounds(date_to, UTC)[1])
    if status:
        queryset = queryset.filter(status=status)
    return queryset.order_by("starts_at", "id")


def slot_for_staff(*, slot_id: int) -> ShiftSlot:
    return (
        ShiftSlot.objects.select_related("skill", "created_by")
        .prefetch_related("bookings__agent__user")
        .get(pk=slot_id)
    )
