"""Approved agents browse the board and book or cancel places."""

from datetime import UTC, datetime, timedelta

import pytest

from marketplace.models import BookingStatus, ShiftBooking, ShiftEvent
from marketplace.services import shifts
from tests.factories import AgentFactory
from tests.marketplace.factories import ShiftBookingFactory, ShiftSlotFactory

pytestmark = pytest.mark.django_db

BOARD = "/api/v1/shifts/"


def _at(day, hour, minute=0):
    return datetime(2030, 1, day, hour, minute, tzinfo=UTC)


def _book(api, who, slot):
    return api.as_(who).post(f"{BOARD}{slot.pk}/book/")


def _cancel(api, who, slot):
    return api.as_(who).post(f"{BOARD}{slot.pk}/cancel/")


# --- the board --------------------------------------------------------------------


def test_board_shows_open_slots_with_free_places(api, agent, clock):
    slot = ShiftSlotFactory(starts_at=_at(8, 10), headcount=3)
    ShiftBookingFactory(slot=slot)

    response = api.as_(agent).get(BOARD)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert body["results"][0]["id"] == slot.pk
    assert body["results"][0]["free_places"] == 2
    assert body["results"][0]["my_booking"] is None


def test_board_hides_started_cancelled_and_other_language_or_skill_slots(api, agent, clock):
    # The agent speaks en and pt and has general and payments.
    visible = [
        ShiftSlotFactory(starts_at=_at(8, 10)),
        ShiftSlotFactory(starts_at=_at(8, 11), language="pt"),
        ShiftSlotFactory(starts_at=_at(8, 12), skill_id=_skill("payments")),
    ]
    ShiftSlotFactory(starts_at=_at(7, 9))  # started now
    ShiftSlotFactory(starts_at=_at(8, 13), status="cancelled")
    ShiftSlotFactory(starts_at=_at(8, 14), language="de")
    ShiftSlotFactory(starts_at=_at(8, 15), skill_id=_skill("disputes"))

    response = api.as_(agent).get(BOARD)

    assert [r["id"] for r in response.json()["results"]] == [s.pk for s in visible]


def _skill(slug):
    from agents.models import Skill

    return Skill.objects.get(slug=slug).pk


def test_board_filters_by_date_language_and_skill(api, agent, clock):
    tuesday = ShiftSlotFactory(starts_at=_at(8, 10))
    wednesday_pt = ShiftSlotFactory(starts_at=_at(9, 10), language="pt")
    wednesday_pay = ShiftSlotFactory(starts_at=_at(9, 11), skill_id=_skill("payments"))

    def ids(**query):
        return [r["id"] for r in api.as_(agent).get(BOARD, query).json()["results"]]

    assert ids(date="2030-01-08") == [tuesday.pk]
    assert ids(date="2030-01-09") == [wednesday_pt.pk, wednesday_pay.pk]
    assert ids(language="pt") == [wednesday_pt.pk]
    assert ids(skill="payments") == [wednesday_pay.pk]


def test_board_date_is_read_in_the_agents_time_zone(api, clock):
    tokyo = AgentFactory(time_zone="Asia/Tokyo")
    # 2030-01-08 20:00 UTC is already the 9th in Tokyo.
    late = ShiftSlotFactory(starts_at=_at(8, 20))
    response = api.as_(tokyo).get(BOARD, {"date": "2030-01-09"})
    assert [r["id"] for r in response.json()["results"]] == [late.pk]


def test_board_is_paginated(api, agent, clock):
    for hour in range(10, 16):
        ShiftSlotFactory(starts_at=_at(8, hour))
    body = api.as_(agent).get(BOARD, {"page_size": 4}).json()
    assert body["count"] == 6 and len(body["results"]) == 4 and body["next"]


def test_board_shows_my_booking(api, agent, clock):
    slot = ShiftSlotFactory(starts_at=_at(8, 10))
    _book(api, agent, slot)
    assert api.as_(agent).get(BOARD).json()["results"][0]["my_booking"] == "booked"


def test_board_refuses_applicants_with_the_reason(api, applicant):
    response = api.as_(applicant).get(BOARD)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "agent_not_approved"


@pytest.mark.parametrize("persona", ["customer", "staff"])
def test_board_is_for_agents_only(api, request, persona):
    assert api.as_(request.getfixturevalue(persona)).get(BOARD).status_code == 403


def test_board_needs_a_sign_in(api):
    assert api.as_(None).get(BOARD).status_code in (401, 403)


# --- booking -----------------------------------------------------------------------


