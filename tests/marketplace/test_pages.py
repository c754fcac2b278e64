"""The agent's shift board and the staff planner, server-side and in a real browser."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from agents.models import Presence
from marketplace.models import BookingStatus, ShiftBooking, ShiftSlot
from tests.conftest import sign_in
from tests.marketplace.factories import ShiftBookingFactory, ShiftSlotFactory, next_grid_time

# --- server-side ---------------------------------------------------------------------


@pytest.mark.django_db
def test_board_lists_open_slots_for_an_approved_agent(client, agent, clock):
    ShiftSlotFactory(starts_at=datetime(2030, 1, 8, 10, tzinfo=UTC), headcount=4)
    client.force_login(agent.user)
    response = client.get("/agent/shifts/")
    assert response.status_code == 200
    assert b"Tue 8 Jan, 10:00" in response.content
    assert b"4 of 4" in response.content


@pytest.mark.django_db
def test_board_tells_an_applicant_it_opens_on_approval(client, applicant):
    client.force_login(applicant.user)
    response = client.get("/agent/shifts/")
    assert response.status_code == 403
    assert b"once your application is approved" in response.content


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["customer", "staff"])
def test_board_is_not_for_non_agents(client, request, persona):
    client.force_login(request.getfixturevalue(persona))
    assert client.get("/agent/shifts/").status_code == 404


@pytest.mark.django_db
def test_board_needs_a_sign_in(client):
    assert client.get("/agent/shifts/").status_code == 302


@pytest.mark.django_db
def test_presence_switch_on_the_board(client, agent):
    client.force_login(agent.user)
    response = client.post("/agent/presence/", {"status": "online"}, follow=True)
    agent.refresh_from_db()
    assert agent.presence == Presence.ONLINE
    assert b"You are online." in response.content


@pytest.mark.django_db
def test_an_applicant_switching_online_on_the_page_is_told_why_not(client, applicant):
    client.force_login(applicant.user)
    response = client.post("/agent/presence/", {"status": "online"}, follow=True)
    applicant.refresh_from_db()
    assert applicant.presence == Presence.OFFLINE
    assert b"Only approved agents" in response.content


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["agent", "customer", "applicant"])
def test_planner_is_for_staff_only(client, request, persona):
    user = request.getfixturevalue(persona)
    client.force_login(getattr(user, "user", user))
    assert client.get("/staff/shifts/").status_code == 302
    assert client.post("/staff/shifts/publish/", {}).status_code == 302
    assert not ShiftSlot.objects.exists()


@pytest.mark.django_db
def test_planner_shows_an_off_grid_slot_error_next_to_the_field(client, staff, clock):
    client.force_login(staff)
    response = client.post(
        "/staff/shifts/publish/",
        {"day": "2030-01-08", "start": "10:15", "end": "11:00", "headcount": 2},
    )
    assert response.status_code == 400
    assert b"30-minute grid" in response.content
    assert not ShiftSlot.objects.exists()


@pytest.mark.django_db
def test_planner_publishes_a_week(client, staff, clock):
    client.force_login(staff)
    response = client.post(
        "/staff/shifts/week/",
        {
            "week_start": "2030-01-14",
            "weekdays": ["0", "2"],
            "day_start": "09:00",
            "day_end": "11:00",
            "headcount": 2,
            "time_zone": "UTC",
        },
        follow=True,
    )
    assert b"Week published: 8 slots" in response.content
    assert ShiftSlot.objects.count() == 8


@pytest.mark.django_db
def test_planner_cancels_a_slot_and_releases_its_agents(client, staff, agent, clock):
    booking = ShiftBookingFactory(agent=agent)
    client.force_login(staff)
    client.post(f"/staff/shifts/{booking.slot_id}/cancel/", {"reason": "Quiet day."})
    booking.refresh_from_db()
    assert booking.status == BookingStatus.CANCELLED


# --- in a real browser --------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.usefixtures("short_lived_db_connections")
def test_agent_books_and_cancels_a_shift_on_the_board(new_page, agent, password):
    starts_at = next_grid_time(days=2)
    slot = ShiftSlotFactory(starts_at=starts_at, headcount=2)
    page = new_page()
    sign_in(page, agent.user.email, password)

    page.get_by_role("link", name="Shifts").click()
    expect(page.get_by_role("heading", name="Shift board")).to_be_visible()
    row = page.locator(f"[data-testid=open-slots] tr[data-slot='{slot.pk}']")
    expect(row.get_by_test_id("free-places")).to_have_text("2 of 2")
    row.get_by_role("button", name="Book").click()

    expect(page.get_by_text("Booked. See you there!")).to_be_visible()
    expect(row.get_by_test_id("free-places")).to_have_text("1 of 2")
    mine = page.locator(f"[data-testid=my-shifts] tr[data-slot='{slot.pk}']")
    expect(mine).to_be_visible()
    assert ShiftBooking.objects.get(agent=agent, slot=slot).status == BookingStatus.BOOKED

    mine.get_by_role("button", name="Cancel booking").click()
    expect(page.get_by_text("Booking cancelled.")).to_be_visible()
    expect(page.locator("[data-testid=my-shifts]")).to_have_count(0)
    assert ShiftBooking.objects.get(agent=agent, slot=slot).status == BookingStatus.CANCELLED


@pytest.mark.browser
@pytest.mark.usefixtures("short_lived_db_connections")
def test_agent_goes_online_from_the_board_and_the_socket_keeps_them_there(
    new_page, agent, password
):
    page = new_page()
    sign_in(page, agent.user.email, password)
    page.goto("/agent/shifts/")
    expect(page.locator("#live-status")).to_have_text("Live.")

    page.get_by_role("button", name="Go online").click()

    expect(page.get_by_test_id("presence")).to_have_text("Online")
    agent.refresh_from_db()
    assert agent.presence == Presence.ONLINE
    expect(page.locator("#live-status")).to_have_text("Live.")
    assert agent.connections.filter(closed_at__isnull=True).exists()


@pytest.mark.browser
@pytest.mark.usefixtures("short_lived_db_connections")
def test_staff_publish_a_slot_and_see_its_fill_rate(new_page, staff, password):
    day = (datetime.now(UTC) + timedelta(days=3)).date()
    page = new_page()
    sign_in(page, staff.email, password)

    page.get_by_role("link", name="Shifts").click()
    expect(page.get_by_role("heading", name="Shift planner")).to_be_visible()
    form = page.locator("form", has=page.get_by_role("heading", name="Publish a slot"))
    form.get_by_label("Day").fill(day.isoformat())
    form.get_by_label("Start (UTC)").fill("10:00")
    form.get_by_label("End (UTC)").fill("12:00")
    form.get_by_label("Headcount").fill("4")
    form.get_by_role("button", name="Publish slot").click()

    expect(page.get_by_text(re.compile(r"Slot published"))).to_be_visible()
    slot = ShiftSlot.objects.get()
    assert (slot.headcount, slot.duration_seconds) == (4, 7200)
    row = page.locator(f"[data-testid=planner-slots] tr[data-slot='{slot.pk}']")
    expect(row.get_by_test_id("fill-rate")).to_contain_text("0/4 (0%)")

    ShiftBookingFactory(slot=slot)
    page.reload()
    expect(row.get_by_test_id("fill-rate")).to_contain_text("1/4 (25%)")

    row.get_by_label("Reason for cancelling this slot").fill("Forecast changed.")
    row.get_by_role("button", name="Cancel slot").click()
    expect(row).to_contain_text("Cancelled")
