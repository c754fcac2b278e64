"""The console's resolve in a real browser, when the socket is quicker than the answer."""

import pytest
from playwright.sync_api import expect

from marketplace.models import LedgerEntry
from tests.conftest import sign_in
from tests.factories import AgentFactory
from tests.tickets.factories import TicketFactory
from tests.web.conftest import elsewhere
from tickets import services

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("short_lived_db_connections")]


def test_the_earnings_card_is_redrawn_when_the_push_swapped_the_pane_before_the_answer(
    new_page,
):
    """The resolve's push reaches the socket and redraws the pane (and the form that
    posted) before the POST's answer arrives: the card must still be redrawn."""
    agent = AgentFactory(user__name="Rui Resolve")
    ticket = TicketFactory(category="general", subject="Parcel never came")
    elsewhere(services.ticket_assign, ticket_id=ticket.pk, agent_id=agent.pk)
    page = new_page()
    sign_in(page, agent.user.email)
    page.goto(f"/agent/?ticket={ticket.pk}")
    expect(page.locator("#console-live-text")).to_have_text("Live")
    expect(page.get_by_test_id("pane-status")).to_have_text("Assigned")
    expect(page.get_by_test_id("week-total")).to_have_text("€0.00")

    def answer_after_the_push(route):
        answer = route.fetch()  # the resolve runs and commits; its push goes out
        # The push has swapped the pane in: the form that posted is gone.
        expect(page.get_by_test_id("pane-status")).to_have_text("Resolved")
        route.fulfill(response=answer)

    page.route("**/resolve/", answer_after_the_push)
    page.get_by_role("button", name="Mark as resolved").click()

    expect(page.get_by_test_id("pane-status")).to_have_text("Resolved")
    paid = LedgerEntry.objects.get(ticket=ticket, agent=agent)
    expect(page.get_by_test_id("week-total")).to_have_text(f"€{paid.amount}")