def test_agent_books_a_place(api, agent, clock, pushes, django_capture_on_commit_callbacks):
    slot = ShiftSlotFactory(starts_at=_at(8, 10), headcount=2)

    with django_capture_on_commit_callbacks(execute=True):
        response = _book(api, agent, slot)

    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "booked"
    slot.refresh_from_db()
    assert slot.booked_count == 1 and slot.free_places == 1
    booking = ShiftBooking.objects.get(agent=agent, slot=slot)
    assert ShiftEvent.objects.filter(booking=booking, kind="booked", actor=agent.user).exists()
    assert [(a, m["type"]) for a, m in pushes] == [(agent.pk, "shift.booked")]


def test_booking_a_full_slot_is_a_409(api, agent, clock):
    slot = ShiftSlotFactory(starts_at=_at(8, 10), headcount=1)
    ShiftBookingFactory(slot=slot)

    response = _book(api, agent, slot)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "slot_full"


def test_booking_the_same_slot_twice_is_a_409(api, agent, clock):
    slot = ShiftSlotFactory(starts_at=_at(8, 10))
    _book(api, agent, slot)
    response = _book(api, agent, slot)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "already_booked"


def test_booking_an_overlapping_slot_is_a_409(api, agent, clock):
    first = ShiftSlotFactory(starts_at=_at(8, 10), ends_at=_at(8, 12))
    overlapping = ShiftSlotFactory(starts_at=_at(8, 11), ends_at=_at(8, 13))
    adjacent = ShiftSlotFactory(starts_at=_at(8, 12), ends_at=_at(8, 13))
    _book(api, agent, first)

    response = _book(api, agent, overlapping)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "overlapping_booking"
    assert _book(api, agent, adjacent).status_code == 201


def test_the_database_refuses_overlapping_bookings_for_one_agent(agent, clock):
    from django.db import IntegrityError

    ShiftBookingFactory(
        agent=agent, slot=ShiftSlotFactory(starts_at=_at(8, 10), ends_at=_at(8, 12))
    )
    with pytest.raises(IntegrityError):
        ShiftBookingFactory(agent=agent, slot=ShiftSlotFactory(starts_at=_at(8, 11)))


def test_the_database_refuses_more_bookings_than_the_headcount(clock):
    from django.db import IntegrityError

    slot = ShiftSlotFactory(starts_at=_at(8, 10), headcount=1)
    ShiftBookingFactory(slot=slot)
    with pytest.raises(IntegrityError):
        ShiftBookingFactory(slot=slot)


def test_booking_a_cancelled_slot_is_a_409(api, agent, clock):
    slot = ShiftSlotFactory(starts_at=_at(8, 10), status="cancelled")
    response = _book(api, agent, slot)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "slot_cancelled"


def test_booking_a_started_slot_is_a_409(api, agent, clock):
    slot = ShiftSlotFactory(starts_at=_at(8, 10))
    clock.move_to(_at(8, 10, 5))
    response = _book(api, agent, slot)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "slot_started"


def test_booking_a_slot_for_another_language_is_a_403(api, agent, clock):
    slot = ShiftSlotFactory(starts_at=_at(8, 10), language="de")
    response = _book(api, agent, slot)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "language_mismatch"


def test_booking_a_slot_for_a_missing_skill_is_a_403(api, agent, clock):
    slot = ShiftSlotFactory(starts_at=_at(8, 10), skill_id=_skill("disputes"))
    response = _book(api, agent, slot)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "skill_mismatch"


def test_weekly_booked_hours_are_capped(api, agent, clock, settings):
    settings.HUMANLINE = {**settings.HUMANLINE, "SHIFT_WEEKLY_HOURS_CAP": 4}
    # Tuesday 3 h, Wednesday 1 h: at the cap.
    _book(api, agent, ShiftSlotFactory(starts_at=_at(8, 8), ends_at=_at(8, 11)))
    _book(api, agent, ShiftSlotFactory(starts_at=_at(9, 8), ends_at=_at(9, 9)))
    over = ShiftSlotFactory(starts_at=_at(10, 8), ends_at=_at(10, 8, 30))
    next_week = ShiftSlotFactory(starts_at=_at(14, 8), ends_at=_at(14, 8, 30))

    response = _book(api, agent, over)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "weekly_hours_cap"
    assert _book(api, agent, next_week).status_code == 201


def test_cancelled_bookings_do_not_count_against_the_weekly_cap(api, agent, clock, settings):
    settings.HUMANLINE = {**settings.HUMANLINE, "SHIFT_WEEKLY_HOURS_CAP": 2}
    first = ShiftSlotFactory(starts_at=_at(9, 8), ends_at=_at(9, 10))
    _book(api, agent, first)
    _cancel(api, agent, first)
    assert (
        _book(api, agent, ShiftSlotFactory(starts_at=_at(10, 8), ends_at=_at(10, 10))).status_code
        == 201
    )


@pytest.mark.parametrize("persona", ["customer", "staff"])
def test_only_agents_book(api, request, persona, clock):
    slot = ShiftSlotFactory(starts_at=_at(8, 10))
    assert _book(api, request.getfixturevalue(persona), slot).status_code == 403
    assert not ShiftBooking.objects.exists()


