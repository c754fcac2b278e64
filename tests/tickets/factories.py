"""factory_boy factories and small helpers for tickets."""

import factory
from django.utils import timezone

from tests.factories import UserFactory
from tickets import services
from tickets.models import Priority, Ticket, TicketStatus


class TicketFactory(factory.django.DjangoModelFactory):
    """A queued ticket.  Move it on with the services (``assigned``, ``resolved`` below)."""

    class Meta:
        model = Ticket

    customer = factory.SubFactory(UserFactory)
    subject = factory.Sequence(lambda n: f"My card payment {n} failed")
    body = "I tried to pay twice and it was declined both times."
    language = "en"
    category = "general"
    priority = Priority.NORMAL
    status = TicketStatus.QUEUED
    queued_at = factory.LazyFunction(timezone.now)
    created_at = factory.LazyFunction(timezone.now)


def assigned(ticket: Ticket, agent) -> Ticket:
    return services.ticket_assign(ticket_id=ticket.pk, agent_id=agent.pk)


def resolved(ticket: Ticket, agent) -> Ticket:
    assigned(ticket, agent)
    return services.ticket_resolve(ticket_id=ticket.pk, caller=agent.user)


HANDOFF = {
    "transcript": [
        {"role": "user", "text": "My card was charged twice", "at": "2025-01-01T10:00:00Z"},
        {"role": "bot", "text": "I can see two payments of 20 EUR.", "at": "2025-01-01T10:00:05Z"},
        {"role": "user", "text": "I want a person", "at": "2025-01-01T10:00:20Z"},
    ],
    "summary": "Double charge of 20 EUR on 1 January; wants a refund of one.",
    "intent": "refund_double_charge",
}


def new_ticket_body(**overrides) -> dict:
    body = {
        "subject": "Charged twice",
        "body": "My card was charged twice for one order.",
        "category": "payments",
    }
    body.update(overrides)
    return body
