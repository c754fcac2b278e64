"""Writes about shifts: publish and cancel slots, book and cancel places, settle attendance.

Lock order, everywhere: agent row, then slot row, then booking rows.  Keeping
one order is what lets a booking, an agent's cancellation and a staff slot
cancellation run at once without deadlocking.

Invariants and what holds them:
- a slot never holds more bookings than its headcount: the slot row lock
  serialises bookings of one slot, the counter moves by a conditional update,
  and the check constraint ``slot_never_overbooked`` refuses anything else;
- an agent never holds two overlapping bookings: the agent row lock serialises
  an agent's bookings, the service checks overlap under it, and on PostgreSQL
  the exclusion constraint ``booking_no_overlap_per_agent`` refuses anything else;
- one place-holding booking per agent and slot: partial unique index.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from agents import selectors as agent_selectors
from agents import validators
from agents.models import Agent, AgentStatus, Skill, User
from config import effects
from config.errors import Conflict, Forbidden, InvalidInput, InvalidTransition
from marketplace import events, notifications
from marketplace.models import (
    HOLDING,
    BookingStatus,
    IncentiveKind,
    ShiftBooking,
    ShiftEvent,
    ShiftEventKind,
    ShiftSlot,
    SlotStatus,
)

GRID_MINUTES = 30  # gig contact-centre platforms book in 30-minute slots (brief)

# Called with ``booking=`` (settled: status, online_seconds, settled_at set) and
# ``now=`` inside the settlement's transaction: pay books the shift incentive.
SETTLED_HOOKS: list = []


def _policy(name: str):
    return settings.HUMANLINE[name]


# --- publishing ----------------------------------------------------------------


@dataclass(frozen=True)
class SlotSpec:
    starts_at: datetime
    ends_at: datetime
    headcount: int
    language: str = ""
    skill: str = ""
    incentive_kind: str = ""
    incentive_amount: Decimal | str | None = None
    incentive_currency: str = ""


def _aware(value: datetime) -> datetime:
    return timezone.make_aware(value, UTC) if timezone.is_naive(value) else value


def on_grid(value: datetime) -> bool:
    value = value.astimezone(UTC)
    return value.second == 0 and value.microsecond == 0 and value.minute % GRID_MINUTES == 0


def _check_slot(spec: SlotSpec, *, now: datetime) -> tuple[dict, list[tuple[str, str, str]]]:
    """Clean a slot's fields; returns (clean values, [(field, code, message)])."""
    problems: list[tuple[str, str, str]] = []
    starts_at, ends_at = _aware(spec.starts_at), _aware(spec.ends_at)
    for field, value in (("starts_at", starts_at), ("ends_at", ends_at)):
        if not on_grid(value):
            problems.append(
                (field, "off_grid", "Slots start and end on the 30-minute grid (:00 or :30).")
            )
    if ends_at <= starts_at:
        problems.append(("ends_at", "inverted_slot", "A slot must end after it starts."))
    elif ends_at - starts_at > timedelta(hours=_policy("SHIFT_SLOT_MAX_HOURS")):
        problems.append(
            (
                "ends_at",
                "slot_too_long",
                f"A slot lasts at most {_policy('SHIFT_SLOT_MAX_HOURS')} hours.",
            )
        )
    if starts_at < now:
        problems.append(("starts_at", "slot_in_past", "A slot cannot start in the past."))
    elif starts_at > now + timedelta(days=_policy("SHIFT_PUBLISH_HORIZON_DAYS")):
        problems.append(
            (
                "starts_at",
                "slot_too_far",
                f"Publish at most {_policy('SHIFT_PUBLISH_HORIZON_DAYS')} days ahead.",
            )
        )
    if not 1 <= spec.headcount <= _policy("SHIFT_HEADCOUNT_MAX"):
        problems.append(
            (
                "headcount",
                "invalid_headcount",
                f"Headcount must be between 1 and {_policy('SHIFT_HEADCOUNT_MAX')}.",
            )
        )

    language = (spec.language or "").strip().lower()
    if language and language not in validators.language_codes():
        problems.append(
            ("language", "unknown_language", f"'{language}' is not an ISO 639-1 language code.")
        )
    skill = None
    slug = (spec.skill or "").strip().lower()
    if slug:
        skill = Skill.objects.filter(slug=slug, is_active=True).first()
        if skill is None:
            problems.append(("skill", "unknown_skill", f"Unknown skill '{slug}'."))

    kind = spec.incentive_kind or ""
    amount = None
    currency = ""
    if kind:
        currency = (spec.incentive_currency or _policy("CURRENCY")).strip().upper()
        if kind not in IncentiveKind.values:
            problems.append(
                ("incentive", "invalid", f"Choose one of: {', '.join(IncentiveKind.values)}.")
            )
        try:
            amount = Decimal(str(spec.incentive_amount))
        except (InvalidOperation, ValueError):
            amount = None
        maximum = Decimal(_policy("SHIFT_INCENTIVE_MAX"))
        if amount is None or not amount.is_finite() or amount <= 0 or amount > maximum:
            problems.append(
                (
                    "incentive",
                    "invalid_amount",
                    f"The amount must be above 0 and at most {maximum}.",
                )
            )
        elif amount != amount.quantize(Decimal("0.01")):
            problems.append(("incentive", "invalid_amount", "Use at most two decimal places."))
        if len(currency) != 3 or not currency.isalpha():
            problems.append(("incentive", "invalid_currency", "Give an ISO 4217 currency code."))
    elif spec.incentive_amount not in (None, ""):
        problems.append(("incentive", "invalid", "Say which kind of incentive the amount is."))

    clean = {
        "starts_at": starts_at,
        "ends_at": ends_at,
        "headcount": spec.headcount,
        "language": language,
        "skill": skill,
        "incentive_kind": kind,
        "incentive_amount": amount if kind else None,
        "incentive_currency": currency if kind else "",
    }
    return clean, problems


