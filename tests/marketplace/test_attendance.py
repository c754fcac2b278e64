"""After a slot ends, each booking becomes attended or no_show, measured from presence."""

from datetime import UTC, datetime, timedelta

import pytest

from agents import presence
from marketplace.models import BookingStatus, ShiftEvent
from marketplace.services import shifts
from marketplace.tasks import settle_shift_attendance
from tests.marketplace.factories import ShiftBookingFactory, ShiftSlotFactory

pytestmark = pytest.mark.django_db

START = datetime(2030, 1, 7, 10, 0, tzinfo=UTC)  # one hour after the clock's now


@pytest.fixture
def slot(clock):
    return ShiftSlotFactory(starts_at=START, ends_at=START + timedelta(hours=2), headcount=5)


def _online(agent, clock, *, at, minutes):
    clock.move_to(at)
    presence.agent_presence_set(agent_id=agent.pk, status="online")
    clock.move_to(at + timedelta(minutes=minutes))
    presence.agent_presence_set(agent_id=agent.pk, status="offline")


def test_online_for_three_quarters_of_the_slot_is_attended(agent, slot, clock):
    booking = ShiftBookingFactory(slot=slot, agent=agent)
    _online(agent, clock, at=START - timedelta(minutes=10), minutes=10 + 90)
    clock.move_to(START + timedelta(hours=2))

    assert shifts.shift_attendance_settle() == 1

    booking.refresh_from_db()
    assert booking.status == BookingStatus.ATTENDED
    assert booking.online_seconds == 90 * 60  # time before the slot does not count
    event = ShiftEvent.objects.get(booking=booking, kind="attended")
    assert event.detail == {"online_seconds": 5400, "required_seconds": 5400}


def test_online_for_less_than_the_share_is_a_no_show(agent, slot, clock):
    booking = ShiftBookingFactory(slot=slot, agent=agent)
    _online(agent, clock, at=START, minutes=89)
    clock.move_to(START + timedelta(hours=3))

    shifts.shift_attendance_settle()

    booking.refresh_from_db()
    assert booking.status == BookingStatus.NO_SHOW
    assert booking.online_seconds == 89 * 60


def test_away_time_does_not_count_as_online(agent, slot, clock):
    booking = ShiftBookingFactory(slot=slot, agent=agent)
    clock.move_to(START)
    presence.agent_presence_set(agent_id=agent.pk, status="away")
    clock.move_to(START + timedelta(hours=2))
    shifts.shift_attendance_settle()
    booking.refresh_from_db()
    assert booking.status == BookingStatus.NO_SHOW


def test_an_agent_still_online_when_the_slot_ends_attended(agent, slot, clock):
    booking = ShiftBookingFactory(slot=slot, agent=agent)
    clock.move_to(START)
    presence.agent_presence_set(agent_id=agent.pk, status="online")
    clock.move_to(START + timedelta(hours=2, minutes=1))

    shifts.shift_attendance_settle()

    booking.refresh_from_db()
    assert booking.status == BookingStatus.ATTENDED
    assert booking.online_seconds == 2 * 3600


def test_the_attendance_share_is_configurable(agent, slot, clock, settings):
    settings.HUMANLINE = {**settings.HUMANLINE, "SHIFT_ATTENDANCE_PERCENT": 40}
    booking = ShiftBookingFactory(slot=slot, agent=agent)
    _online(agent, clock, at=START, minutes=50)
    clock.move_to(START + timedelta(hours=2))
    shifts.shift_attendance_settle()
    booking.refresh_from_db()
    assert booking.status == BookingStatus.ATTENDED


def test_bookings_of_slots_not_yet_ended_are_left_alone(agent, slot, clock):
    booking = ShiftBookingFactory(slot=slot, agent=agent)
    clock.move_to(START + timedelta(hours=1, minutes=59))
    assert shifts.shift_attendance_settle() == 0
    booking.refresh_from_db()
    assert booking.status == BookingStatus.BOOKED


