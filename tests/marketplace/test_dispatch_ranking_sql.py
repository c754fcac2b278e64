"""The database's ranking (``dispatch.ranked_in_database``, used by the fast path)
agrees with the rules' Python form (``rules.rank`` over ``dispatch._candidates``)
on random markets: eligibility E1–E7, order R1–R6, ties included."""

import random
from datetime import timedelta
from decimal import Decimal
from time import monotonic

import pytest
from django.utils import timezone

from agents.models import Agent, AgentStatus, Presence
from marketplace.dispatch import rules
from marketplace.models import Offer, OfferStatus
from marketplace.services import dispatch
from tests.factories import AgentFactory, UserFactory
from tests.marketplace.factories import ShiftBookingFactory, ShiftSlotFactory
from tests.tickets.factories import TicketFactory

pytestmark = pytest.mark.django_db

SKILLS = ["general", "payments", "technical"]


def _slot_now(now):
    start = now.replace(second=0, microsecond=0)
    start -= timedelta(minutes=start.minute % 30)
    return ShiftSlotFactory(starts_at=start, ends_at=start + timedelta(minutes=30), headcount=50)


def _market(rng: random.Random, now):
    """Agents with random standing, languages, skills, load, offers, bookings and quality.

    Idle times and quality scores come from short lists so that agents tie often.
    """
    slot = _slot_now(now)
    customer = UserFactory(password=None)
    moments = [now - timedelta(minutes=m) for m in (5, 15, 45)]
    agents = []
    for _ in range(30):
        capacity = rng.randint(1, 3)
        agent = AgentFactory(
            user__password=None,  # no password hashing: many agents per test
            status=rng.choice([AgentStatus.APPROVED] * 9 + [AgentStatus.SUSPENDED]),
            languages=rng.choice([["en"], ["pt"], ["en", "pt"]]),
            skills=rng.sample(SKILLS, rng.randint(1, 2)),
            capacity=capacity,
        )
        Agent.objects.filter(pk=agent.pk).update(
            presence=rng.choice([Presence.ONLINE] * 9 + [Presence.AWAY]),
            active_tickets=rng.randint(0, capacity - 1) if rng.random() < 0.85 else capacity,
            idle_since=rng.choice([*moments, None]),
            presence_changed_at=rng.choice(moments),
        )
        if rng.random() < 0.3:
            ShiftBookingFactory(slot=slot, agent=agent)
        dispatch._quality_cache[agent.pk] = (
            monotonic() + 600,
            rng.choice([None, Decimal(40), Decimal(60), Decimal(80)]),
        )
        agents.append(agent)
    # E6: a few agents hold a pending offer of another ticket (one offer per ticket).
    for agent in rng.sample(agents, 3):
        Offer.objects.create(
            ticket=TicketFactory(status="offered", customer=customer),
            agent=agent,
            base_amount=1,
            surge_multiplier=1,
            amount=1,
            currency="EUR",
            expires_at=now + timedelta(seconds=30),
        )
    return agents


@pytest.mark.parametrize("seed", range(12))
def test_the_database_ranks_as_the_rules_do(seed):
    rng = random.Random(seed)
    now = timezone.now()
    agents = _market(rng, now)
    ticket = TicketFactory(
        language=rng.choice(["en", "pt"]),
        category=rng.choice(SKILLS),
        priority=rng.choice(["normal", "high"]),
    )
    # E7: the ticket was offered to some agents before.
    for agent in rng.sample(agents, 3):
        Offer.objects.create(
            ticket=ticket,
            agent=agent,
            status=rng.choice([OfferStatus.DECLINED, OfferStatus.EXPIRED]),
            base_amount=1,
            surge_multiplier=1,
            amount=1,
            currency="EUR",
            created_at=now - timedelta(minutes=1),
            expires_at=now - timedelta(seconds=30),
        )
    offered_to = frozenset(
        Offer.objects.filter(ticket=ticket, status__in=dispatch.ENDED).values_list(
            "agent_id", flat=True
        )
    )
    waiting = rules.WaitingTicket(
        ticket_id=ticket.pk,
        language=ticket.language,
        category=ticket.category,
        priority=ticket.priority,
        queued_at=ticket.queued_at,
    )
    ranked = rules.rank(
        rules.WaitingTicket(**{**waiting.__dict__, "offered_to": offered_to}),
        dispatch._candidates(languages={ticket.language}, now=now),
    )
    expected = [c.agent_id for c in ranked]
    assert len(expected) >= 3  # the market leaves several agents to order

    everyone = dispatch.ranked_in_database(ticket=waiting, now=now, limit=len(agents) + 1)
    assert everyone.exact
    assert [c.agent_id for c in everyone.candidates] == expected

    # Cut at every length: the database must pick the same best k agents (R1–R4
    # in SQL) unless agents tied on R1–R4 straddle the cut, where only R5 decides.
    def before_quality(candidate):
        return rules.agent_order_key(waiting, candidate)[:4]

    for k in range(1, len(expected)):
        if before_quality(ranked[k - 1]) == before_quality(ranked[k]):
            continue
        head = dispatch.ranked_in_database(ticket=waiting, now=now, limit=k).candidates
        assert [c.agent_id for c in head] == expected[:k], f"cut at {k}"


