"""The help centre tells a customer whose ticket waited past its target why nobody has
taken it yet, and lets them continue in a language the pool serves now, with or
without JavaScript (``/help/tickets/<id>/`` and ``/help/tickets/<id>/language/``)."""

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.html import escape

from agents import presence
from agents.models import Presence
from tests.factories import AgentFactory
from tests.tickets.factories import TicketFactory, assigned
from tickets.models import EventKind, Rung, Ticket, TicketEvent, TicketStatus

pytestmark = pytest.mark.django_db

LONG_AGO = timedelta(minutes=5)


@pytest.fixture
def english_agent(db):
    """Edna, online and free: English only, payments and general."""
    agent = AgentFactory(
        user__name="Edna English", languages=["en"], skills=["payments", "general"]
    )
    presence.agent_presence_set(agent_id=agent.pk, status=Presence.ONLINE)
    return agent


def told(ticket: Ticket) -> Ticket:
    """The ticket reached the rung where its customer is told why it waits."""
    Ticket.objects.filter(pk=ticket.pk).update(
        escalation=Rung.CUSTOMER_NOTICE, queued_at=timezone.now() - LONG_AGO
    )
    ticket.refresh_from_db()
    return ticket


def maltese_ticket(customer) -> Ticket:
    return TicketFactory(customer=customer, language="mt", category="payments")


def reason_box(page: str) -> str:
    match = re.search(r'<div class="waiting-reason".*?</div>', page, re.S)
    assert match, "the customer's page has a place for the waiting reason"
    return match.group(0)


def language_buttons(page: str) -> list[tuple[str, str]]:
    return re.findall(r'<button type="submit" name="language" value="(\w+)"[^>]*>([^<]*)<', page)


def open_page(client, person, ticket) -> str:
    client.force_login(getattr(person, "user", person))
    response = client.get(f"/help/tickets/{ticket.pk}/")
    assert response.status_code == 200
    return response.content.decode()


# --- what the page says --------------------------------------------------------------


def test_nobody_speaking_the_language_is_said_with_a_button_per_language_served(
    client, customer, english_agent
):
    # given: a Maltese ticket past its target, and only an English agent online
    ticket = told(maltese_ticket(customer))

    # when
    page = open_page(client, customer, ticket)

    # then: the reason, written for the customer, near the place in line
    box = reason_box(page)
    assert 'data-code="language_unserved"' in box
    assert (
        "Nobody who speaks Maltese is online right now."
        " You can continue in English and keep your place in line."
    ) in box
    assert 'role="status" aria-live="polite"' in box
    assert page.index('id="queue-place"') < page.index('id="waiting-reason"')
    assert language_buttons(page) == [("en", "Continue in English")]
    assert f'action="/help/tickets/{ticket.pk}/language/"' in box
    # no estimated wait while nobody online can take it; the place in line stays
    assert '<span id="queue-eta-clause" hidden>' in page
    assert 'You are number <strong id="queue-position">1</strong> in line' in page
    assert 'data-testid="ticket-language" title="mt">Maltese<' in page
    names = re.search(r'<script id="language-names" type="application/json">(.*?)</script>', page)
    assert json.loads(names.group(1))["en"] == "English"


def test_a_ticket_within_its_target_says_nothing_of_why_it_waits(client, customer, english_agent):
    ticket = maltese_ticket(customer)  # waiting, but not yet past its target

    page = open_page(client, customer, ticket)

    box = reason_box(page)
    assert 'data-code=""' in box
    assert re.search(r'<p id="waiting-reason-message"[^>]*></p>', box)
    assert language_buttons(page) == []
    assert '<span id="queue-eta-clause">' in page  # the estimated wait is shown


def test_another_reason_is_said_without_language_buttons(client, customer):
    # given: past its target with nobody online at all
    ticket = told(TicketFactory(customer=customer, category="payments"))

    page = open_page(client, customer, ticket)

    box = reason_box(page)
    assert 'data-code="no_agent_online"' in box
    assert "No agent is online right now. You keep your place in line." in box
    assert language_buttons(page) == []
    assert re.search(r'<form[^>]*class="language-choices"[^>]*hidden', box)


