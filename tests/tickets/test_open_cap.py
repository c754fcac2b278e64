"""Flooding the queue: one customer holds OPEN_TICKETS_PER_CUSTOMER open tickets at most."""

import pytest

from tests.tickets.factories import new_ticket_body
from tickets import services
from tickets.models import Ticket

pytestmark = pytest.mark.django_db


def _open(api, customer, **headers):
    return api.as_(customer).post("/api/v1/tickets/", new_ticket_body(), **headers)


def test_a_fourth_open_ticket_is_a_429_and_nothing_is_written(api, customer):
    codes = [_open(api, customer).status_code for _ in range(4)]

    assert codes == [201, 201, 201, 429]
    refused = _open(api, customer)
    assert refused.json()["error"]["code"] == "too_many_open_tickets"
    assert Ticket.objects.filter(customer=customer).count() == 3


def test_the_cap_holds_with_an_idempotency_key_too(api, customer):
    for i in range(3):
        _open(api, customer, HTTP_IDEMPOTENCY_KEY=f"k{i}")

    assert _open(api, customer, HTTP_IDEMPOTENCY_KEY="k3").status_code == 429
    assert Ticket.objects.filter(customer=customer).count() == 3


def test_a_ticket_that_ends_makes_room(api, customer):
    tickets = [_open(api, customer).json()["id"] for _ in range(3)]
    services.ticket_cancel(ticket_id=tickets[0], caller=customer)

    assert _open(api, customer).status_code == 201


def test_another_customer_is_not_held_back(api, customer, other_customer):
    for _ in range(3):
        _open(api, customer)

    assert _open(api, other_customer).status_code == 201


def test_the_help_centre_says_why(client, customer):
    client.force_login(customer)
    for i in range(3):
        client.post("/help/", {"subject": f"S{i}", "body": "Help", "category": "general"})

    page = client.post("/help/", {"subject": "S4", "body": "Help", "category": "general"})

    assert "already have 3 open tickets" in page.content.decode()
    assert Ticket.objects.filter(customer=customer).count() == 3
