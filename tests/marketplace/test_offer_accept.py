"""Accepting an offer: the checks, the writes (assignment, audit row, streak) and the
pushes, and nothing written when a check fails."""

from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import Agent, AgentStatus
from config.errors import Conflict, InvalidTransition
from marketplace.models import Offer, OfferStatus
from marketplace.services import dispatch
from tests.factories import AgentFactory
from tests.marketplace.test_dispatch import go_online, offer_for
from tests.tickets.factories import TicketFactory
from tickets.models import Ticket, TicketEvent, TicketStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def offered():
    """Paula, online, with a pending offer of Maria's ticket (which has a hand-off)."""
    paula = AgentFactory(user__name="Paula Pay", languages=["en"], skills=["payments"])
    go_online(paula)
    ticket = TicketFactory(
        category="payments",
        customer__name="Maria Lopes",
        handoff_summary="Double charge",
        handoff_transcript=[{"role": "user", "text": "Charged twice", "at": None}],
    )
    dispatch.dispatch_pass()
    return paula, ticket, offer_for(ticket)


def test_an_accept_assigns_audits_and_resets_the_streak(
    offered, pushes, django_capture_on_commit_callbacks, monkeypatch
):
    from tickets import events as ticket_events

    paula, ticket, offer = offered
    Agent.objects.filter(pk=paula.pk).update(expired_streak=2)
    told = []
    monkeypatch.setattr(ticket_events, "push_many", told.extend)

    user = paula.user  # loaded before counting

    with django_capture_on_commit_callbacks() as after_commit:
        accepted = dispatch.offer_accept(offer_id=offer.pk, user=user)
    for callback in after_commit:
        callback()

    assert (accepted.pk, accepted.status) == (offer.pk, OfferStatus.ACCEPTED)
    offer.refresh_from_db()
    assert offer.status == OfferStatus.ACCEPTED and offer.answered_at is not None
    ticket.refresh_from_db()
    assert (ticket.status, ticket.assigned_agent_id) == (TicketStatus.ASSIGNED, paula.pk)
    assert ticket.assigned_at is not None and ticket.assigned_at >= offer.created_at
    paula.refresh_from_db()
    assert (paula.active_tickets, paula.expired_streak) == (1, 0)
    event = TicketEvent.objects.filter(ticket=ticket).latest("id")
    assert (event.from_status, event.to_status) == (TicketStatus.OFFERED, TicketStatus.ASSIGNED)
    assert (event.actor_id, event.agent_id) == (paula.user_id, paula.pk)
    assert event.reason == f"Accepted offer {offer.pk}."
    # The agent: the ticket, its pay and the hand-off; the customer: the agent's first name.
    (agent_id, assigned), *_ = [p for p in pushes if p[1]["type"] == "ticket.assigned"]
    assert agent_id == paula.pk
    assert assigned["pay"] == {"amount": f"{offer.amount:.2f}", "currency": offer.currency}
    assert assigned["ticket"]["customer"] == {"name": "Maria"}
    assert assigned["ticket"]["summary"] == "Double charge"
    assert assigned["ticket"]["handoff_transcript"][0]["text"] == "Charged twice"
    customer_side = {event["type"]: event for _, event in told}
    assert customer_side["ticket.status"]["status"] == TicketStatus.ASSIGNED
    assert customer_side["ticket.assigned"]["agent"] == {"id": paula.pk, "name": "Paula"}


def _suspended(paula, ticket, offer):
    Agent.objects.filter(pk=paula.pk).update(status=AgentStatus.SUSPENDED)


def _full(paula, ticket, offer):
    Agent.objects.filter(pk=paula.pk).update(capacity=1, active_tickets=1)


def _cancelled(paula, ticket, offer):
    Ticket.objects.filter(pk=ticket.pk).update(status=TicketStatus.CANCELLED)


def _withdrawn(paula, ticket, offer):
    Offer.objects.filter(pk=offer.pk).update(status=OfferStatus.WITHDRAWN)


@pytest.mark.parametrize(
    ("change", "error", "code"),
    [
        (_withdrawn, InvalidTransition, "offer_withdrawn"),
        (_cancelled, InvalidTransition, "invalid_transition"),
        (_suspended, InvalidTransition, "agent_not_available"),
        (_full, Conflict, "agent_at_capacity"),
    ],
    ids=["offer withdrawn", "ticket cancelled", "agent suspended", "agent at capacity"],
)
def test_a_refused_accept_says_why_and_writes_nothing(offered, change, error, code):
    paula, ticket, offer = offered
    change(paula, ticket, offer)
    events_before = TicketEvent.objects.filter(ticket=ticket).count()
    agent_before = Agent.objects.values("active_tickets", "expired_streak").get(pk=paula.pk)

    with pytest.raises(error) as refused:
        dispatch.offer_accept(offer_id=offer.pk, user=paula.user)

    assert refused.value.code == code
    offer_now = Offer.objects.get(pk=offer.pk)
    assert offer_now.answered_at is None and offer_now.status != OfferStatus.ACCEPTED
    ticket_now = Ticket.objects.get(pk=ticket.pk)
    assert ticket_now.assigned_agent_id is None and ticket_now.status != TicketStatus.ASSIGNED
    assert TicketEvent.objects.filter(ticket=ticket).count() == events_before
    assert Agent.objects.values("active_tickets", "expired_streak").get(pk=paula.pk) == (
        agent_before
    )


def test_someone_elses_offer_does_not_exist_for_them(offered):
    _, _, offer = offered
    other = AgentFactory(languages=["en"], skills=["payments"])

    with pytest.raises(Offer.DoesNotExist):
        dispatch.offer_accept(offer_id=offer.pk, user=other.user)
    with pytest.raises(Offer.DoesNotExist):
        dispatch.offer_accept(offer_id=offer.pk + 1000, user=other.user)
    assert Offer.objects.get(pk=offer.pk).status == OfferStatus.PENDING


@pytest.mark.parametrize(
    ("queued_ago", "pulled"),
    [(None, False), (timedelta(seconds=5), True), (timedelta(milliseconds=50), False)],
    ids=["queue empty", "a ticket waits", "a ticket in its own fast path"],
)
def test_after_an_accept_the_agent_takes_a_ticket_that_waited_for_them(
    offered, queued_ago, pulled, monkeypatch, django_capture_on_commit_callbacks
):
    paula, _, offer = offered
    waiting = None
    if queued_ago is not None:
        # Queued: Paula's pending offer kept it from her.
        waiting = TicketFactory(category="payments", status_changed_at=timezone.now() - queued_ago)
    asked = []
    monkeypatch.setattr(dispatch, "pass_request", lambda **_: asked.append(1))

    with django_capture_on_commit_callbacks(execute=True):
        dispatch.offer_accept(offer_id=offer.pk, user=paula.user)

    # Freed, Paula takes the waiting ticket herself: no pass is asked for.
    assert asked == []
    if waiting is not None:
        assert Offer.objects.filter(ticket=waiting, agent=paula).exists() is pulled
