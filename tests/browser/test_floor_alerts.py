"""In a real browser: staff on the floor are told, live, which customers wait past their
target and why, in the page and in the tab's title."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from agents.models import Presence
from tests.conftest import sign_in
from tests.factories import AgentFactory
from tests.tickets.factories import TicketFactory
from tests.web.conftest import elsewhere
from tickets import services
from tickets.models import Rung, Ticket

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("short_lived_db_connections")]

CALM = "Operations floor · Humanline"
# What changes in the database shows on the floor's next poll (every 2.5 s): give a
# loaded machine a few polls.
NEXT_POLL = 15_000


@pytest.fixture(autouse=True)
def targets(settings):
    settings.HUMANLINE = {
        **settings.HUMANLINE,
        "WAIT_TARGET_SECONDS": "urgent:30,high:60,normal:120",
    }


def past_target(**fields) -> Ticket:
    """A customer who joined the line five minutes ago, staff already alerted."""
    ticket = TicketFactory(queued_at=timezone.now() - timedelta(minutes=5), **fields)
    Ticket.objects.filter(pk=ticket.pk).update(escalation=Rung.STAFF_ALERT)
    return ticket


def test_staff_see_a_customer_pass_their_target_and_why_then_the_alert_clears(
    new_page, staff, agent
):
    AgentFactory(presence=Presence.ONLINE, languages=["en"], skills=["general"])
    page = new_page()
    sign_in(page, staff.email)
    page.goto("/ops/")
    card = page.get_by_test_id("past-target")
    rows = page.get_by_test_id("past-target-tickets").locator("tbody tr")
    expect(page).to_have_title(CALM)
    expect(rows).to_have_text(["No customer is waiting past their target."])
    expect(card).not_to_have_class(re.compile(r"\battention\b"))
    expect(page.locator("#floor-live")).to_have_attribute("data-state", "live")
    page.evaluate("window.__marker = 'same page'")

    # when: a Maltese customer's wait passes its target, and nobody online speaks Maltese
    maltese = past_target(language="mt", subject="Karta imblukkata")

    # then: the next poll raises the alert in the title and lists them, with why
    expect(page).to_have_title("(1) " + CALM, timeout=NEXT_POLL)
    expect(rows).to_have_count(1)
    row = rows.first
    link = row.get_by_role("link", name=f"#{maltese.pk} Karta imblukkata")
    expect(link).to_have_attribute("href", f"/help/tickets/{maltese.pk}/")
    expect(row).to_contain_text("No agent online speaks Maltese (mt).")
    expect(row).to_contain_text("Staff alerted")
    expect(row).to_contain_text(re.compile(r"5 min( \d+ s)? · target 2 min"))
    expect(card).to_have_class(re.compile(r"\battention\b"))
    expect(card.locator("[data-figure=past_target_count]")).to_have_text("1")
    expect(page.locator("#floor-announce")).to_have_text("1 customer is waiting past their target.")

    # and: a keyboard user on that ticket's link stays on it while the rows are redrawn
    link.focus()
    polls = int(page.locator("#floor").get_attribute("data-polls"))
    page.wait_for_function(
        f"Number(document.getElementById('floor').dataset.polls) > {polls}", timeout=NEXT_POLL
    )
    expect(link).to_be_focused()

    # when: a second one passes, then the first customer gives up
    urgent = past_target(priority="urgent", subject="Money gone")
    expect(page).to_have_title("(2) " + CALM, timeout=NEXT_POLL)
    elsewhere(services.ticket_cancel, ticket_id=maltese.pk, caller=maltese.customer)
    expect(page).to_have_title("(1) " + CALM, timeout=NEXT_POLL)
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Money gone")

    # and: an agent takes the other; the alert clears, on the same page
    elsewhere(services.ticket_assign, ticket_id=urgent.pk, agent_id=agent.pk)
    expect(page).to_have_title(CALM, timeout=NEXT_POLL)
    expect(rows).to_have_text(["No customer is waiting past their target."])
    expect(card).not_to_have_class(re.compile(r"\battention\b"))
    expect(page.locator("#floor-announce")).to_have_text(
        "No customer is waiting past their target."
    )
    assert page.evaluate("window.__marker") == "same page"
