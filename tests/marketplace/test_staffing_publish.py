"""Publish what is missing: the places the forecast asks for, in one audited action that is
safe to repeat.  The clock stands at Monday 2030-01-07 09:00 UTC."""

import threading
from datetime import UTC, datetime

import pytest
from django.db import connection

from marketplace import staffing_selectors
from marketplace.models import ShiftEvent, ShiftSlot, StaffingPublication
from marketplace.services import staffing
from tests.factories import StaffFactory
from tests.marketplace.factories import ShiftSlotFactory
from tests.tickets.factories import TicketFactory

URL = "/api/v1/admin/staffing/publish/"
MONDAY = datetime(2030, 1, 7, tzinfo=UTC).date()


def at(hour: int, minute: int = 0, *, day: int = 7, month: int = 1, year: int = 2030):
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def policy(settings):
    settings.HUMANLINE = {
        **settings.HUMANLINE,
        "STAFFING_FORECAST_WEEKS": 4,
        "STAFFING_MIN_AGENTS": 1,
        "STAFFING_SERVICE_LEVEL": 0.8,
        "STAFFING_ANSWER_SECONDS": 60,
        "STAFFING_HANDLE_SECONDS_DEFAULT": 600,
        "STAFFING_HANDLE_MIN_SAMPLES": 2,
        "AGENT_CAPACITY_DEFAULT": 2,
    }


@pytest.fixture
def busy_last_monday(db):
    """20 tickets last Monday 10:00-10:30, the first on record: 5 agents needed at 10:00."""
    for _ in range(20):
        moment = at(10, 5, day=31, month=12, year=2029)
        TicketFactory(created_at=moment, queued_at=moment)


def plan(day=MONDAY):
    return {f"{s['starts_at']:%H:%M}": s for s in staffing_selectors.staffing_day(day=day)["slots"]}


@pytest.mark.django_db
def test_publishing_a_day_adds_what_is_missing_where_it_is_missing(
    api, staff, clock, policy, busy_last_monday
):
    # given: 10:00 needs 5 and has 3 published; every other half hour needs 1
    ShiftSlotFactory(starts_at=at(10), ends_at=at(11), headcount=3)

    # when
    response = api.as_(staff).post(URL, {"date": "2030-01-07", "days": 1}, format="json")

    # then: from 09:00 (the half hours already past are left alone) to midnight
    assert response.status_code == 201, response.json()
    body = response.json()
    created = ShiftSlot.objects.filter(pk__in=body["slot_ids"])
    assert body["created"] == created.count() == 30 - 1
    by_time = {f"{s.starts_at:%H:%M}": s for s in created}
    assert by_time["10:00"].headcount == 2  # 5 required, 3 published
    assert "10:30" not in by_time  # 3 published, 1 required
    assert by_time["09:00"].headcount == 1 and by_time["23:30"].headcount == 1
    assert all(s.ends_at - s.starts_at == staffing_selectors.SLOT for s in created)
    assert body["headcount_added"] == 2 + 28
    assert not ShiftSlot.objects.filter(starts_at__lt=at(9)).exists()
    after = plan()
    assert all(s["published"] >= s["required"] for t, s in after.items() if t >= "09:00")


@pytest.mark.django_db
def test_the_action_is_audited_once_naming_the_actor_and_each_slot_names_it(
    api, staff, clock, policy
):
    response = api.as_(staff).post(URL, {"date": "2030-01-07", "days": 1}, format="json")

    publication = StaffingPublication.objects.get()
    assert response.json()["publication_id"] == publication.pk
    assert publication.actor == staff
    assert (publication.first_day, publication.days) == (MONDAY, 1)
    assert (publication.slots_created, publication.headcount_added) == (30, 30)
    assert publication.detail["handle_seconds"] == 600 and publication.detail["weeks"] == 4
    events = ShiftEvent.objects.filter(kind="slot_published")
    assert events.count() == 30
    assert {(e.actor_id, e.detail["staffing_publication"]) for e in events} == {
        (staff.pk, publication.pk)
    }


@pytest.mark.django_db
def test_repeating_it_publishes_nothing_more(api, staff, clock, policy, busy_last_monday):
    first = api.as_(staff).post(URL, {"date": "2030-01-07"}, format="json")
    slots = ShiftSlot.objects.count()

    again = api.as_(staff).post(URL, {"date": "2030-01-07"}, format="json")

    assert first.status_code == 201 and first.json()["created"] == 30 + 6 * 48
    assert again.status_code == 200
    assert again.json() == {
        "publication_id": None,
        "created": 0,
        "headcount_added": 0,
        "slot_ids": [],
    }
    assert ShiftSlot.objects.count() == slots
    assert StaffingPublication.objects.count() == 1


@pytest.mark.django_db
def test_more_than_a_slot_may_hold_is_published_as_several_slots(staff, clock, policy, settings):
    settings.HUMANLINE = {**settings.HUMANLINE, "SHIFT_HEADCOUNT_MAX": 2, "STAFFING_MIN_AGENTS": 5}

    result = staffing.staffing_publish_missing(actor=staff, first_day=at(0, day=8).date(), days=1)

    assert len(result.slots) == 48 * 3
    assert sorted({s.headcount for s in result.slots}) == [1, 2]
    assert result.headcount_added == 48 * 5


@pytest.mark.django_db
def test_the_days_are_checked(api, staff, clock, policy):
    for days in (0, 15, "many"):
        response = api.as_(staff).post(URL, {"days": days}, format="json")

        assert response.status_code == 400
        assert list(response.json()["error"]["fields"]) == ["days"]
    assert not ShiftSlot.objects.exists()


@pytest.mark.django_db
def test_only_staff_may_publish(api, agent, clock, policy):
    assert api.as_(agent).post(URL, {}, format="json").status_code == 403
    assert api.as_(None).post(URL, {}, format="json").status_code == 403
    assert not ShiftSlot.objects.exists()


@pytest.mark.django_db
def test_staff_publish_from_the_planner(client, staff, clock, policy):
    client.force_login(staff)

    response = client.post("/staff/shifts/missing/", {"date": "2030-01-08", "days": "1"})

    assert response.status_code == 302
    assert response["Location"] == "/staff/shifts/?date=2030-01-08"
    assert ShiftSlot.objects.count() == 48
    page = client.get(response["Location"])
    assert "Published 48 slots with 48 places" in page.content.decode()
    assert "Every half hour of this day has its required places published." in (
        page.content.decode()
    )


@pytest.mark.postgres("two transactions racing: the advisory lock serialises them")
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("short_lived_db_connections")
def test_two_staff_publishing_at_once_publish_the_missing_places_once(clock, policy):
    olivia, oscar = StaffFactory(), StaffFactory()
    barrier = threading.Barrier(2)
    outcomes = []

    def publish(actor):
        try:
            barrier.wait(timeout=10)
            result = staffing.staffing_publish_missing(actor=actor, first_day=MONDAY, days=1)
            outcomes.append(len(result.slots))
        finally:
            connection.close()

    threads = [threading.Thread(target=publish, args=(who,)) for who in (olivia, oscar)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes) == [0, 30]
    assert ShiftSlot.objects.count() == 30
    assert StaffingPublication.objects.count() == 1
