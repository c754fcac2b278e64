"""In a real browser: staff see tomorrow's staffing on the shift planner — required,
published and booked agents per half hour with a chart — and publish what is missing.

With ``HUMANLINE_SCREENSHOTS=1`` the staffing view is saved for the README
(docs/screenshots/staffing-planner.png).
"""

import math
import os
import re
from datetime import UTC, datetime, time, timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from marketplace.models import ShiftSlot, StaffingPublication
from tests.conftest import sign_in
from tests.factories import AgentFactory, UserFactory
from tests.marketplace.factories import ShiftBookingFactory, ShiftSlotFactory
from tests.web.conftest import SCREENSHOTS
from tickets.models import Ticket, TicketStatus

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("short_lived_db_connections")]


def tickets_per_half_hour(slot: int) -> int:
    """A support day: quiet at night, busiest late morning and early afternoon (UTC)."""
    hour = slot / 2
    return round(1 + 40 * math.exp(-(((hour - 12) / 3.5) ** 2)))


def four_weeks_of_tickets(day) -> None:
    """The same weekday as ``day`` in each of the last four weeks, and handle times."""
    customer = UserFactory()
    agent = AgentFactory(capacity=2)
    rows = []
    for week in (4, 3, 2, 1):
        start = datetime.combine(day - timedelta(weeks=week), time(), UTC)
        for slot in range(48):
            moment = start + timedelta(minutes=30 * slot + 7)
            rows += [
                Ticket(
                    customer=customer,
                    subject="Card declined",
                    body="It was declined.",
                    language="en",
                    category="general",
                    status=TicketStatus.RESOLVED,
                    assigned_agent=agent,
                    created_at=moment,
                    queued_at=moment,
                    assigned_at=moment + timedelta(seconds=40),
                    resolved_at=moment + timedelta(seconds=40, minutes=7),
                )
                for _ in range(tickets_per_half_hour(slot))
            ]
    Ticket.objects.bulk_create(rows)


def test_staff_see_what_is_missing_and_publish_it(new_page, staff):
    # given: tomorrow's history, and tomorrow 08:00-12:00 for 3 (2 booked), 12:00-18:00 for 2
    tomorrow = (timezone.now().astimezone(UTC) + timedelta(days=1)).date()
    four_weeks_of_tickets(tomorrow)
    at = lambda hour: datetime.combine(tomorrow, time(hour), UTC)  # noqa: E731
    morning = ShiftSlotFactory(starts_at=at(8), ends_at=at(12), headcount=3)
    ShiftBookingFactory.create_batch(2, slot=morning, agent__capacity=2)
    ShiftSlotFactory(starts_at=at(12), ends_at=at(18), headcount=2)

    # when: staff open the planner on tomorrow
    page = new_page(viewport={"width": 1280, "height": 1000})
    sign_in(page, staff.email)
    page.goto(f"/staff/shifts/?date={tomorrow:%Y-%m-%d}")

    # then: the staffing view, with its chart, and every half hour in the table
    view = page.get_by_test_id("staffing")
    expect(view.get_by_role("heading", level=2)).to_contain_text(f"{tomorrow:%A %-d %B %Y}")
    chart = view.get_by_test_id("staffing-chart")
    expect(chart).to_be_visible()
    expect(chart.locator("g.half-hour")).to_have_count(48)
    expect(chart).to_have_attribute("aria-label", re.compile("short of their requirement"))
    expect(view.get_by_test_id("staffing-inputs")).to_contain_text("measured on")
    rows = view.get_by_test_id("staffing-slots").locator("tbody tr")
    expect(rows).to_have_count(48)
    noon = view.locator('tr[data-starts-at="12:00"]')
    ten = view.locator('tr[data-starts-at="10:00"]')
    expect(ten.locator("[data-col=published]")).to_have_text("3")
    expect(ten.locator("[data-col=booked]")).to_have_text("2")
    expect(noon.locator("[data-col=published]")).to_have_text("2")
    required_at_noon = int(noon.locator("[data-col=required]").text_content())
    assert required_at_noon > 2  # the busiest half hour needs more than it has
    expect(view.get_by_test_id("staffing-short")).to_contain_text("short by")
    if os.environ.get("HUMANLINE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        view.screenshot(path=str(SCREENSHOTS / "staffing-planner.png"))

    # when: they publish what is missing for the week from tomorrow
    view.get_by_role("button", name="Publish what is missing").click()

    # then: published rises to what is required, and the page says so
    expect(page.locator(".flash.success")).to_contain_text("Published")
    expect(noon.locator("[data-col=published]")).to_have_text(str(required_at_noon))
    expect(noon.locator("[data-col=missing]")).to_have_text("")
    expect(view.get_by_test_id("staffing-short")).to_have_text(
        "Every half hour of this day has its required places published."
    )
    publication = StaffingPublication.objects.get()
    assert (publication.actor_id, publication.days) == (staff.pk, 7)
    assert ShiftSlot.objects.filter(starts_at__gte=at(0) + timedelta(days=7)).count() == 0
