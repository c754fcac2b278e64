"""In a real browser, two contexts: an agent's console and a customer's help centre.

The agent goes online, a customer opens a ticket, the offer pops up on the
console with its pay and a countdown, the agent accepts, the two talk live,
the agent resolves and tags feedback, the customer rates.
"""

import re

import pytest
from playwright.sync_api import expect

from agents.models import Presence
from marketplace.models import Offer, OfferStatus
from tests.conftest import sign_in
from tests.factories import UserFactory
from tests.web.conftest import elsewhere, screenshot
from tickets import services
from tickets.models import Feedback, Rating, Ticket, TicketStatus

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("short_lived_db_connections")]


def open_ticket(*, customer, subject: str, category: str = "payments") -> Ticket:
    return services.ticket_open(
        caller=customer,
        new=services.NewTicket(subject=subject, body="Please help.", category=category),
    ).ticket


def test_an_offer_pops_up_is_accepted_and_the_two_talk_until_rated(new_page, agent, customer):
    # given: the agent on the console, online
    console = new_page()
    sign_in(console, agent.user.email)
    errors = []
    console.on("pageerror", lambda error: errors.append(error))
    console.goto("/agent/")
    expect(console.get_by_role("heading", name=re.compile("Hi Aisha"))).to_be_visible()
    expect(console.locator("#console-live-text")).to_have_text("Live")
    console.get_by_role("button", name="Online", exact=True).click()
    expect(console.get_by_test_id("presence")).to_have_text("Online")
    agent.refresh_from_db()
    assert agent.presence == Presence.ONLINE

    # when: a customer opens a ticket in the help centre (another browser context)
    help_page = new_page()
    sign_in(help_page, customer.email)
    help_page.goto("/help/")
    help_page.get_by_label("What do you need help with?").fill("Card charged twice")
    help_page.get_by_label("Topic").select_option("payments")
    help_page.get_by_label("Tell us more").fill("Two charges of 20 EUR for one order.")
    help_page.get_by_role("button", name="Open a ticket").click()
    ticket = Ticket.objects.get(subject="Card charged twice")

    # then: the offer pops up at once with the pay and a live countdown, a sound and a title cue
    offer_card = console.get_by_test_id("offer")
    expect(offer_card).to_be_visible()
    expect(offer_card).to_contain_text("Card charged twice")
    offer = Offer.objects.get(ticket=ticket)
    expect(offer_card.get_by_test_id("offer-pay")).to_have_text(f"€{offer.amount}")
    expect(console).to_have_title("(1) New offer · Humanline")
    assert int(console.locator("#console").get_attribute("data-beeps")) >= 1
    first = int(offer_card.get_by_test_id("countdown").inner_text())
    assert 0 < first <= 15
    expect(offer_card.get_by_test_id("countdown")).not_to_have_text(str(first))

    # when: the agent accepts
    offer_card.get_by_role("button", name="Accept").click()

    # then: the conversation opens on the console, and the customer sees the agent join
    pane = console.get_by_test_id("pane")
    expect(pane.get_by_role("heading", name="Card charged twice")).to_be_visible()
    expect(console.get_by_test_id("active-tickets")).to_contain_text("Card charged twice")
    expect(console).to_have_title(re.compile(r"^Agent console"))
    assert Offer.objects.get(ticket=ticket).status == OfferStatus.ACCEPTED
    expect(help_page.get_by_test_id("messages")).to_contain_text("Aisha joined the conversation")
    expect(help_page.get_by_test_id("ticket-agent")).to_have_text("Aisha is helping you.")
    expect(help_page.get_by_test_id("queue-place")).to_be_hidden()

    # ... and they talk, live, both ways
    expect(pane.locator("[data-live=true]")).to_have_count(0)  # the pane itself is the root
    expect(console.locator("#pane[data-live=true]")).to_have_count(1)
    pane.get_by_label("Your message").fill("Hi Carla, I can see both charges.")
    pane.get_by_role("button", name="Send", exact=True).click()
    expect(help_page.get_by_test_id("messages")).to_contain_text("I can see both charges.")
    help_page.get_by_label("Your message").fill("Thank you! Can you refund one?")
    help_page.get_by_label("Your message").press("Enter")
    expect(pane.get_by_test_id("messages")).to_contain_text("Can you refund one?")

    # when: a second customer needs help, the console offers it beside the conversation
    other = UserFactory(email="dora@example.org", name="Dora Customer")
    elsewhere(open_ticket, customer=other, subject="Refund not arrived")
    second = console.get_by_test_id("offer").filter(has_text="Refund not arrived")
    expect(second).to_contain_text("Refund not arrived")
    expect(second).not_to_have_class(re.compile("arriving"))
    screenshot(console, "agent-console")
    second.get_by_role("button", name="Decline").click()
    expect(second).to_have_count(0)
    assert Offer.objects.get(ticket__subject="Refund not arrived").status == OfferStatus.DECLINED

    # when: the connection drops, the console reconnects and resyncs without a reload
    console.evaluate("window.__marker = 'same page'")
    console.evaluate("document.getElementById('console').reconnect()")
    expect(console.locator("#console-live-text")).to_have_text("Live")
    expect(console.get_by_test_id("active-tickets")).to_contain_text("Card charged twice")
    assert console.evaluate("window.__marker") == "same page"

    # when: the agent resolves and tags product feedback
    pane.get_by_role("button", name="Mark as resolved").click()
    expect(console.get_by_test_id("pane-status")).to_have_text("Resolved")
    expect(console.get_by_test_id("active-tickets")).not_to_contain_text("Card charged twice")
    pane = console.get_by_test_id("pane")
    pane.get_by_label("Product area").fill("card-payments")
    pane.get_by_label("Kind").select_option("bug")
    pane.get_by_label("What did you learn?").fill(
        "Double charge when the 3-D Secure page times out."
    )
    pane.get_by_role("button", name="Send feedback").click()
    expect(pane).to_contain_text("the product team will see it")
    assert Feedback.objects.get(ticket=ticket).area == "card-payments"

    # then: the customer rates
    expect(help_page.get_by_test_id("ticket-status")).to_have_text("Resolved")
    help_page.get_by_label("5", exact=True).check()
    help_page.get_by_label("Anything to add? (optional)").fill("Fast and kind.")
    help_page.get_by_role("button", name="Send rating").click()
    expect(help_page.get_by_test_id("rating")).to_have_text(re.compile("You rated this help 5/5"))
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.RESOLVED
    assert Rating.objects.get(ticket=ticket).score == 5
    assert errors == []
