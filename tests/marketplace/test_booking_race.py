"""Booking under real concurrency: threads against the real PostgreSQL.

Each thread has its own database connection and transaction; a barrier lines
them up so the bookings really overlap in time.  The assertions are on the
database afterwards: the invariants, not the luck of the scheduler.
"""

import threading
from datetime import timedelta

import pytest
from django.db import connection

from config.errors import DomainError
from marketplace.models import HOLDING, BookingStatus, ShiftBooking, ShiftSlot
from marketplace.services import shifts
from tests.factories import AgentFactory, StaffFactory
from tests.marketplace.factories import ShiftSlotFactory, next_grid_time

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("short_lived_db_connections"),
]


def _race(calls) -> list[str]:
    """Run the calls at once, one thread each; each outcome is "ok" or an error code."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[str] = []
    lock = threading.Lock()

    def run(call):
        try:
            barrier.wait(timeout=10)
            call()
            result = "ok"
        except DomainError as exc:
            result = exc.code
        except Exception as exc:  # a deadlock or an IntegrityError would show here
            result = f"unexpected: {exc!r}"
        finally:
            connection.close()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def _holding(slot) -> int:
    return ShiftBooking.objects.filter(slot=slot, status__in=HOLDING).count()


def test_many_agents_racing_for_few_places_never_overbook_a_slot():
    slot = ShiftSlotFactory(headcount=3)
    agents = AgentFactory.create_batch(16)

    outcomes = _race(
        [lambda a=a: shifts.shift_book(agent_id=a.pk, slot_id=slot.pk) for a in agents]
    )

    assert sorted(outcomes) == ["ok"] * 3 + ["slot_full"] * 13
    slot.refresh_from_db()
    assert _holding(slot) == slot.booked_count == 3


def test_one_agent_racing_for_overlapping_slots_gets_exactly_one():
    agent = AgentFactory()
    start = next_grid_time()
    # Every pair of these eight slots overlaps.
    slots = [
        ShiftSlotFactory(
            starts_at=start + timedelta(minutes=30 * i), ends_at=start + timedelta(hours=3)
        )
        for i in range(2)
    ] + [ShiftSlotFactory(starts_at=start, ends_at=start + timedelta(hours=1)) for _ in range(6)]

    outcomes = _race(
        [lambda s=s: shifts.shift_book(agent_id=agent.pk, slot_id=s.pk) for s in slots]
    )

    assert sorted(outcomes) == ["ok"] + ["overlapping_booking"] * 7
    assert ShiftBooking.objects.filter(agent=agent, status=BookingStatus.BOOKED).count() == 1


def test_one_agent_double_clicking_book_gets_one_place():
    agent = AgentFactory()
    slot = ShiftSlotFactory(headcount=5)

    outcomes = _race(
        [lambda: shifts.shift_book(agent_id=agent.pk, slot_id=slot.pk) for _ in range(6)]
    )

    assert sorted(outcomes) == ["already_booked"] * 5 + ["ok"]
    slot.refresh_from_db()
    assert slot.booked_count == 1


def test_racing_past_the_weekly_cap_books_only_up_to_it(settings):
    settings.HUMANLINE = {**settings.HUMANLINE, "SHIFT_WEEKLY_HOURS_CAP": 3}
    agent = AgentFactory(time_zone="UTC")
    # Six one-hour slots on the same day, two days out (inside one week or the
    # next, but all on one day, hence one week).
    day = next_grid_time(days=2).replace(hour=6, minute=0)
    slots = [
        ShiftSlotFactory(
            starts_at=day + timedelta(hours=2 * i), ends_at=day + timedelta(hours=2 * i + 1)
        )
        for i in range(6)
    ]

    outcomes = _race(
        [lambda s=s: shifts.shift_book(agent_id=agent.pk, slot_id=s.pk) for s in slots]
    )

    assert sorted(outcomes) == ["ok"] * 3 + ["weekly_hours_cap"] * 3


def test_bookings_cancellations_and_a_slot_cancellation_at_once_keep_the_count_true():
    staff = StaffFactory()
    slot = ShiftSlotFactory(headcount=4)
    early = AgentFactory.create_batch(3)
    for agent in early:
        shifts.shift_book(agent_id=agent.pk, slot_id=slot.pk)
    late = AgentFactory.create_batch(6)

    calls = [lambda a=a: shifts.shift_booking_cancel(agent_id=a.pk, slot_id=slot.pk) for a in early]
    calls += [lambda a=a: shifts.shift_book(agent_id=a.pk, slot_id=slot.pk) for a in late]
    calls += [lambda: shifts.shift_slot_cancel(actor=staff, slot_id=slot.pk, reason="Race.")]
    outcomes = _race(calls)

    assert not [o for o in outcomes if o.startswith("unexpected")], outcomes
    slot.refresh_from_db()
    assert slot.status == "cancelled"
    assert slot.booked_count == _holding(slot) == 0
    assert not ShiftBooking.objects.filter(slot=slot, status=BookingStatus.BOOKED).exists()
    assert ShiftSlot.objects.filter(booked_count__gt=0).count() == 0
