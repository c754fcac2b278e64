"""Moving tickets through the real services so that pay arises the way it does in production."""

from decimal import Decimal

from agents import presence
from agents.models import Presence
from marketplace.models import Offer
from marketplace.services import dispatch
from tests.tickets.factories import TicketFactory
from tickets import services as ticket_services


def online(agent):
    presence.agent_presence_set(agent_id=agent.pk, status=Presence.ONLINE)
    agent.refresh_from_db()
    return agent


def accept(ticket, agent, *, multiplier: str = "1.00") -> Offer:
    """Offer the queued ticket to the agent at a known surge, and accept it."""
    offer = dispatch.offer_make(
        ticket_id=ticket.pk, agent_id=agent.pk, multiplier=Decimal(multiplier)
    )
    assert offer is not None, "the agent must be online, approved and free"
    return dispatch.offer_accept(offer_id=offer.pk, user=agent.user)


def resolve(ticket, agent):
    return ticket_services.ticket_resolve(ticket_id=ticket.pk, caller=agent.user)


def accepted_and_resolved(agent, *, ticket=None, multiplier: str = "1.00", **ticket_fields):
    ticket = ticket or TicketFactory(**ticket_fields)
    offer = accept(ticket, agent, multiplier=multiplier)
    resolve(ticket, agent)
    return ticket, offer


def reopen(ticket):
    ticket.refresh_from_db()
    return ticket_services.ticket_reopen(ticket_id=ticket.pk, caller=ticket.customer)


def rate(ticket, score: int):
    ticket.refresh_from_db()
    return ticket_services.rating_submit(ticket_id=ticket.pk, caller=ticket.customer, score=score)