def test_when_every_agent_who_could_help_is_busy_the_estimate_stays(
    client, customer, english_agent
):
    for _ in range(english_agent.capacity):  # Edna, online, has no free seat
        assigned(TicketFactory(category="payments"), english_agent)
    ticket = told(TicketFactory(customer=customer, category="payments"))

    page = open_page(client, customer, ticket)

    assert 'data-code="all_busy"' in reason_box(page)
    assert "Every agent who can help is busy with another customer right now." in page
    assert '<span id="queue-eta-clause">' in page


def test_only_the_customer_is_told_on_the_page(client, customer, other_customer, staff):
    ticket = told(maltese_ticket(customer))

    page = open_page(client, staff, ticket)
    assert 'id="waiting-reason"' not in page
    assert language_buttons(page) == []

    client.force_login(other_customer)
    assert client.get(f"/help/tickets/{ticket.pk}/").status_code == 404


# --- continuing in another language without JavaScript ---------------------------------


def test_the_language_form_switches_keeps_the_place_and_redirects(client, customer, english_agent):
    # given: two tickets already waiting in English, one before and one after this one
    now = timezone.now()
    TicketFactory(category="payments", queued_at=now - timedelta(minutes=10))
    TicketFactory(category="payments", queued_at=now - timedelta(minutes=1))
    ticket = told(maltese_ticket(customer))
    queued_at = ticket.queued_at
    client.force_login(customer)

    # when
    response = client.post(f"/help/tickets/{ticket.pk}/language/", {"language": "en"})

    # then: the ticket waits in English, in the place its wait earns
    assert response.status_code == 302
    assert response["Location"] == f"/help/tickets/{ticket.pk}/"
    ticket.refresh_from_db()
    assert (ticket.language, ticket.status, ticket.queued_at) == ("en", "queued", queued_at)
    event = TicketEvent.objects.filter(ticket=ticket).latest("id")
    assert (event.kind, event.actor_id) == (EventKind.LANGUAGE, customer.pk)

    # ... and the page says so, with its place in line and no more language buttons
    page = client.get(response["Location"]).content.decode()
    assert "You continue in English. Your place in line is kept." in page
    assert 'data-testid="ticket-language" title="en">English<' in page
    assert 'You are number <strong id="queue-position">2</strong> in line' in page
    assert language_buttons(page) == []
    assert "Nobody who speaks Maltese" not in page
    assert 'data-code="next_pass"' in reason_box(page)  # Edna is free: it is offered next


@pytest.mark.parametrize(
    ("language", "said"),
    [
        ("xx", "'xx' is not an ISO 639-1 language code."),
        ("", "'' is not an ISO 639-1 language code."),
        ("mt", "The ticket is in 'mt' already."),
    ],
)
def test_a_bad_language_is_a_message_and_changes_nothing(client, customer, language, said):
    ticket = told(maltese_ticket(customer))
    client.force_login(customer)

    response = client.post(
        f"/help/tickets/{ticket.pk}/language/", {"language": language}, follow=True
    )

    assert response.status_code == 200
    assert response.redirect_chain == [(f"/help/tickets/{ticket.pk}/", 302)]
    assert escape(said) in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.language == "mt"


def test_a_ticket_being_offered_keeps_its_language_and_says_why(client, customer):
    ticket = told(maltese_ticket(customer))
    Ticket.objects.filter(pk=ticket.pk).update(status=TicketStatus.OFFERED)
    client.force_login(customer)

    response = client.post(f"/help/tickets/{ticket.pk}/language/", {"language": "en"}, follow=True)

    assert response.status_code == 200
    assert "not while it is offered" in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.language == "mt"


def test_only_the_tickets_customer_may_switch_its_language(client, customer, other_customer, staff):
    ticket = told(maltese_ticket(customer))
    url = f"/help/tickets/{ticket.pk}/language/"

    client.force_login(other_customer)
    assert client.post(url, {"language": "en"}).status_code == 404

    client.force_login(staff)  # staff may see the ticket, not speak for its customer
    page = client.post(url, {"language": "en"}, follow=True).content.decode()
    assert escape("Only the ticket's customer may change its language.") in page

    client.logout()
    assert client.post(url, {"language": "en"}).status_code == 302  # to the sign-in page
    ticket.refresh_from_db()
    assert ticket.language == "mt"
