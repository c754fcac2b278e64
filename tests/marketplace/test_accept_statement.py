"""Accepting an offer in one statement (PostgreSQL): the same checks, writes and pushes as
the ORM's transaction, and nothing written when a check fails.  On SQLite the same tests
check the ORM's version."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
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
pytestmark = [pytestmark, pytest.mark.postgres("dispatch core: reviewed in the dispatch rewrite")]


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
    dispatch.dispatch()
    return paula, ticket, offer_for(ticket)


def _statements(queries) -> list[str]:
    # Savepoints (the test's transaction) and the one-time PREPARE of a connection aside.
    return [
        q["sql"] for q in queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE", "PREPARE"))
    ]


def test_an_accept_is_one_statement_that_assigns_audits_and_resets_the_streak(
    offered, pushes, django_capture_on_commit_callbacks, monkeypatch
):
    from tickets import events as ticket_events

    paula, ticket, offer = offered
    Agent.objects.filter(pk=paula.pk).update(expired_streak=2)
    told = []
    monkeypatch.setattr(ticket_events, "push_many", told.extend)

    user = paula.user  # loaded before counting

    with django_capture_on_commit_callbacks() as after_commit:
        with CaptureQueriesContext(connection) as queries:
            accepted = dispatch.offer_accept(offer_id=offer.pk, user=user)
        if connection.vendor == "postgresql":  # SQLite (the embedded default) runs the ORM's
            assert len(_statements(queries.captured_queries)) == 1
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
def test_the_accept_reads_whether_tickets_wait_and_the_agent_pulls_only_then(
    offered, queued_ago, pulled, monkeypatch, django_capture_on_commit_callbacks
):
    from marketplace import events

    paula, _, offer = offered
    waiting = None
    if queued_ago is not None:
        # Queued: Paula's pending offer kept it from her.
        waiting = TicketFactory(category="payments", status_changed_at=timezone.now() - queued_ago)
    asked = []
    monkeypatch.setattr(events, "dispatch_soon", lambda: asked.append(1))
    user = paula.user

    with django_capture_on_commit_callbacks() as after_commit:
        dispatch.offer_accept(offer_id=offer.pk, user=user)
    with CaptureQueriesContext(connection) as queries:
        for callback in after_commit:
            callback()

    # Freed, Paula takes the waiting ticket herself: no batch pass is asked for.
    assert asked == []
    if waiting is not None:
        assert Offer.objects.filter(ticket=waiting, agent=paula).exists() is pulled
    # Whether tickets wait is read with the accept, not after it (the lane's
    # places are pushed eagerly in tests).
    assert not [q for q in _statements(queries.captured_queries) if 'SELECT 1 AS "a"' in q]
