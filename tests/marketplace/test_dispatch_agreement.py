"""Every dispatch path agrees with the reference on random markets.

The reference is the rules asked the plainest way: for every queued ticket, in
queue order, every eligible agent best first (``rules.agents_for`` of that one
ticket, no limit, no lane shortcut), and the pass's assignment over all of it.
Each path takes shortcuts of its own (a new ticket stops at its best few agents
and goes first only when fewer tickets waited ahead of it than it has agents,
a freed agent reads the queue from its head, a pass reads whole lanes and applies
E7 per ticket from ``rules.passed``); on a random market each must make exactly
the offers the reference says.
"""

import random
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from agents.models import Agent, Presence
from marketplace.dispatch import matching, rules
from marketplace.models import Offer, OfferStatus
from marketplace.services import dispatch
from tests.factories import AgentFactory, UserFactory
from tests.marketplace.factories import ShiftBookingFactory, ShiftSlotFactory
from tests.tickets.factories import TicketFactory
from tickets.models import Ticket, TicketStatus, queue_order

pytestmark = pytest.mark.django_db

SKILLS = ["general", "payments", "technical"]
LANGUAGES = [["en"], ["pt"], ["en", "pt"]]
SEEDS = range(20)


def random_market(rng: random.Random, now):
    """Agents of every kind and state, and a queue with ties, offers and passes."""
    slot = ShiftSlotFactory(
        starts_at=now - timedelta(minutes=10), ends_at=now + timedelta(minutes=20), headcount=50
    )
    agents = []
    for _ in range(rng.randint(3, 8)):
        agent = AgentFactory(
            user__password=None,
            languages=rng.choice(LANGUAGES),
            skills=rng.sample(SKILLS, rng.randint(1, 2)),
            capacity=rng.randint(1, 3),
            quality_score=rng.choice([60, 75, 90]),
            status=rng.choice(["approved"] * 5 + ["suspended"]),
        )
        Agent.objects.filter(pk=agent.pk).update(
            presence=rng.choice([Presence.ONLINE] * 4 + [Presence.AWAY, Presence.OFFLINE]),
            active_tickets=rng.randint(0, agent.capacity),
            idle_since=now - timedelta(minutes=rng.choice([1, 5, 5, 20])),
        )
        if rng.random() < 0.3:
            ShiftBookingFactory(slot=slot, agent=agent)
        agents.append(agent)
    customer = UserFactory(password=None)
    moments = [now - timedelta(minutes=m) for m in (2, 6, 18)]  # repeated: ties on time
    for _ in range(rng.randint(4, 16)):
        at = rng.choice(moments)
        ticket = TicketFactory(
            customer=customer,
            language=rng.choice(["en", "pt"]),
            category=rng.choice(SKILLS),
            priority=rng.choice(["urgent", "high", "normal", "normal"]),
            status=rng.choice([TicketStatus.QUEUED] * 4 + [TicketStatus.OFFERED]),
            queued_at=at,
            # A few just queued: their own fast path's, not a freed agent's.
            status_changed_at=now if rng.random() < 0.15 else at,
        )
        for agent in rng.sample(agents, rng.randint(0, min(3, len(agents)))):
            status = rng.choice([OfferStatus.DECLINED, OfferStatus.EXPIRED, OfferStatus.WITHDRAWN])
            answered = now - timedelta(seconds=rng.choice([5, 30, 90, 600]))
            Offer.objects.create(
                ticket=ticket,
                agent=agent,
                status=status,
                base_amount=1,
                surge_multiplier=1,
                amount=1,
                currency="EUR",
                created_at=answered - timedelta(seconds=10),
                expires_at=answered,
                answered_at=answered,
            )
    # A few agents answering an offer right now (E6).
    for agent in rng.sample(agents, rng.randint(0, 2)):
        Offer.objects.create(
            ticket=TicketFactory(customer=customer, status=TicketStatus.OFFERED),
            agent=agent,
            base_amount=1,
            surge_multiplier=1,
            amount=1,
            currency="EUR",
            expires_at=now + timedelta(seconds=15),
        )
    return agents


def reference(now) -> tuple[list[int], dict[int, list[int]]]:
    """Every queued ticket in queue order, and each one's eligible agents best first."""
    tickets = list(Ticket.objects.filter(status=TicketStatus.QUEUED).order_by(*queue_order()))
    return [t.pk for t in tickets], {
        t.pk: rules.agents_for(rules.Target.of(t), now) for t in tickets
    }


def new_offers(before: set[int]) -> set[tuple[int, int]]:
    return set(
        Offer.objects.filter(status=OfferStatus.PENDING)
        .exclude(pk__in=before)
        .values_list("ticket_id", "agent_id")
    )


class Rollback(Exception):
    pass


def attempt(check):
    """Run one path and its check, then undo it: every path sees the same market."""
    try:
        with transaction.atomic():
            check()
            raise Rollback
    except Rollback:
        pass


@pytest.mark.parametrize("seed", SEEDS)
def test_every_path_makes_the_offers_the_reference_says(seed, settings):
    settings.HUMANLINE = {**settings.HUMANLINE, "DISPATCH_PULL_AFTER_MS": 1000}
    rng = random.Random(seed)
    now = timezone.now()
    agents = random_market(rng, now)
    order, eligible = reference(now)
    before = set(Offer.objects.values_list("pk", flat=True))
    settled = set(
        Ticket.objects.filter(
            status=TicketStatus.QUEUED, status_changed_at__lt=now - timedelta(seconds=1)
        ).values_list("pk", flat=True)
    )

    def the_pass():
        dispatch.dispatch_pass(now=now)
        assert new_offers(before) == set(matching.match_batch(order, eligible))

    attempt(the_pass)

    for agent in agents:

        def the_pull(agent=agent):
            dispatch.pull(agent_id=agent.pk, now=now)
            first = next((t for t in order if t in settled and agent.pk in eligible[t]), None)
            assert new_offers(before) == ({(first, agent.pk)} if first else set())

        attempt(the_pull)

    for ticket_id in order:
        ticket = Ticket.objects.get(pk=ticket_id)

        def the_new_ticket(ticket=ticket):
            dispatch.offer_new_ticket(ticket_id=ticket.pk, opened=ticket, now=now)
            # Held back when as many tickets waited ahead of it in its lane
            # as it has agents (its best few).
            ahead = (
                Ticket.objects.filter(
                    pk__in=settled, language=ticket.language, category=ticket.category
                )
                .filter(pk__in=order[: order.index(ticket.pk)])
                .count()
            )
            held_back = ahead >= len(eligible[ticket.pk][: dispatch.FAST_PATH_AGENTS])
            best = eligible[ticket.pk][:1]
            expected = set() if held_back else {(ticket.pk, a) for a in best}
            assert new_offers(before) == expected

        attempt(the_new_ticket)
