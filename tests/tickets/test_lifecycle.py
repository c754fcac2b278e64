"""The lifecycle: cancel, assign, requeue, resolve, reopen, close; illegal moves are 409."""

from datetime import timedelta

import pytest
import time_machine
from django.db import IntegrityError
from django.utils import timezone

from config.errors import Conflict, InvalidTransition
from tests.factories import AgentFactory
from tests.tickets.factories import TicketFactory, assigned, resolved
from tickets import services, tasks
from tickets.models import Ticket, TicketEvent, TicketStatus

pytestmark = pytest.mark.django_db


def _statuses(ticket) -> list[tuple[str, str]]:
    return list(TicketEvent.objects.filter(ticket=ticket).values_list("from_status", "to_status"))


def test_customer_cancels_a_waiting_ticket(api, customer):
    ticket = TicketFactory(customer=customer)

    response = api.as_(customer).post(f"/api/v1/tickets/{ticket.pk}/cancel/", {"reason": "Fixed"})

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["queue_position"] is None
    event = TicketEvent.objects.get(ticket=ticket)
    assert (event.from_status, event.to_status, event.actor, event.reason) == (
        "queued",
        "cancelled",
        customer,
        "Fixed",
    )


def test_an_assigned_ticket_cannot_be_cancelled(api, customer, agent):
    ticket = assigned(TicketFactory(customer=customer), agent)

    response = api.as_(customer).post(f"/api/v1/tickets/{ticket.pk}/cancel/")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_transition"


def test_assigning_records_the_agent_and_the_event(
    agent, pushed, django_capture_on_commit_callbacks
):
    ticket = TicketFactory()

    with django_capture_on_commit_callbacks(execute=True):
        services.ticket_assign(ticket_id=ticket.pk, agent_id=agent.pk)

    ticket.refresh_from_db()
    assert ticket.status == "assigned" and ticket.assigned_agent == agent
    assert ticket.assigned_at is not None
    event = TicketEvent.objects.get(ticket=ticket)
    assert (event.to_status, event.agent) == ("assigned", agent)
    types = [event["type"] for ticket_id, event in pushed if ticket_id == ticket.pk]
    assert types == ["ticket.status", "ticket.assigned"]


def test_an_agent_is_never_assigned_beyond_capacity(agent):
    for _ in range(agent.capacity):
        assigned(TicketFactory(), agent)

    with pytest.raises(Conflict):
        assigned(TicketFactory(), agent)


def test_a_suspended_agent_cannot_be_assigned():
    suspended = AgentFactory(status="suspended")

    with pytest.raises(InvalidTransition):
        assigned(TicketFactory(), suspended)


def test_the_database_refuses_an_assigned_ticket_without_an_agent():
    ticket = TicketFactory()

    with pytest.raises(IntegrityError):
        Ticket.objects.filter(pk=ticket.pk).update(status=TicketStatus.ASSIGNED)


def test_a_ticket_cannot_be_assigned_twice(agent, other_agent):
    ticket = assigned(TicketFactory(), agent)

    with pytest.raises(InvalidTransition):
        assigned(ticket, other_agent)
    ticket.refresh_from_db()
    assert ticket.assigned_agent == agent


def test_requeue_keeps_the_place_in_line_and_calls_dispatch(
    agent, queued_hook, django_capture_on_commit_callbacks
):
    queued_at = timezone.now() - timedelta(minutes=10)
    ticket = TicketFactory(queued_at=queued_at)
    assigned(ticket, agent)

    with django_capture_on_commit_callbacks(execute=True):
        services.ticket_requeue(ticket_id=ticket.pk, reason="Agent disconnected.")

    ticket.refresh_from_db()
    assert ticket.status == "queued" and ticket.assigned_agent is None
    assert ticket.queued_at == queued_at
    assert queued_hook == [ticket.pk]
    assert TicketEvent.objects.filter(ticket=ticket).last().agent == agent


def test_the_assigned_agent_resolves(api, agent, customer):
    ticket = assigned(TicketFactory(customer=customer), agent)

    response = api.as_(agent).post(f"/api/v1/tickets/{ticket.pk}/resolve/")

    assert response.status_code == 200
    assert response.json()["status"] == "resolved"
    assert response.json()["resolved_at"] is not None


def test_the_customer_cannot_resolve(api, agent, customer):
    ticket = assigned(TicketFactory(customer=customer), agent)

    response = api.as_(customer).post(f"/api/v1/tickets/{ticket.pk}/resolve/")

    assert response.status_code == 403
    ticket.refresh_from_db()
    assert ticket.status == "assigned"


def test_resolving_twice_is_a_409(api, agent, customer):
    ticket = resolved(TicketFactory(customer=customer), agent)

    response = api.as_(agent).post(f"/api/v1/tickets/{ticket.pk}/resolve/")

    assert response.status_code == 409


