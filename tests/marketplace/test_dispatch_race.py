"""Many threads accept, decline, expire and dispatch the same offers at once (PostgreSQL).

The invariants must hold after the race whatever the interleaving: at most one
pending offer per ticket and per agent, one assignee per ticket, no agent above
capacity, and the ticket's status agreeing with its offers.
"""

import random
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Count, Q
from django.utils import timezone

from agents import presence
from agents.models import Agent, Presence
from config.errors import DomainError
from marketplace.models import Offer, OfferStatus
from marketplace.services import dispatch
from tests.factories import AgentFactory
from tests.tickets.factories import TicketFactory
from tickets.models import Ticket, TicketStatus

pytestmark = [pytest.mark.django_db(transaction=True)]
pytestmark = [
    *pytestmark,
    pytest.mark.postgres("threads racing on row locks: SQLite serialises every write"),
]


def _run_together(jobs):
    barrier = threading.Barrier(len(jobs))
    errors, lost = [], []

    def wrap(job):
        try:
            barrier.wait()
            job()
        except (DomainError, Offer.DoesNotExist):
            lost.append(1)  # a lost race is an expected answer (409 / 404)
        except Exception as exc:  # anything else is a bug
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=wrap, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return len(lost)


def _assert_invariants():
    pending = Offer.objects.filter(status=OfferStatus.PENDING)
    assert not pending.values("ticket").annotate(n=Count("id")).filter(n__gt=1).exists()
    assert not pending.values("agent").annotate(n=Count("id")).filter(n__gt=1).exists()
    for agent in Agent.objects.all():
        assigned = Ticket.objects.filter(assigned_agent=agent, status=TicketStatus.ASSIGNED)
        assert agent.active_tickets == assigned.count() <= agent.capacity
    for ticket in Ticket.objects.all():
        pending_offers = pending.filter(ticket=ticket).count()
        accepted = Offer.objects.filter(ticket=ticket, status=OfferStatus.ACCEPTED)
        if ticket.status == TicketStatus.OFFERED:
            assert pending_offers == 1
        else:
            assert pending_offers == 0
        if ticket.status == TicketStatus.ASSIGNED:
            assert accepted.count() == 1
            assert accepted.get().agent_id == ticket.assigned_agent_id
        else:
            assert ticket.assigned_agent_id is None
            assert accepted.count() == 0


def test_accepts_declines_expiries_and_dispatches_racing_keep_every_invariant():
    assert connection.vendor == "postgresql"
    rng = random.Random(20261121)
    agents = [
        AgentFactory(capacity=rng.choice([1, 2]), languages=["en"], skills=["general"])
        for _ in range(8)
    ]
    for agent in agents:
        presence.agent_presence_set(agent_id=agent.pk, status=Presence.ONLINE)
    for _ in range(14):
        TicketFactory(category="general")

    lost_races = 0
    for _round in range(6):
        dispatch.dispatch_pass()
        jobs = []
        for offer in Offer.objects.filter(status=OfferStatus.PENDING).select_related("agent__user"):
            user = offer.agent.user
            jobs += [
                lambda o=offer.pk, u=user: dispatch.offer_accept(offer_id=o, user=u),
                lambda o=offer.pk, u=user: dispatch.offer_accept(offer_id=o, user=u),
                lambda o=offer.pk, u=user: dispatch.offer_decline(offer_id=o, user=u),
            ]
        later = timezone.now() + timedelta(seconds=30)
        jobs += [
            lambda later=later: dispatch.offers_expire_overdue(now=later),
            lambda later=later: dispatch.offers_expire_overdue(now=later),
            dispatch.dispatch_pass,
            dispatch.dispatch_pass,
        ]
        rng.shuffle(jobs)
        lost_races += _run_together(jobs)
        _assert_invariants()
        # Agents set away by missed offers come back for the next round.
        for agent in Agent.objects.filter(presence=Presence.AWAY):
            presence.agent_presence_set(agent_id=agent.pk, status=Presence.ONLINE)

    # The race was real: answers collided (409s) and every kind of ending happened.
    assert lost_races > 0
    assert Ticket.objects.filter(status=TicketStatus.ASSIGNED).exists()
    assert Offer.objects.filter(~Q(status=OfferStatus.PENDING)).count() >= 8


def test_two_agents_racing_for_capacity_never_exceed_it():
    agent = AgentFactory(capacity=1, languages=["en"], skills=["general"])
    presence.agent_presence_set(agent_id=agent.pk, status=Presence.ONLINE)
    tickets = [TicketFactory(category="general") for _ in range(4)]
    from tickets import services as ticket_services

    _run_together(
        [
            lambda t=ticket.pk: ticket_services.ticket_assign(ticket_id=t, agent_id=agent.pk)
            for ticket in tickets
        ]
    )
    agent.refresh_from_db()
    assert agent.active_tickets == 1
    assert Ticket.objects.filter(status=TicketStatus.ASSIGNED).count() == 1