def test_applicant_may_not_book(api, applicant, clock):
    slot = ShiftSlotFactory(starts_at=_at(8, 10))
    response = _book(api, applicant, slot)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "agent_not_approved"


def test_booking_an_unknown_slot_is_a_404(api, agent):
    assert api.as_(agent).post(f"{BOARD}987654/book/").status_code == 404


# --- cancelling ---------------------------------------------------------------------


def test_cancelling_before_the_cut_off_is_a_plain_cancellation(
    api, agent, clock, pushes, django_capture_on_commit_callbacks
):
    slot = ShiftSlotFactory(starts_at=_at(8, 10))
    _book(api, agent, slot)

    with django_capture_on_commit_callbacks(execute=True):
        response = _cancel(api, agent, slot)

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    slot.refresh_from_db()
    assert slot.booked_count == 0
    assert [(a, m["type"]) for a, m in pushes] == [(agent.pk, "shift.booking_cancelled")]


def test_cancelling_inside_the_cut_off_is_late(api, agent, clock):
    slot = ShiftSlotFactory(starts_at=_at(8, 10))
    _book(api, agent, slot)
    clock.move_to(_at(8, 8, 30))

    response = _cancel(api, agent, slot)

    assert response.json()["status"] == "late_cancelled"
    assert ShiftEvent.objects.filter(slot=slot, kind="late_cancelled").exists()


def test_cancelling_exactly_at_the_cut_off_is_not_late(api, agent, clock):
    slot = ShiftSlotFactory(starts_at=_at(8, 10))
    _book(api, agent, slot)
    clock.move_to(_at(8, 8))
    assert _cancel(api, agent, slot).json()["status"] == "cancelled"


def test_the_cut_off_is_configurable(api, agent, clock, settings):
    settings.HUMANLINE = {**settings.HUMANLINE, "SHIFT_CANCEL_CUTOFF_HOURS": 48}
    slot = ShiftSlotFactory(starts_at=_at(8, 10))
    _book(api, agent, slot)
    assert _cancel(api, agent, slot).json()["status"] == "late_cancelled"


def test_cancelling_a_started_slot_is_a_409(api, agent, clock):
    slot = ShiftSlotFactory(starts_at=_at(8, 10))
    _book(api, agent, slot)
    clock.move_to(_at(8, 10))
    response = _cancel(api, agent, slot)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "slot_started"


def test_cancelling_without_a_booking_is_a_409(api, agent, clock):
    slot = ShiftSlotFactory(starts_at=_at(8, 10))
    response = _cancel(api, agent, slot)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "not_booked"


def test_an_agent_cannot_cancel_someone_elses_booking(api, agent, other_agent, clock):
    slot = ShiftSlotFactory(starts_at=_at(8, 10))
    _book(api, other_agent, slot)
    assert _cancel(api, agent, slot).status_code == 409
    assert ShiftBooking.objects.get(agent=other_agent).status == BookingStatus.BOOKED


def test_a_cancelled_place_can_be_booked_again(api, agent, other_agent, clock):
    slot = ShiftSlotFactory(starts_at=_at(8, 10), headcount=1)
    _book(api, agent, slot)
    _cancel(api, agent, slot)
    assert _book(api, other_agent, slot).status_code == 201
    _cancel(api, other_agent, slot)
    assert _book(api, agent, slot).status_code == 201


@pytest.mark.parametrize("persona", ["customer", "staff"])
def test_only_agents_cancel_bookings(api, request, persona, clock):
    slot = ShiftSlotFactory(starts_at=_at(8, 10))
    assert _cancel(api, request.getfixturevalue(persona), slot).status_code == 403


def test_my_shifts_lists_only_my_bookings(api, agent, other_agent, clock):
    slot = ShiftSlotFactory(starts_at=_at(8, 10))
    _book(api, agent, slot)
    _book(api, other_agent, slot)

    response = api.as_(agent).get(f"{BOARD}mine/")

    assert response.status_code == 200
    assert [b["slot"]["id"] for b in response.json()["results"]] == [slot.pk]
    assert response.json()["count"] == 1


def test_service_refuses_an_agent_suspended_after_loading_the_board(agent, staff, clock):
    from agents.services import agent_suspend
    from config.errors import Forbidden

    slot = ShiftSlotFactory(starts_at=_at(8, 10))
    agent_suspend(actor=staff, agent_id=agent.pk, reason="x")
    with pytest.raises(Forbidden):
        shifts.shift_book(agent_id=agent.pk, slot_id=slot.pk)


def test_grid_check_is_on_utc_half_hours():
    assert shifts.on_grid(_at(8, 10, 30))
    assert not shifts.on_grid(_at(8, 10, 15))
    assert not shifts.on_grid(_at(8, 10) + timedelta(seconds=1))
