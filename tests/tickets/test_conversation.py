"""The conversation over the API: messages, the resync cursor, who may write when."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from tests.tickets.factories import HANDOFF, TicketFactory, assigned, resolved
from tickets import services
from tickets.models import Message

pytestmark = pytest.mark.django_db


def test_customer_and_assigned_agent_exchange_messages(api, customer, agent):
    ticket = assigned(TicketFactory(customer=customer), agent)

    from_customer = api.as_(customer).post(
        f"/api/v1/tickets/{ticket.pk}/messages/", {"body": "Hello?"}
    )
    from_agent = api.as_(agent).post(f"/api/v1/tickets/{ticket.pk}/messages/", {"body": "Hi!"})

    assert from_customer.status_code == from_agent.status_code == 201
    listing = api.as_(customer).get(f"/api/v1/tickets/{ticket.pk}/messages/").json()["results"]
    assert [(m["author_role"], m["body"]) for m in listing] == [
        ("customer", "Hello?"),
        ("agent", "Hi!"),
    ]
    assert listing[1]["author"]["name"] == "Aisha Agent"


def test_the_customer_may_write_while_waiting(api, customer):
    ticket = TicketFactory(customer=customer)

    response = api.as_(customer).post(
        f"/api/v1/tickets/{ticket.pk}/messages/", {"body": "More details"}
    )

    assert response.status_code == 201


def test_messages_since_a_message_id_return_only_newer_ones(api, customer, agent):
    ticket = assigned(TicketFactory(customer=customer), agent)
    first = services.message_post(ticket_id=ticket.pk, caller=customer, body="one")
    services.message_post(ticket_id=ticket.pk, caller=agent.user, body="two")
    services.message_post(ticket_id=ticket.pk, caller=customer, body="three")

    response = api.as_(customer).get(f"/api/v1/tickets/{ticket.pk}/messages/?since={first.pk}")

    assert [m["body"] for m in response.json()["results"]] == ["two", "three"]


def test_messages_since_a_time_return_only_later_ones(api, customer, agent):
    ticket = assigned(TicketFactory(customer=customer), agent)
    start = timezone.now()
    with time_machine.travel(start - timedelta(minutes=5)):
        services.message_post(ticket_id=ticket.pk, caller=customer, body="before")
    with time_machine.travel(start + timedelta(minutes=5)):
        services.message_post(ticket_id=ticket.pk, caller=customer, body="after")

    response = api.as_(agent).get(
        f"/api/v1/tickets/{ticket.pk}/messages/", {"since": start.isoformat()}
    )

    assert [m["body"] for m in response.json()["results"]] == ["after"]


def test_a_bad_since_is_a_400(api, customer):
    ticket = TicketFactory(customer=customer)

    response = api.as_(customer).get(f"/api/v1/tickets/{ticket.pk}/messages/?since=yesterday")

    assert response.status_code == 400
    assert "since" in response.json()["error"]["fields"]


def test_staff_read_but_do_not_write(api, staff, customer):
    ticket = TicketFactory(customer=customer)
    services.message_post(ticket_id=ticket.pk, caller=customer, body="hi")

    assert api.as_(staff).get(f"/api/v1/tickets/{ticket.pk}/messages/").json()["count"] == 1
    response = api.as_(staff).post(f"/api/v1/tickets/{ticket.pk}/messages/", {"body": "x"})
    assert response.status_code == 403


@pytest.mark.parametrize("body", ["", "   ", "x" * 5001])
def test_empty_or_oversized_messages_are_a_400(api, customer, body):
    ticket = TicketFactory(customer=customer)

    response = api.as_(customer).post(f"/api/v1/tickets/{ticket.pk}/messages/", {"body": body})

    assert response.status_code == 400
    assert not Message.objects.exists()


def test_the_conversation_is_closed_after_resolution(api, customer, agent):
    ticket = resolved(TicketFactory(customer=customer), agent)

    for who in (customer, agent):
        response = api.as_(who).post(f"/api/v1/tickets/{ticket.pk}/messages/", {"body": "x"})
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "conversation_closed"


def test_a_posted_message_is_pushed_after_commit(
    customer, agent, pushed, django_capture_on_commit_callbacks
):
    ticket = assigned(TicketFactory(customer=customer), agent)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        message = services.message_post(ticket_id=ticket.pk, caller=customer, body="Hello")
    assert pushed == []
    for callback in callbacks:
        callback()

    assert pushed == [
        (
            ticket.pk,
            {
                "type": "ticket.message",
                "ticket_id": ticket.pk,
                "message": {
                    "id": message.pk,
                    "ticket_id": ticket.pk,
                    "author": {"id": customer.pk, "name": "Carla Customer"},
                    "author_role": "customer",
                    "body": "Hello",
                    "created_at": message.created_at.isoformat().replace("+00:00", "Z"),
                },
            },
        )
    ]


def test_the_assigned_agent_sees_the_handoff_first(api, customer, agent):
    ticket = TicketFactory(
        customer=customer,
        handoff_transcript=HANDOFF["transcript"],
        handoff_summary=HANDOFF["summary"],
        handoff_intent=HANDOFF["intent"],
    )
    assigned(ticket, agent)

    body = api.as_(agent).get(f"/api/v1/tickets/{ticket.pk}/").json()

    assert body["handoff"]["summary"] == HANDOFF["summary"]
    assert len(body["handoff"]["transcript"]) == 3
    assert list(body).index("handoff") < list(body).index("language")