def _raise(problems: list[tuple[str, str, str]]) -> None:
    if not problems:
        return
    fields: dict[str, list[str]] = {}
    for field, _code, message in problems:
        fields.setdefault(field, []).append(message)
    field, code, message = problems[0]
    raise InvalidInput(message, code=code, fields=fields)


def shift_slot_validate(*, spec: SlotSpec) -> dict:
    """Check a slot without writing (forms use it to show errors next to their fields)."""
    clean, problems = _check_slot(spec, now=timezone.now())
    _raise(problems)
    return clean


@transaction.atomic
def shift_slot_publish(*, actor: User, spec: SlotSpec) -> ShiftSlot:
    clean = shift_slot_validate(spec=spec)
    slot = ShiftSlot.objects.create(created_by=actor, **clean)
    ShiftEvent.objects.create(
        kind=ShiftEventKind.SLOT_PUBLISHED, slot=slot, actor=actor, created_at=slot.created_at
    )
    return slot


@transaction.atomic
def shift_slots_publish(
    *, actor: User, specs: list[SlotSpec], detail: dict | None = None
) -> list[ShiftSlot]:
    """Publish several slots at once, each checked as ``shift_slot_publish`` checks one.

    All or none: the first slot that breaks a rule refuses the lot.  Each
    published slot gets its ``slot_published`` event, with ``detail``.
    """
    now = timezone.now()
    cleaned = []
    for spec in specs:
        clean, problems = _check_slot(spec, now=now)
        _raise(problems)
        cleaned.append(clean)
    slots = ShiftSlot.objects.bulk_create(
        [ShiftSlot(created_by=actor, created_at=now, **clean) for clean in cleaned]
    )
    ShiftEvent.objects.bulk_create(
        [
            ShiftEvent(
                kind=ShiftEventKind.SLOT_PUBLISHED,
                slot=slot,
                actor=actor,
                created_at=now,
                detail=detail or {},
            )
            for slot in slots
        ]
    )
    return slots


@dataclass(frozen=True)
class WeekTemplate:
    """Every chosen weekday from ``day_start`` to ``day_end`` (local), in 30-minute slots."""

    week_start: date
    day_start: time
    day_end: time
    headcount: int
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4)  # Monday = 0
    headcount_by_hour: dict[int, int] | None = None  # local hour -> headcount; 0 = none
    time_zone: str = "UTC"
    language: str = ""
    skill: str = ""
    incentive_kind: str = ""
    incentive_amount: Decimal | str | None = None
    incentive_currency: str = ""


@dataclass
class WeekResult:
    created: list[ShiftSlot]
    skipped: int


