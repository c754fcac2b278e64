"""In a real browser: a customer whose ticket waits past its target is told why, live, and
continues in a language the pool serves, keeping their place in line."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from agents import presence
from agents.models import Presence
from marketplace.models import Offer, OfferStatus
from marketplace.services import dispatch, escalation
from tests.conftest import sign_in
from tests.factories import AgentFactory
from tests.tickets.factories import TicketFactory
from tests.web.conftest import elsewhere
from tickets.models import Rung

pytestmark = [pytest.mark.browser]

PHONE = {"width": 390, "height": 844}


def test_the_customer_is_told_why_they_wait_and_continues_in_english(new_page, customer):
    # given: an English agent online and free, and a Maltese ticket just opened
    edna = AgentFactory(user__name="Edna English", languages=["en"], skills=["payments", "general"])
    elsewhere(presence.agent_presence_set, agent_id=edna.pk, status=Presence.ONLINE)
    ticket = TicketFactory(customer=customer, language="mt", category="payments")
    queued_at = ticket.queued_at
    page = new_page(viewport=PHONE)
    sign_in(page, customer.email)
    page.goto(f"/help/tickets/{ticket.pk}/")
    expect(page.locator("[data-live=true]")).to_have_count(1)
    expect(page.get_by_test_id("ticket-language")).to_have_text("Maltese")
    reason = page.locator("#waiting-reason-message")
    expect(reason).to_have_text("")
    expect(page.get_by_test_id("queue-place")).to_contain_text(
        "You are number 1 in line — about 3 minutes"
    )

    # when: the ticket waits past its target and the sweep climbs the ladder
    elsewhere(escalation.escalate_overdue, now=timezone.now() + timedelta(seconds=121))

    # then: the page says why, live, and offers the language the pool serves
    expect(reason).to_have_text(
        "Nobody who speaks Maltese is online right now."
        " You can continue in English and keep your place in line."
    )
    expect(page.get_by_role("status").filter(has_text="Nobody who speaks Maltese")).to_be_visible()
    expect(page.get_by_test_id("queue-place")).to_contain_text(
        "You are number 1 in line.", use_inner_text=True
    )
    expect(page.locator("#queue-eta-clause")).to_be_hidden()  # no estimate while nobody can
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    # when: they continue in English (through the API: the page stays where it is)
    page.evaluate("window.stayed = true")
    page.get_by_role("button", name="Continue in English").click()

    # then: the ticket waits in English, keeps its place, and Edna is offered it at once
    expect(page.get_by_test_id("ticket-language")).to_have_text("English")
    expect(reason).to_have_text("An agent is looking at your request now.")
    expect(page.get_by_test_id("queue-place")).to_contain_text("You are number 1 in line")
    expect(page.get_by_role("button", name="Continue in English")).to_have_count(0)
    expect(reason).to_be_focused()  # the button pressed is gone; the news has the focus
    ticket.refresh_from_db()
    assert (ticket.language, ticket.queued_at) == ("en", queued_at)
    assert ticket.escalation == Rung.CUSTOMER_NOTICE  # the ladder is not climbed again
    assert page.evaluate("window.stayed") is True
    offer = Offer.objects.get(ticket=ticket, status=OfferStatus.PENDING)
    assert offer.agent_id == edna.pk

    # when: Edna passes on it, the page says so, read afresh as the ticket changes
    elsewhere(dispatch.offer_decline, offer_id=offer.pk, user=edna.user, reason="busy")
    expect(reason).to_have_text(
        "The agents online could not take your request yet; it goes to them again shortly."
    )

    # when: Fred comes online, he is offered it and takes it
    fred = AgentFactory(user__name="Fred French", languages=["fr", "en"], skills=["payments"])
    elsewhere(presence.agent_presence_set, agent_id=fred.pk, status=Presence.ONLINE)
    expect(reason).to_have_text("An agent is looking at your request now.")
    offer = Offer.objects.get(ticket=ticket, status=OfferStatus.PENDING)
    assert offer.agent_id == fred.pk
    elsewhere(dispatch.offer_accept, offer_id=offer.pk, user=fred.user)

    # then: the reason gives way to him
    expect(page.get_by_test_id("messages")).to_contain_text("Fred joined the conversation")
    expect(reason).to_have_text("")
    expect(page.get_by_test_id("queue-place")).to_be_hidden()