def test_staff_see_every_ticket_but_only_its_agent_resolves(api, staff, agent):
    ticket = assigned(TicketFactory(), agent)

    assert api.as_(staff).post(f"/api/v1/tickets/{ticket.pk}/resolve/").status_code == 403


def test_requeueing_a_queued_ticket_is_refused():
    ticket = TicketFactory()

    with pytest.raises(InvalidTransition):
        services.ticket_requeue(ticket_id=ticket.pk, reason="no")


def test_customer_reopens_within_the_window_and_goes_back_in_line(
    api, agent, customer, queued_hook, django_capture_on_commit_callbacks
):
    ticket = resolved(TicketFactory(customer=customer), agent)

    with (
        time_machine.travel(timezone.now() + timedelta(hours=71)),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = api.as_(customer).post(
            f"/api/v1/tickets/{ticket.pk}/reopen/", {"reason": "Still broken"}
        )

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "queued" and body["agent"] is None
    assert body["reopen_count"] == 1 and body["queue_position"] == 1
    assert queued_hook == [ticket.pk]
    assert _statuses(ticket)[-1] == ("resolved", "queued")


def test_reopening_after_the_window_is_a_409(api, agent, customer):
    ticket = resolved(TicketFactory(customer=customer), agent)

    with time_machine.travel(timezone.now() + timedelta(hours=72, minutes=1)):
        response = api.as_(customer).post(f"/api/v1/tickets/{ticket.pk}/reopen/")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "reopen_window_passed"


def test_the_reopen_window_is_configurable(api, agent, customer, settings):
    settings.HUMANLINE = {**settings.HUMANLINE, "TICKET_REOPEN_WINDOW_HOURS": 1}
    ticket = resolved(TicketFactory(customer=customer), agent)

    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        response = api.as_(customer).post(f"/api/v1/tickets/{ticket.pk}/reopen/")

    assert response.status_code == 409


def test_reopening_a_ticket_that_is_not_resolved_is_a_409(api, customer):
    ticket = TicketFactory(customer=customer)

    response = api.as_(customer).post(f"/api/v1/tickets/{ticket.pk}/reopen/")

    assert response.status_code == 409


def test_the_periodic_task_closes_resolved_tickets_after_the_window(agent):
    old = resolved(TicketFactory(), agent)
    with time_machine.travel(timezone.now() + timedelta(hours=24)):
        recent = resolved(TicketFactory(), AgentFactory())

    with time_machine.travel(timezone.now() + timedelta(hours=73)):
        tasks.close_resolved_tickets.delay()

    old.refresh_from_db()
    recent.refresh_from_db()
    assert old.status == "closed" and old.closed_at is not None
    assert recent.status == "resolved"
    assert _statuses(old)[-1] == ("resolved", "closed")
    assert TicketEvent.objects.filter(ticket=old).last().actor is None


def test_a_closed_ticket_cannot_be_reopened(api, agent, customer):
    ticket = resolved(TicketFactory(customer=customer), agent)
    with time_machine.travel(timezone.now() + timedelta(hours=80)):
        services.tickets_close_after_reopen_window()

    response = api.as_(customer).post(f"/api/v1/tickets/{ticket.pk}/reopen/")

    assert response.status_code == 409


@pytest.mark.parametrize(
    ("status", "action"),
    [
        ("cancelled", "cancel"),
        ("cancelled", "reopen"),
        ("resolved", "cancel"),
        ("closed", "cancel"),
    ],
)
def test_illegal_transitions_are_409(api, customer, agent, status, action):
    ticket = TicketFactory(customer=customer)
    if status == "cancelled":
        services.ticket_cancel(ticket_id=ticket.pk, caller=customer)
    else:
        resolved(ticket, agent)
        if status == "closed":
            with time_machine.travel(timezone.now() + timedelta(hours=80)):
                services.tickets_close_after_reopen_window()

    response = api.as_(customer).post(f"/api/v1/tickets/{ticket.pk}/{action}/")

    assert response.status_code == 409
    ticket.refresh_from_db()
    assert ticket.status == status


def test_every_change_is_an_event_with_who_when_from_to_why(customer, agent):
    ticket = TicketFactory(customer=customer)
    assigned(ticket, agent)
    services.ticket_resolve(ticket_id=ticket.pk, caller=agent.user)
    services.ticket_reopen(ticket_id=ticket.pk, caller=customer, reason="Not fixed")

    assert _statuses(ticket) == [
        ("queued", "assigned"),
        ("assigned", "resolved"),
        ("resolved", "queued"),
    ]
    last = TicketEvent.objects.filter(ticket=ticket).last()
    assert (last.actor, last.agent, last.reason) == (customer, agent, "Not fixed")
