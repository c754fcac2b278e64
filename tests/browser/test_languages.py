"""In a real browser: a customer whose browser speaks French, or Swedish, gets the help
centre in that language, their ticket routed to people who speak it, and the place in
line and the agent joining told in it, live (the script's words come from the
JavaScript catalog)."""

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from agents import presence
from agents.models import Presence, Role
from marketplace.models import Offer, OfferStatus
from marketplace.services import dispatch
from tests.factories import PASSWORD, AgentFactory, UserFactory
from tests.tickets.factories import TicketFactory
from tests.web.conftest import elsewhere
from tickets import services as ticket_services
from tickets.models import Ticket

pytestmark = [pytest.mark.browser]

SPOKEN = {
    "fr-FR": {
        "code": "fr",
        "title": "Centre d'aide",
        "open": "Ouvrir un ticket",
        "opened": "Votre ticket est ouvert. Une personne sera avec vous très bientôt.",
        "second": "Vous êtes en position 2 dans la file",
        "first": "Vous êtes en position 1 dans la file",
        "minutes": r"^\d+ minutes?$",
        "joined": "Fred a rejoint la conversation",
        "helping": "Fred s'occupe de vous.",
    },
    "sv-SE": {
        "code": "sv",
        "title": "Hjälpcenter",
        "open": "Öppna ett ärende",
        "opened": "Ditt ärende är öppnat. En människa är snart hos dig.",
        "second": "Du är nummer 2 i kön",
        "first": "Du är nummer 1 i kön",
        "minutes": r"^\d+ minut(er)?$",
        "joined": "Fred har anslutit till samtalet",
        "helping": "Fred hjälper dig.",
    },
}


def sign_in_by_field(page, email: str) -> None:
    """Sign in whatever the page's language (the fields by their ids)."""
    page.goto("/login/")
    page.locator("#id_username").fill(email)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("main form button[type=submit]").click()
    page.wait_for_load_state()


@pytest.mark.parametrize("locale", SPOKEN)
def test_the_help_centre_speaks_the_browsers_language_live(new_page, locale):
    words = SPOKEN[locale]
    code = words["code"]
    # given: a customer who never chose a language, and someone already in the lane
    camille = UserFactory(
        email=f"camille-{code}@example.org",
        name="Camille",
        role=Role.CUSTOMER,
        language="",
        time_zone="America/Montreal",
    )
    earlier = TicketFactory(
        language=code, category="general", queued_at=timezone.now() - timedelta(seconds=30)
    )
    # Her browser's clock is elsewhere: times follow her profile's zone.
    page = new_page(viewport={"width": 390, "height": 844}, locale=locale, timezone_id="Asia/Tokyo")
    sign_in_by_field(page, camille.email)

    # when: they open the help centre
    page.goto("/help/")

    # then: it is in their browser's language, and the ticket will be in it too
    expect(page.locator("html")).to_have_attribute("lang", code)
    expect(page.get_by_role("heading", level=1)).to_have_text(words["title"])
    expect(page.locator("#id_language")).to_have_value(code)

    # when: they open a ticket
    page.locator("#id_subject").fill("Carte refusée")
    page.locator("#id_category").select_option("general")
    page.locator("#id_body").fill("Deux fois aujourd'hui.")
    page.get_by_role("button", name=words["open"]).click()

    # then: the ticket waits for people who speak it, and the page says where they are
    expect(page.get_by_role("status").filter(has_text=words["opened"])).to_be_visible()
    expect(page.locator("[data-live=true]")).to_have_count(1)
    ticket = Ticket.objects.get(customer=camille)
    assert ticket.language == code
    expect(page.get_by_test_id("queue-place")).to_contain_text(words["second"])

    # when: the customer ahead of them leaves the line (the new place is pushed live)
    elsewhere(ticket_services.ticket_cancel, ticket_id=earlier.pk, caller=earlier.customer)

    # then: the script writes the new place and wait in the same language
    expect(page.locator("#queue-position")).to_have_text("1")
    expect(page.get_by_test_id("queue-place")).to_contain_text(words["first"])
    expect(page.locator("#queue-eta")).to_have_text(re.compile(words["minutes"]))

    # when: Fred, who speaks it, comes online and takes the ticket
    fred = AgentFactory(user__name="Fred Agent", languages=[code, "en"], skills=["general"])
    elsewhere(presence.agent_presence_set, agent_id=fred.pk, status=Presence.ONLINE)
    offer = Offer.objects.get(ticket=ticket, status=OfferStatus.PENDING)
    assert offer.agent_id == fred.pk
    elsewhere(dispatch.offer_accept, offer_id=offer.pk, user=fred.user)

    # then: the page tells them, live, in their language
    expect(page.get_by_test_id("messages")).to_contain_text(words["joined"])
    expect(page.get_by_test_id("ticket-agent")).to_have_text(words["helping"])
    expect(page.get_by_test_id("queue-place")).to_be_hidden()

    # when: Fred writes
    said = elsewhere(
        ticket_services.message_post, ticket_id=ticket.pk, caller=fred.user, body="Oui"
    )

    # then: it arrives live, its time in Camille's zone, as the page writes times
    montreal = said.created_at.astimezone(ZoneInfo("America/Montreal")).strftime("%H:%M")
    expect(page.locator(f'[data-id="{said.pk}"] time')).to_have_text(montreal)