def test_agents_tied_past_the_limit_send_the_fast_path_to_the_full_ranking():
    """More agents alike on R1–R4 than the limit: quality (R5) decides, and the best
    is the last by id."""
    now = timezone.now()
    same = now - timedelta(minutes=10)
    agents = [
        AgentFactory(user__password=None, languages=["en"], skills=["general"])
        for _ in range(dispatch.FAST_PATH_AGENTS + 3)
    ]
    Agent.objects.update(presence=Presence.ONLINE, idle_since=same, presence_changed_at=same)
    for n, agent in enumerate(agents):
        dispatch._quality_cache[agent.pk] = (monotonic() + 600, Decimal(10 + n))
    ticket = TicketFactory(category="general")
    waiting = rules.WaitingTicket(
        ticket_id=ticket.pk,
        language="en",
        category="general",
        priority=ticket.priority,
        queued_at=ticket.queued_at,
    )

    head = dispatch.ranked_in_database(ticket=waiting, now=now, limit=dispatch.FAST_PATH_AGENTS + 1)
    assert not head.exact  # the SQL limit cut the tie group: quality was not seen for all
    assert agents[-1].pk not in [c.agent_id for c in head.candidates]

    assert dispatch.dispatch_ticket(ticket_id=ticket.pk, now=now) is True
    assert Offer.objects.get(ticket=ticket, status=OfferStatus.PENDING).agent_id == agents[-1].pk


@pytest.mark.parametrize("seed", range(3))
def test_the_same_statement_counts_the_tickets_ahead_in_dispatch_order(seed):
    """Priority first, then time in line, then id; only queued tickets of the language."""
    rng = random.Random(seed)
    now = timezone.now()
    AgentFactory(user__password=None, languages=["en"], skills=["general"])
    Agent.objects.update(presence=Presence.ONLINE)
    customer = UserFactory(password=None)
    moments = [now - timedelta(minutes=m) for m in (3, 9, 27)]  # repeated: ties on time
    tickets = [
        TicketFactory(
            customer=customer,
            category="general",
            language=rng.choice(["en", "en", "pt"]),
            priority=rng.choice(["urgent", "high", "normal"]),
            status=rng.choice(["queued", "queued", "queued", "offered"]),
            queued_at=rng.choice(moments),
        )
        for _ in range(14)
    ]

    def waiting(ticket):
        return rules.WaitingTicket(
            ticket_id=ticket.pk,
            language=ticket.language,
            category=ticket.category,
            priority=ticket.priority,
            queued_at=ticket.queued_at,
        )

    for ticket in (t for t in tickets if t.language == "en"):
        expected = sum(
            1
            for other in tickets
            if other.pk != ticket.pk
            and other.status == "queued"
            and other.language == "en"
            and rules.ticket_order_key(waiting(other)) < rules.ticket_order_key(waiting(ticket))
        )
        found = dispatch.ranked_in_database(ticket=waiting(ticket), now=now, limit=2)
        assert found.candidates, "the agent is eligible, so a row carries the count"
        assert found.ahead == expected, f"ticket {ticket.pk}"