def _week_specs(template: WeekTemplate, *, now: datetime) -> tuple[list[SlotSpec], int]:
    problems: list[tuple[str, str, str]] = []
    try:
        zone = ZoneInfo(template.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = None
        problems.append(("time_zone", "invalid", "Give an IANA time zone, such as 'UTC'."))
    weekdays = sorted(set(template.weekdays))
    if not weekdays or any(not 0 <= day <= 6 for day in weekdays):
        problems.append(("weekdays", "invalid", "Choose weekdays from 0 (Monday) to 6 (Sunday)."))
    for field in ("day_start", "day_end"):
        value = getattr(template, field)
        if value.minute % GRID_MINUTES or value.second or value.microsecond:
            problems.append((field, "off_grid", "Use times on the 30-minute grid (:00 or :30)."))
    if template.day_end <= template.day_start:
        problems.append(("day_end", "inverted_slot", "The day must end after it starts."))
    by_hour = template.headcount_by_hour or {}
    if any(not 0 <= hour <= 23 for hour in by_hour):
        problems.append(("headcount_by_hour", "invalid", "Hours run from 0 to 23."))
    _raise(problems)

    specs: list[SlotSpec] = []
    skipped = 0
    step = timedelta(minutes=GRID_MINUTES)
    for offset in range(7):
        day = template.week_start + timedelta(days=offset)
        if day.weekday() not in weekdays:
            continue
        local = datetime.combine(day, template.day_start)
        end = datetime.combine(day, template.day_end)
        while local < end:
            headcount = by_hour.get(local.hour, template.headcount)
            starts_at = local.replace(tzinfo=zone).astimezone(UTC)
            local += step
            if headcount == 0:
                continue
            if starts_at < now:
                skipped += 1
                continue
            specs.append(
                SlotSpec(
                    starts_at=starts_at,
                    ends_at=starts_at + step,
                    headcount=headcount,
                    language=template.language,
                    skill=template.skill,
                    incentive_kind=template.incentive_kind,
                    incentive_amount=template.incentive_amount,
                    incentive_currency=template.incentive_currency,
                )
            )
    return specs, skipped


@transaction.atomic
def shift_week_publish(*, actor: User, template: WeekTemplate) -> WeekResult:
    """Publish a week of 30-minute slots in one action; slots that already exist are skipped."""
    now = timezone.now()
    specs, skipped = _week_specs(template, now=now)
    cleaned = []
    for spec in specs:
        clean, problems = _check_slot(spec, now=now)
        _raise(problems)
        cleaned.append(clean)
    if cleaned:
        existing = set(
            ShiftSlot.objects.filter(
                status=SlotStatus.PUBLISHED,
                starts_at__gte=cleaned[0]["starts_at"],
                starts_at__lte=cleaned[-1]["starts_at"],
                language=cleaned[0]["language"],
                skill=cleaned[0]["skill"],
            ).values_list("starts_at", "ends_at")
        )
        fresh = [c for c in cleaned if (c["starts_at"], c["ends_at"]) not in existing]
        skipped += len(cleaned) - len(fresh)
        cleaned = fresh
    slots = ShiftSlot.objects.bulk_create(
        [ShiftSlot(created_by=actor, created_at=now, **clean) for clean in cleaned]
    )
    ShiftEvent.objects.bulk_create(
        [
            ShiftEvent(
                kind=ShiftEventKind.SLOT_PUBLISHED,
                slot=slot,
                actor=actor,
                created_at=now,
                detail={"week_start": template.week_start.isoformat()},
            )
            for slot in slots
        ]
    )
    return WeekResult(created=slots, skipped=skipped)


@transaction.atomic
def shift_slot_cancel(*, actor: User, slot_id: int, reason: str) -> ShiftSlot:
    """Cancel a slot: its booked agents are released and told (push and e-mail, after commit)."""
    reason = (reason or "").strip()
    if not reason:
        message = "Say why the slot is cancelled; the booked agents are told."
        raise InvalidInput(message, code="reason_required", fields={"reason": [message]})
    now = timezone.now()
    slot = ShiftSlot.objects.select_for_update().get(pk=slot_id)
    if slot.status == SlotStatus.CANCELLED:
        raise InvalidTransition("This slot is cancelled already.", code="slot_cancelled")
    if slot.ends_at <= now:
        raise InvalidTransition("This slot has ended; it cannot be cancelled.", code="slot_ended")
    released = list(
        slot.bookings.select_for_update().filter(status=BookingStatus.BOOKED).order_by("pk")
    )
    for booking in released:
        booking.status = BookingStatus.CANCELLED
        booking.cancelled_at = now
        booking.save(update_fields=["status", "cancelled_at"])
    ShiftEvent.objects.bulk_create(
        [
            ShiftEvent(
                kind=ShiftEventKind.RELEASED,
                slot=slot,
                booking=booking,
                actor=actor,
                created_at=now,
                detail={"reason": reason},
            )
            for booking in released
        ]
        + [
            ShiftEvent(
                kind=ShiftEventKind.SLOT_CANCELLED,
                slot=slot,
                actor=actor,
                created_at=now,
                detail={"reason": reason, "released": len(released)},
            )
        ]
    )
    slot.status = SlotStatus.CANCELLED
    slot.cancelled_at = now
    slot.cancel_reason = reason
    slot.booked_count = slot.bookings.filter(status__in=HOLDING).count()
    slot.save(update_fields=["status", "cancelled_at", "cancel_reason", "booked_count"])
    booking_ids = [booking.pk for booking in released]
    for booking in ShiftBooking.objects.select_related("slot", "agent__user").filter(
        pk__in=booking_ids
    ):
        notifications.mail_slot_cancelled(booking=booking)
    effects.after_commit(
        lambda slot_id=slot.pk, booking_ids=booking_ids: events.slot_cancelled(
            slot_id=slot_id, booking_ids=booking_ids
        )
    )
    return slot


# --- booking -----------------------------------------------------------------


def _week_bounds(moment: datetime, zone_name: str) -> tuple[datetime, datetime]:
    """The agent's local Monday-to-Monday week around ``moment``."""
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC
    local = moment.astimezone(zone)
    monday = datetime.combine(local.date() - timedelta(days=local.weekday()), time(), zone)
    return monday, monday + timedelta(days=7)


def _booked_seconds(*, agent: Agent, start: datetime, end: datetime) -> int:
    rows = ShiftBooking.objects.filter(
        agent=agent, status__in=HOLDING, starts_at__gte=start, starts_at__lt=end
    ).aggregate(total=Sum(F("ends_at") - F("starts_at")))
    total = rows["total"]
    return int(total.total_seconds()) if total else 0


def _refuse_unless_eligible(*, agent: Agent, slot: ShiftSlot) -> None:
    if agent.status != AgentStatus.APPROVED:
        raise Forbidden(
            _("Only approved agents can book shifts; you are %(status)s.")
            % {"status": agent.status},
            code="agent_not_approved",
        )
    if slot.language and slot.language not in agent.language_codes:
        raise Forbidden(
            _("This slot is for agents who speak '%(language)s'.") % {"language": slot.language},
            code="language_mismatch",
        )
    if slot.skill_id and not agent.skills.filter(pk=slot.skill_id).exists():
        raise Forbidden(
            _("This slot is for agents with the '%(skill)s' skill.") % {"skill": slot.skill.slug},
            code="skill_mismatch",
        )


@transaction.atomic
def shift_book(*, agent_id: int, slot_id: int) -> ShiftBooking:
    now = timezone.now()
    # Lock order: agent, then slot (see the module docstring).
    agent = Agent.objects.select_for_update().get(pk=agent_id)
    slot = ShiftSlot.objects.select_for_update(of=("self",)).select_related("skill").get(pk=slot_id)
    _refuse_unless_eligible(agent=agent, slot=slot)
    if slot.status != SlotStatus.PUBLISHED:
        raise InvalidTransition(_("This slot has been cancelled."), code="slot_cancelled")
    if slot.starts_at <= now:
        raise InvalidTransition(_("This slot has started; book a later one."), code="slot_started")
    mine = ShiftBooking.objects.filter(agent=agent, status__in=HOLDING)
    if mine.filter(slot=slot).exists():
        raise Conflict(_("You have booked this slot already."), code="already_booked")
    if mine.filter(starts_at__lt=slot.ends_at, ends_at__gt=slot.starts_at).exists():
        raise Conflict(_("You hold another booking at this time."), code="overlapping_booking")
    cap_hours = _policy("SHIFT_WEEKLY_HOURS_CAP")
    week_start, week_end = _week_bounds(slot.starts_at, agent.time_zone)
    booked = _booked_seconds(agent=agent, start=week_start, end=week_end)
    if booked + slot.duration_seconds > cap_hours * 3600:
        raise Conflict(
            _("That would take you over %(hours)s booked hours this week.") % {"hours": cap_hours},
            code="weekly_hours_cap",
        )
    # The lock already serialises this slot's bookings; the conditional update
    # (and the check constraint behind it) make overbooking impossible anyway.
    taken = ShiftSlot.objects.filter(pk=slot.pk, booked_count__lt=F("headcount")).update(
        booked_count=F("booked_count") + 1
    )
    if not taken:
        raise Conflict(_("This slot is full."), code="slot_full")
    booking = ShiftBooking.objects.create(
        slot=slot, agent=agent, starts_at=slot.starts_at, ends_at=slot.ends_at, booked_at=now
    )
    ShiftEvent.objects.create(
        kind=ShiftEventKind.BOOKED, slot=slot, booking=booking, actor=agent.user, created_at=now
    )
    effects.after_commit(
        lambda booking_id=booking.pk: events.booking_changed(booking_id=booking_id)
    )
    return booking


@transaction.atomic
def shift_booking_cancel(*, agent_id: int, slot_id: int) -> ShiftBooking:
    """The agent gives up their place; inside the cut-off it counts as ``late_cancelled``."""
    now = timezone.now()
    agent = Agent.objects.select_for_update().get(pk=agent_id)
    slot = ShiftSlot.objects.select_for_update().get(pk=slot_id)
    booking = (
        ShiftBooking.objects.select_for_update()
        .filter(agent=agent, slot=slot, status=BookingStatus.BOOKED)
        .first()
    )
    if booking is None:
        raise InvalidTransition(_("You have no booking in this slot."), code="not_booked")
    if slot.starts_at <= now:
        raise InvalidTransition(
            _("This slot has started; it can no longer be cancelled."), code="slot_started"
        )
    late = now > slot.starts_at - timedelta(hours=_policy("SHIFT_CANCEL_CUTOFF_HOURS"))
    booking.status = BookingStatus.LATE_CANCELLED if late else BookingStatus.CANCELLED
    booking.cancelled_at = now
    booking.save(update_fields=["status", "cancelled_at"])
    ShiftSlot.objects.filter(pk=slot.pk).update(booked_count=F("booked_count") - 1)
    ShiftEvent.objects.create(
        kind=ShiftEventKind.LATE_CANCELLED if late else ShiftEventKind.CANCELLED,
        slot=slot,
        booking=booking,
        actor=agent.user,
        created_at=now,
    )
    effects.after_commit(
        lambda booking_id=booking.pk: events.booking_changed(booking_id=booking_id)
    )
    return booking


# --- attendance ----------------------------------------------------------------


def shift_attendance_settle(*, now: datetime | None = None, limit: int = 500) -> int:
    """Settle bookings whose slot has ended: ``attended`` or ``no_show``, from presence.

    An agent attended when online for at least ``SHIFT_ATTENDANCE_PERCENT`` of
    the slot.  Each booking moves by a conditional update from ``booked``, so
    two sweepers running at once settle it once.
    """
    now = now or timezone.now()
    share = _policy("SHIFT_ATTENDANCE_PERCENT")
    due = list(
        ShiftBooking.objects.filter(status=BookingStatus.BOOKED, ends_at__lte=now).order_by(
            "ends_at", "pk"
        )[:limit]
    )
    settled = 0
    for booking in due:
        seconds = agent_selectors.online_seconds(
            agent_id=booking.agent_id, start=booking.starts_at, end=booking.ends_at
        )
        required = (booking.ends_at - booking.starts_at).total_seconds() * share / 100
        to = BookingStatus.ATTENDED if seconds >= required else BookingStatus.NO_SHOW
        with transaction.atomic():
            moved = ShiftBooking.objects.filter(pk=booking.pk, status=BookingStatus.BOOKED).update(
                status=to, online_seconds=seconds, settled_at=now
            )
            if not moved:
                continue
            ShiftEvent.objects.create(
                kind=ShiftEventKind.ATTENDED
                if to == BookingStatus.ATTENDED
                else ShiftEventKind.NO_SHOW,
                slot_id=booking.slot_id,
                booking=booking,
                created_at=now,
                detail={"online_seconds": seconds, "required_seconds": int(required)},
            )
            booking.status, booking.online_seconds, booking.settled_at = to, seconds, now
            for hook in SETTLED_HOOKS:
                hook(booking=booking, now=now)
            effects.after_commit(
                lambda booking_id=booking.pk: events.booking_changed(booking_id=booking_id)
            )
            settled += 1
    return settled
