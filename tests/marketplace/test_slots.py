"""Staff publish slots on the 30-minute grid, a week at a time, and cancel them."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from marketplace.models import BookingStatus, ShiftEvent, ShiftSlot, SlotStatus
from marketplace.services import shifts
from tests.marketplace.factories import ShiftBookingFactory, ShiftSlotFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/admin/shifts/"
TOMORROW_10 = "2030-01-08T10:00:00Z"
TOMORROW_12 = "2030-01-08T12:00:00Z"


def _slot(**overrides):
    body = {"starts_at": TOMORROW_10, "ends_at": TOMORROW_12, "headcount": 4}
    body.update(overrides)
    return body


# --- publishing one slot -----------------------------------------------------------


def test_staff_publish_a_slot_with_focus_and_a_bonus(api, staff, clock):
    response = api.as_(staff).post(
        URL,
        _slot(
            language="pt",
            skill="payments",
            incentive={"kind": "bonus", "amount": "12.50", "currency": "EUR"},
        ),
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["headcount"] == 4 and body["free_places"] == 4 and body["fill_rate"] == 0.0
    assert body["language"] == "pt" and body["skill"] == "payments"
    assert body["incentive"] == {"kind": "bonus", "amount": "12.50", "currency": "EUR"}
    slot = ShiftSlot.objects.get(pk=body["id"])
    assert slot.incentive_amount == Decimal("12.50")
    assert slot.duration_seconds == 2 * 3600
    assert ShiftEvent.objects.filter(slot=slot, kind="slot_published", actor=staff).exists()


def test_hourly_minimum_incentive_takes_the_default_currency(api, staff, clock):
    response = api.as_(staff).post(
        URL, _slot(incentive={"kind": "hourly_minimum", "amount": "14.00"}), format="json"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["incentive"]["currency"] == "EUR"


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"starts_at": "2030-01-08T10:15:00Z"}, "starts_at", "off_grid"),
        ({"ends_at": "2030-01-08T12:10:00Z"}, "ends_at", "off_grid"),
        ({"ends_at": "2030-01-08T09:00:00Z"}, "ends_at", "inverted_slot"),
        ({"ends_at": TOMORROW_10}, "ends_at", "inverted_slot"),
        (
            {"starts_at": "2030-01-06T10:00:00Z", "ends_at": "2030-01-06T12:00:00Z"},
            "starts_at",
            "slot_in_past",
        ),
        ({"ends_at": "2030-01-09T10:00:00Z"}, "ends_at", "slot_too_long"),
        (
            {"starts_at": "2031-01-08T10:00:00Z", "ends_at": "2031-01-08T12:00:00Z"},
            "starts_at",
            "slot_too_far",
        ),
        ({"headcount": 100_000}, "headcount", "invalid_headcount"),
        ({"language": "xx"}, "language", "unknown_language"),
        ({"skill": "juggling"}, "skill", "unknown_skill"),
        ({"incentive": {"kind": "bonus", "amount": "0.00"}}, "incentive", "invalid_amount"),
        ({"incentive": {"kind": "bonus", "amount": "9999.00"}}, "incentive", "invalid_amount"),
    ],
)
def test_absurd_slots_are_400s_naming_the_field(api, staff, clock, overrides, field, code):
    response = api.as_(staff).post(URL, _slot(**overrides), format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == code
    assert field in error["fields"]
    assert not ShiftSlot.objects.exists()


def test_a_slot_already_under_way_is_in_the_past(api, staff, clock):
    response = api.as_(staff).post(
        URL, _slot(starts_at="2030-01-07T08:30:00Z", ends_at="2030-01-07T10:00:00Z"), format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "slot_in_past"


def test_zero_headcount_is_a_400(api, staff, clock):
    assert api.as_(staff).post(URL, _slot(headcount=0), format="json").status_code == 400


@pytest.mark.parametrize("persona", ["agent", "customer", "applicant"])
def test_only_staff_publish_slots(api, request, persona, clock):
    user = request.getfixturevalue(persona)
    assert api.as_(user).post(URL, _slot(), format="json").status_code == 403
    assert api.as_(user).get(URL).status_code == 403
    assert not ShiftSlot.objects.exists()


def test_anonymous_may_not_publish(api, clock):
    assert api.as_(None).post(URL, _slot(), format="json").status_code in (401, 403)


# --- the planner's list and fill rate -----------------------------------------------


def test_staff_see_each_slot_fill_rate(api, staff, clock):
    slot = ShiftSlotFactory(headcount=4)
    ShiftBookingFactory.create_batch(3, slot=slot)
    ShiftSlotFactory(headcount=2)

    response = api.as_(staff).get(URL)

    assert response.status_code == 200
    results = response.json()["results"]
    assert [(r["booked_count"], r["fill_rate"]) for r in results] == [(3, 0.75), (0, 0.0)]


def test_staff_list_filters_by_date_and_status(api, staff, clock):
    ShiftSlotFactory(starts_at=datetime(2030, 1, 8, 10, tzinfo=UTC))
    later = ShiftSlotFactory(starts_at=datetime(2030, 1, 10, 10, tzinfo=UTC))
    ShiftSlotFactory(starts_at=datetime(2030, 1, 10, 12, tzinfo=UTC), status="cancelled")

    response = api.as_(staff).get(URL, {"date_from": "2030-01-10", "status": "published"})

    assert [r["id"] for r in response.json()["results"]] == [later.pk]


def test_staff_read_a_slot_with_its_bookings(api, staff, agent, clock):
    booking = ShiftBookingFactory(agent=agent)
    response = api.as_(staff).get(f"{URL}{booking.slot_id}/")
    assert response.status_code == 200
    assert [b["email"] for b in response.json()["bookings"]] == [agent.user.email]


def test_unknown_slot_is_a_404_for_staff(api, staff):
    assert api.as_(staff).get(f"{URL}999999/").status_code == 404


# --- a week from a template ---------------------------------------------------------


def _week(**overrides):
    body = {
        "week_start": "2030-01-14",
        "weekdays": [0, 1, 2, 3, 4],
        "day_start": "08:00",
        "day_end": "20:00",
        "headcount": 3,
        "headcount_by_hour": {"12": 6, "13": 6},
    }
    body.update(overrides)
    return body


def test_staff_publish_a_week_of_weekday_slots_in_one_action(api, staff, clock):
    response = api.as_(staff).post(f"{URL}week/", _week(), format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["created"] == 5 * 24
    slots = ShiftSlot.objects.all()
    assert slots.count() == 120
    assert {s.starts_at.weekday() for s in slots} == {0, 1, 2, 3, 4}
    assert all(s.duration_seconds == 1800 for s in slots)
    monday = slots.filter(starts_at__date=date(2030, 1, 14))
    assert monday.first().starts_at == datetime(2030, 1, 14, 8, tzinfo=UTC)
    assert monday.last().ends_at == datetime(2030, 1, 14, 20, tzinfo=UTC)
    assert {s.headcount for s in monday if s.starts_at.hour in (12, 13)} == {6}
    assert {s.headcount for s in monday if s.starts_at.hour not in (12, 13)} == {3}


def test_a_week_template_is_read_in_its_time_zone(api, staff, clock):
    response = api.as_(staff).post(
        f"{URL}week/",
        _week(weekdays=[0], day_start="09:00", day_end="10:00", time_zone="Europe/Lisbon"),
        format="json",
    )
    assert response.status_code == 201
    # Lisbon is UTC+0 in January: 09:00 local is 09:00 UTC.
    assert ShiftSlot.objects.first().starts_at == datetime(2030, 1, 14, 9, tzinfo=UTC)

    response = api.as_(staff).post(
        f"{URL}week/",
        _week(weekdays=[0], day_start="09:00", day_end="10:00", time_zone="Europe/Berlin"),
        format="json",
    )
    assert ShiftSlot.objects.order_by("starts_at").first().starts_at == datetime(
        2030, 1, 14, 8, tzinfo=UTC
    )


def test_publishing_the_same_week_twice_skips_the_existing_slots(api, staff, clock):
    api.as_(staff).post(f"{URL}week/", _week(), format="json")
    response = api.as_(staff).post(f"{URL}week/", _week(), format="json")

    assert response.json() | {"slots": None} == {"created": 0, "skipped": 120, "slots": None}
    assert ShiftSlot.objects.count() == 120


def test_a_week_already_begun_publishes_only_its_future_slots(api, staff, clock):
    # Now is Monday 09:00: Monday 08:00 and 08:30 are past.
    response = api.as_(staff).post(
        f"{URL}week/", _week(week_start="2030-01-07", weekdays=[0]), format="json"
    )
    assert response.json()["created"] == 22
    assert response.json()["skipped"] == 2


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"day_start": "08:15"}, "day_start"),
        ({"day_end": "07:00"}, "day_end"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"weekdays": [7]}, "weekdays"),
        ({"headcount_by_hour": {"25": 3}}, "headcount_by_hour"),
    ],
)
def test_a_broken_week_template_is_a_400_and_publishes_nothing(api, staff, clock, overrides, field):
    response = api.as_(staff).post(f"{URL}week/", _week(**overrides), format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not ShiftSlot.objects.exists()


def test_only_staff_publish_a_week(api, agent, clock):
    assert api.as_(agent).post(f"{URL}week/", _week(), format="json").status_code == 403


# --- cancelling a slot ----------------------------------------------------------------


def test_cancelling_a_slot_releases_and_notifies_its_booked_agents(
    api, staff, agent, other_agent, clock, pushes, mailoutbox, django_capture_on_commit_callbacks
):
    slot = ShiftSlotFactory()
    mine = ShiftBookingFactory(slot=slot, agent=agent)
    theirs = ShiftBookingFactory(slot=slot, agent=other_agent)

    with django_capture_on_commit_callbacks(execute=True):
        response = api.as_(staff).post(
            f"{URL}{slot.pk}/cancel/", {"reason": "Low demand forecast."}, format="json"
        )

    assert response.status_code == 200, response.json()
    slot.refresh_from_db()
    assert slot.status == SlotStatus.CANCELLED and slot.booked_count == 0
    for booking in (mine, theirs):
        booking.refresh_from_db()
        assert booking.status == BookingStatus.CANCELLED
    assert sorted((a, m["type"]) for a, m in pushes) == sorted(
        [(agent.pk, "shift.slot_cancelled"), (other_agent.pk, "shift.slot_cancelled")]
    )
    assert pushes[0][1]["reason"] == "Low demand forecast."
    assert sorted(m.to[0] for m in mailoutbox) == sorted([agent.user.email, other_agent.user.email])
    assert "Low demand forecast." in mailoutbox[0].body
    assert ShiftEvent.objects.filter(slot=slot, kind="released").count() == 2


def test_cancelling_a_slot_needs_a_reason(api, staff, clock):
    slot = ShiftSlotFactory()
    response = api.as_(staff).post(f"{URL}{slot.pk}/cancel/", {}, format="json")
    assert response.status_code == 400
    slot.refresh_from_db()
    assert slot.status == SlotStatus.PUBLISHED


def test_cancelling_a_cancelled_slot_is_a_409(api, staff, clock):
    slot = ShiftSlotFactory(status="cancelled")
    response = api.as_(staff).post(f"{URL}{slot.pk}/cancel/", {"reason": "x"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "slot_cancelled"


def test_an_ended_slot_cannot_be_cancelled(staff, clock):
    slot = ShiftSlotFactory()
    clock.shift(timedelta(days=2))
    with pytest.raises(shifts.InvalidTransition):
        shifts.shift_slot_cancel(actor=staff, slot_id=slot.pk, reason="x")


@pytest.mark.parametrize("persona", ["agent", "customer", "applicant"])
def test_only_staff_cancel_slots(api, request, persona, clock):
    slot = ShiftSlotFactory()
    user = request.getfixturevalue(persona)
    response = api.as_(user).post(f"{URL}{slot.pk}/cancel/", {"reason": "x"}, format="json")
    assert response.status_code == 403
    slot.refresh_from_db()
    assert slot.status == SlotStatus.PUBLISHED


def test_unknown_slot_cancel_is_a_404(api, staff):
    assert api.as_(staff).post(f"{URL}424242/cancel/", {"reason": "x"}).status_code == 404


def test_the_database_refuses_a_slot_that_ends_before_it_starts(staff):
    from django.db import IntegrityError

    start = datetime(2030, 1, 8, 10, tzinfo=UTC)
    with pytest.raises(IntegrityError):
        ShiftSlot.objects.create(
            starts_at=start, ends_at=start - timedelta(hours=1), headcount=1, created_by=staff
        )


def test_the_database_refuses_an_incentive_without_an_amount(staff):
    from django.db import IntegrityError

    start = datetime(2030, 1, 8, 10, tzinfo=UTC)
    with pytest.raises(IntegrityError):
        ShiftSlot.objects.create(
            starts_at=start,
            ends_at=start + timedelta(hours=1),
            headcount=1,
            created_by=staff,
            incentive_kind="bonus",
        )


def test_demo_data_publishes_shifts_once(settings):
    from django.core.management import call_command

    call_command("load_demo", "--force")
    first = ShiftSlot.objects.count()
    call_command("load_demo", "--force")
    assert first > 0
    assert ShiftSlot.objects.count() == first