def test_settling_twice_settles_once(agent, slot, clock):
    ShiftBookingFactory(slot=slot, agent=agent)
    clock.move_to(START + timedelta(hours=2))
    assert shifts.shift_attendance_settle() == 1
    assert shifts.shift_attendance_settle() == 0
    assert ShiftEvent.objects.filter(kind__in=["attended", "no_show"]).count() == 1


def test_cancelled_bookings_are_not_settled(agent, slot, clock):
    booking = ShiftBookingFactory(slot=slot, agent=agent, status="cancelled")
    clock.move_to(START + timedelta(hours=2))
    shifts.shift_attendance_settle()
    booking.refresh_from_db()
    assert booking.status == BookingStatus.CANCELLED


def test_settlement_pushes_the_result_to_the_agent(
    agent, slot, clock, pushes, django_capture_on_commit_callbacks
):
    ShiftBookingFactory(slot=slot, agent=agent)
    clock.move_to(START + timedelta(hours=2))
    with django_capture_on_commit_callbacks(execute=True):
        shifts.shift_attendance_settle()
    assert [(a, m["type"], m["booking"]["status"]) for a, m in pushes] == [
        (agent.pk, "shift.attendance", "no_show")
    ]


def test_the_periodic_task_settles_attendance(agent, slot, clock):
    booking = ShiftBookingFactory(slot=slot, agent=agent)
    clock.move_to(START + timedelta(hours=2))
    settle_shift_attendance.delay()
    booking.refresh_from_db()
    assert booking.status == BookingStatus.NO_SHOW


# --- the attendance record ------------------------------------------------------------


@pytest.fixture
def record(agent, clock):
    """Two attended, one no-show, one late cancellation, one plain cancellation, one upcoming."""
    statuses = ["attended", "attended", "no_show", "late_cancelled", "cancelled"]
    for day, status in enumerate(statuses, start=1):
        ShiftBookingFactory(
            agent=agent,
            status=status,
            slot=ShiftSlotFactory(starts_at=START + timedelta(days=day)),
        )
    ShiftBookingFactory(agent=agent, slot=ShiftSlotFactory(starts_at=START + timedelta(days=20)))
    return agent


EXPECTED = {
    "upcoming": 1,
    "attended": 2,
    "no_show": 1,
    "late_cancelled": 1,
    "cancelled": 1,
    "attendance_rate": 0.6667,
}


def test_agent_sees_their_attendance_record(api, record):
    response = api.as_(record).get("/api/v1/agents/me/attendance/")
    assert response.status_code == 200
    assert response.json() == {"agent_id": record.pk, **EXPECTED}


def test_staff_see_an_agents_attendance_record(api, staff, record):
    response = api.as_(staff).get(f"/api/v1/admin/agents/{record.pk}/attendance/")
    assert response.status_code == 200
    assert response.json() == {"agent_id": record.pk, **EXPECTED}


def test_an_agent_sees_only_their_own_record(api, record, other_agent):
    response = api.as_(other_agent).get("/api/v1/agents/me/attendance/")
    assert response.json()["attended"] == 0
    assert (
        api.as_(other_agent).get(f"/api/v1/admin/agents/{record.pk}/attendance/").status_code == 403
    )


@pytest.mark.parametrize("persona", ["customer", "staff"])
def test_my_attendance_is_for_agents(api, request, persona):
    assert (
        api.as_(request.getfixturevalue(persona)).get("/api/v1/agents/me/attendance/").status_code
        == 403
    )


def test_staff_attendance_of_an_unknown_agent_is_a_404(api, staff):
    assert api.as_(staff).get("/api/v1/admin/agents/999999/attendance/").status_code == 404


def test_customer_cannot_read_an_agents_record(api, customer, agent):
    assert api.as_(customer).get(f"/api/v1/admin/agents/{agent.pk}/attendance/").status_code == 403
