"""Writes for staffing: publish, in one audited action, the places the forecast says are missing.

For each UTC half hour still ahead in the days asked for, the required
headcount (``marketplace.staffing_selectors``) is compared with the places
already published there; where it is higher, a 30-minute slot with the
difference is published through ``shifts.shift_slots_publish`` (so every rule
of a slot holds).  One ``StaffingPublication`` row names the actor, and each
slot's ``slot_published`` event names that row.

Safe to repeat: after it, published meets required in every half hour it
touched, so the same call finds nothing missing and writes nothing.  Two staff
pressing the button at once are serialised (an advisory lock on PostgreSQL;
on SQLite every write transaction starts ``IMMEDIATE``), so the second sees
the first's slots and adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from agents.models import User
from config.errors import InvalidInput
from marketplace import staffing_selectors as selectors
from marketplace.models import ShiftSlot, StaffingPublication
from marketplace.services import shifts

MAX_DAYS = 14
# pg_advisory_xact_lock key for this action: "staffing" in ASCII.
_LOCK_KEY = 0x7374616666696E67


@dataclass
class PublishResult:
    publication: StaffingPublication | None
    slots: list[ShiftSlot] = field(default_factory=list)

    @property
    def headcount_added(self) -> int:
        return sum(slot.headcount for slot in self.slots)


def _serialise() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])


def _half_hours(first_day: date, days: int, *, now) -> list:
    """The half hours of these days that may still be published: not started, within reach."""
    horizon = now + timedelta(days=settings.HUMANLINE["SHIFT_PUBLISH_HORIZON_DAYS"])
    return [
        start
        for offset in range(days)
        for start in selectors.day_slots(first_day + timedelta(days=offset))
        if now <= start <= horizon
    ]


@transaction.atomic
def staffing_publish_missing(*, actor: User, first_day: date, days: int = 7) -> PublishResult:
    """Publish the missing places of ``days`` days from ``first_day`` (UTC); see the module."""
    if not 1 <= days <= MAX_DAYS:
        message = f"Publish from 1 to {MAX_DAYS} days at once."
        raise InvalidInput(message, code="invalid_days", fields={"days": [message]})
    _serialise()
    now = timezone.now()
    inputs = selectors.staffing_inputs(now=now)
    plan = selectors.staffing_plan(
        starts=_half_hours(first_day, days, now=now), now=now, inputs=inputs
    )
    most = settings.HUMANLINE["SHIFT_HEADCOUNT_MAX"]
    specs = []
    for row in plan:
        missing = row.missing
        while missing > 0:  # a slot holds at most SHIFT_HEADCOUNT_MAX places
            headcount = min(missing, most)
            specs.append(
                shifts.SlotSpec(starts_at=row.starts_at, ends_at=row.ends_at, headcount=headcount)
            )
            missing -= headcount
    if not specs:
        return PublishResult(publication=None)
    publication = StaffingPublication.objects.create(
        actor=actor,
        first_day=first_day,
        days=days,
        slots_created=len(specs),
        headcount_added=sum(spec.headcount for spec in specs),
        detail=inputs.as_dict(),
        created_at=now,
    )
    slots = shifts.shift_slots_publish(
        actor=actor, specs=specs, detail={"staffing_publication": publication.pk}
    )
    return PublishResult(publication=publication, slots=slots)
