"""The help centre pages, the Django admin, and the whole flow in a real browser."""

import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from playwright.sync_api import expect

from tests.conftest import sign_in
from tests.tickets.factories import HANDOFF, TicketFactory, assigned, resolved
from tickets import services
from tickets.models import IdempotencyKey, Rating, Ticket

pytestmark = pytest.mark.django_db


def test_a_customer_opens_a_ticket_from_the_help_centre(client, customer):
    client.force_login(customer)

    response = client.post(
        "/help/", {"subject": "Card declined", "category": "payments", "body": "Twice."}
    )

    ticket = Ticket.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/help/tickets/{ticket.pk}/"
    page = client.get(response["Location"]).content.decode()
    assert 'You are number <strong id="queue-position">1</strong> in line' in page
    assert 'about <strong id="queue-eta">3 minutes</strong>' in page


def test_the_help_centre_form_submitted_twice_opens_one_ticket(client, customer):
    """The form carries an idempotency key, one per rendering: a double click, or
    a retry after an answer lost to a failing server, finds the first ticket."""
    client.force_login(customer)
    page = client.get("/help/").content.decode()
    key = re.search(r'name="idempotency_key" value="([0-9a-f-]{36})"', page).group(1)
    assert key not in client.get("/help/").content.decode()  # each rendering its own
    form = {"idempotency_key": key, "subject": "Card declined", "category": "payments"}

    first = client.post("/help/", {**form, "body": "Twice."})
    again = client.post("/help/", {**form, "body": "Twice."})

    ticket = Ticket.objects.get()
    assert first["Location"] == again["Location"] == f"/help/tickets/{ticket.pk}/"
    assert IdempotencyKey.objects.get(ticket=ticket).key == f"help-centre:{key}"


def test_the_help_centre_reports_bad_input(client, customer):
    client.force_login(customer)

    response = client.post("/help/", {"subject": "", "category": "payments", "body": "x"})

    assert response.status_code == 400
    assert not Ticket.objects.exists()


def test_the_customer_nav_links_to_the_help_centre(client, customer):
    client.force_login(customer)

    assert 'href="/help/"' in client.get("/").content.decode()


def test_a_ticket_page_is_a_404_for_outsiders(
    client, customer, other_customer, agent, other_agent, staff
):
    ticket = assigned(TicketFactory(customer=customer), agent)
    url = f"/help/tickets/{ticket.pk}/"

    for person, expected in [
        (customer, 200),
        (agent.user, 200),
        (staff, 200),
        (other_customer, 404),
        (other_agent.user, 404),
    ]:
        client.force_login(person)
        assert client.get(url).status_code == expected, person
        assert client.post(url + "cancel/").status_code in (302 if expected == 200 else 404,)


def test_the_agent_sees_the_handoff_before_the_conversation(client, customer, agent):
    ticket = TicketFactory(
        customer=customer,
        handoff_transcript=HANDOFF["transcript"],
        handoff_summary=HANDOFF["summary"],
        handoff_intent=HANDOFF["intent"],
    )
    assigned(ticket, agent)
    client.force_login(agent.user)

    page = client.get(f"/help/tickets/{ticket.pk}/").content.decode()

    assert page.index(HANDOFF["summary"]) < page.index("Conversation")
    assert "I want a person" in page


def test_rating_from_the_page(client, customer, agent):
    ticket = resolved(TicketFactory(customer=customer), agent)
    client.force_login(customer)

    response = client.post(
        f"/help/tickets/{ticket.pk}/rate/", {"score": "4", "comment": "ok"}, follow=True
    )

    assert Rating.objects.get().score == 4
    assert "You rated this help 4/5" in response.content.decode()


def test_the_django_admin_lists_and_searches_tickets(client, staff, customer, agent):
    staff.is_superuser = True
    staff.save()
    ticket = assigned(TicketFactory(customer=customer, subject="Refund please"), agent)
    services.message_post(ticket_id=ticket.pk, caller=customer, body="hello")
    client.force_login(staff)

    listing = client.get("/django-admin/tickets/ticket/?q=refund&status__exact=assigned")
    detail = client.get(f"/django-admin/tickets/ticket/{ticket.pk}/change/")

    assert listing.status_code == detail.status_code == 200
    assert "Refund please" in listing.content.decode()
    assert "hello" in detail.content.decode()
    assert "assigned" in detail.content.decode()


def _elsewhere(service, **kwargs):
    """Run a service on another thread, as a worker would.

    Playwright's sync API keeps an event loop on the test's thread, where the
    after-commit push (``async_to_sync``) may not run.
    """

    def call():
        try:
            return service(**kwargs)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(call).result(timeout=30)


@pytest.mark.browser
def test_a_customer_follows_the_ticket_live_talks_with_an_agent_and_rates(
    new_page, customer, agent
):
    # given: someone is already waiting in the same line
    TicketFactory(category="payments")
    page = new_page()
    sign_in(page, customer.email)

    # when: the customer opens a ticket
    page.goto("/help/")
    page.get_by_label("What do you need help with?").fill("Card charged twice")
    page.get_by_label("Topic").select_option("payments")
    page.get_by_label("Tell us more").fill("Two charges of 20 EUR for one order.")
    page.get_by_role("button", name="Open a ticket").click()

    # then: they see their place in line
    expect(page.get_by_test_id("queue-place")).to_contain_text("You are number 2 in line")
    expect(page.locator("[data-live=true]")).to_have_count(1)
    ticket = Ticket.objects.get(subject="Card charged twice")

    # when: the one ahead leaves the line, the place updates live
    ahead = Ticket.objects.exclude(pk=ticket.pk).get()
    _elsewhere(services.ticket_cancel, ticket_id=ahead.pk, caller=ahead.customer)
    expect(page.get_by_test_id("queue-place")).to_contain_text("You are number 1 in line")

    # when: an agent is assigned and opens the ticket
    _elsewhere(services.ticket_assign, ticket_id=ticket.pk, agent_id=agent.pk)
    expect(page.get_by_test_id("ticket-status")).to_have_text("Assigned")
    expect(page.get_by_test_id("ticket-agent")).to_contain_text("Aisha is helping you")
    agent_page = new_page()
    sign_in(agent_page, agent.user.email)
    agent_page.goto(f"/help/tickets/{ticket.pk}/")
    expect(agent_page.locator("[data-live=true]")).to_have_count(1)

    # ... they talk, live, both ways
    agent_page.get_by_label("Your message").fill("Hi Carla, I can see both charges.")
    agent_page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_test_id("messages")).to_contain_text("I can see both charges.")
    page.get_by_label("Your message").fill("Thank you!")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(agent_page.get_by_test_id("messages")).to_contain_text("Thank you!")
    assert list(ticket.messages.values_list("author_role", flat=True)) == ["agent", "customer"]

    # when: the agent resolves, the customer's page offers the rating
    agent_page.get_by_role("button", name="Mark as resolved").click()
    expect(page.get_by_test_id("ticket-status")).to_have_text("Resolved")
    page.get_by_label("5").check()
    page.get_by_label("Anything to add? (optional)").fill("Fast and kind.")
    page.get_by_role("button", name="Send rating").click()

    # then
    expect(page.get_by_test_id("rating")).to_have_text(re.compile("You rated this help 5/5"))
    rating = Rating.objects.get(ticket=ticket)
    assert (rating.score, rating.comment, rating.agent_id) == (5, "Fast and kind.", agent.pk)
