"""Flooding the queue: one customer holds OPEN_TICKETS_PER_CUSTOMER open tickets at most."""

import threading

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.tickets.factories import new_ticket_body
from tickets import services
from tickets.models import Ticket

pytestmark = pytest.mark.django_db

BURST = 12


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


@pytest.mark.django_db(transaction=True)  # real commits from real threads
def test_a_burst_of_opens_at_the_same_moment_stays_within_the_cap(customer):
    # An attacker sends their tickets all at once rather than one by one: each
    # request's count ran before the others' inserts committed, and all passed.
    token = Token.objects.create(user=customer).key
    barrier = threading.Barrier(BURST)
    codes: list = []

    def open_one():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        try:
            barrier.wait(timeout=10)
            codes.append(client.post("/api/v1/tickets/", new_ticket_body(), format="json"))
        finally:
            connection.close()

    threads = [threading.Thread(target=open_one) for _ in range(BURST)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(response.status_code for response in codes) == [201] * 3 + [429] * (BURST - 3)
    assert Ticket.objects.filter(customer=customer).count() == 3
