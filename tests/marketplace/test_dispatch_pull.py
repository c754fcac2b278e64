"""The pull: an agent freed by an accept takes the head of the queue they can serve
(``dispatch.pull_for_agent``), in ticket order, under rules E1–E7, leaving tickets
just queued to their own fast path."""

import random
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.models import Agent, AgentStatus, Presence
from marketplace.dispatch import rules
from marketplace.models import Offer, OfferStatus
from marketplace.services import dispatch
from marketplace.services import pricing as pricing_services
from tests.factories import AgentFactory, UserFactory
from tests.marketplace.test_dispatch import go_online, offer_for
from tests.marketplace.test_dispatch_fast_path import _offer_row, while_locked
from tests.tickets.factories import TicketFactory
from tickets.models import Ticket, TicketEvent, TicketStatus

pytestmark = pytest.mark.django_db
pytestmark = [pytestmark, pytest.mark.postgres("dispatch core: reviewed in the dispatch rewrite")]


def _waiting(minutes: float, **fields) -> Ticket:
    """A ticket queued ``minutes`` ago (long past its own fast path)."""
    at = timezone.now() - timedelta(minutes=minutes)
    return TicketFactory(queued_at=at, status_changed_at=at, **fields)


@pytest.fixture
def tech(db):
    """Tomás, an online English technical specialist, busy with a pending offer."""
    agent = AgentFactory(user__name="Tomás Tech", languages=["en"], skills=["technical"])
    go_online(agent)
    _offer_row(TicketFactory(status=TicketStatus.OFFERED, category="technical"), agent)
    return agent


def test_a_freed_agent_takes_the_first_ticket_in_queue_order_they_can_serve(
    paula, tech, pushes, django_capture_on_commit_callbacks
):
    _waiting(20, category="payments", language="pt")  # E3: Paula speaks no Portuguese
    _waiting(15, category="technical")  # E4: a specialist is online (busy, but online)
    older = _waiting(10, category="payments")
    high = _waiting(5, category="payments", priority="high")
    _waiting(1, category="payments", priority="urgent", status=TicketStatus.OFFERED)

    with django_capture_on_commit_callbacks(execute=True):
        assert dispatch.pull_for_agent(agent_id=paula.pk) is True

    offer = offer_for(high)  # priority before waiting time
    assert offer.agent == paula
    assert not Offer.objects.filter(ticket=older).exists()
    high.refresh_from_db()
    assert high.status == TicketStatus.OFFERED
    event = TicketEvent.objects.filter(ticket=high).latest("id")
    assert (event.from_status, event.to_status) == (TicketStatus.QUEUED, TicketStatus.OFFERED)
    created = [m for agent_id, m in pushes if agent_id == paula.pk and m["type"] == "offer.created"]
    assert [m["offer"]["id"] for m in created] == [offer.pk]

    # Answered, she takes the next: the older payments ticket, not the technical one.
    Offer.objects.filter(pk=offer.pk).update(status=OfferStatus.DECLINED)
    assert dispatch.pull_for_agent(agent_id=paula.pk) is True
    assert offer_for(older).agent == paula


def test_with_no_specialist_online_a_generalist_takes_the_ticket_as_the_fallback(paula):
    technical = _waiting(15, category="technical")
    assert dispatch.pull_for_agent(agent_id=paula.pk) is True
    assert offer_for(technical).agent == paula


def test_a_ticket_the_agent_was_offered_before_is_not_pulled_again(paula):
    declined = _waiting(10, category="payments")
    _offer_row(declined, paula, OfferStatus.DECLINED)
    later = _waiting(5, category="payments")

    assert dispatch.pull_for_agent(agent_id=paula.pk) is True

    assert offer_for(later).agent == paula
    assert not Offer.objects.filter(ticket=declined, status=OfferStatus.PENDING).exists()


def test_a_ticket_just_queued_is_left_to_its_own_fast_path(paula, settings):
    settings.HUMANLINE = {**settings.HUMANLINE, "DISPATCH_PULL_AFTER_MS": 200}
    at = timezone.now() - timedelta(milliseconds=50)
    fresh = TicketFactory(category="payments", queued_at=at, status_changed_at=at)

    assert dispatch.pull_for_agent(agent_id=paula.pk) is True  # nothing of Paula's to take

    assert not Offer.objects.filter(ticket=fresh).exists()
    settings.HUMANLINE = {**settings.HUMANLINE, "DISPATCH_PULL_AFTER_MS": 20}
    assert dispatch.pull_for_agent(agent_id=paula.pk) is True
    assert offer_for(fresh).agent == paula


def _full(agent):
    Agent.objects.filter(pk=agent.pk).update(active_tickets=F("capacity"))


def _holding_an_offer(agent):
    _offer_row(TicketFactory(status=TicketStatus.OFFERED), agent)


def _away(agent):
    Agent.objects.filter(pk=agent.pk).update(presence=Presence.AWAY)


def _suspended(agent):
    Agent.objects.filter(pk=agent.pk).update(status=AgentStatus.SUSPENDED)


@pytest.mark.parametrize(
    "change",
    [_full, _holding_an_offer, _away, _suspended],
    ids=["E5 at capacity", "E6 a pending offer", "E2 away", "E1 suspended"],
)
def test_an_agent_who_is_not_free_pulls_nothing(paula, change):
    ticket = _waiting(10, category="payments")
    change(paula)

    with CaptureQueriesContext(connection) as queries:
        assert dispatch.pull_for_agent(agent_id=paula.pk) is True  # nothing theirs: no pass

    # Seen by the pull's own statement: no offer is even attempted.
    assert not [q for q in queries.captured_queries if "INSERT" in q["sql"].upper()]
    assert len([q for q in queries.captured_queries if "PREPARE" not in q["sql"]]) == 1
    assert not Offer.objects.filter(ticket=ticket, agent=paula).exists()
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.QUEUED


def test_the_surge_in_force_is_fixed_into_the_pulled_offer(paula):
    # One seat free against three waiting: demand outruns supply.
    Agent.objects.filter(pk=paula.pk).update(capacity=2, active_tickets=1)
    tickets = [_waiting(10 - n, category="payments") for n in range(3)]
    surge = pricing_services.surge_now()
    assert surge.multiplier > 1

    assert dispatch.pull_for_agent(agent_id=paula.pk) is True

    offer = offer_for(tickets[0])
    assert offer.surge_multiplier == surge.multiplier
    assert offer.amount == (offer.base_amount * surge.multiplier).quantize(Decimal("0.01"))


def test_the_freed_agent_pulls_instead_of_asking_for_a_batch_pass(paula, monkeypatch, settings):
    from marketplace import events

    asked = []
    monkeypatch.setattr(events, "dispatch_soon", lambda: asked.append(1))
    first, second = _waiting(10, category="payments"), _waiting(5, category="payments")

    events.agent_freed(agent_id=paula.pk)

    assert asked == [] and offer_for(first).agent == paula
    settings.HUMANLINE = {**settings.HUMANLINE, "DISPATCH_INLINE": False}
    Offer.objects.filter(ticket=first).update(status=OfferStatus.DECLINED)
    events.agent_freed(agent_id=paula.pk)
    assert asked == [1]  # the batch pass decides
    assert not Offer.objects.filter(ticket=second).exists()


def test_a_pass_already_running_serves_the_freed_agent_instead(paula, settings, monkeypatch):
    """At saturation passes run back to back: the freed agent joins the next one."""
    from django.core.cache import cache

    from marketplace import events

    settings.CELERY_TASK_ALWAYS_EAGER = False
    queued = []
    monkeypatch.setattr(events.tasks.dispatch, "delay", lambda: queued.append(1))
    ticket = _waiting(10, category="payments")
    cache.add(dispatch.LOCK_KEY, 1, timeout=30)  # a pass is running

    events.agent_freed(agent_id=paula.pk)

    assert cache.get(dispatch.AGAIN_KEY) == 1 and queued == []  # that pass goes round again
    assert not Offer.objects.filter(ticket=ticket).exists()  # no pull beside it

    cache.delete_many([dispatch.LOCK_KEY, dispatch.AGAIN_KEY])  # the pass ended
    events.agent_freed(agent_id=paula.pk)
    assert offer_for(ticket).agent == paula and queued == []


@pytest.mark.django_db(transaction=True)
def test_a_head_another_dispatcher_holds_is_passed_for_the_next(paula):
    if connection.vendor != "postgresql":
        pytest.skip("needs row locks: SQLite locks the whole file; CI runs this on PostgreSQL")
    head, second = _waiting(10, category="payments"), _waiting(5, category="payments")

    held = Ticket.objects.filter(pk=head.pk)
    assert while_locked(held, lambda: dispatch.pull_for_agent(agent_id=paula.pk)) is True

    assert offer_for(second).agent == paula
    assert not Offer.objects.filter(ticket=head).exists()


@pytest.mark.django_db(transaction=True)
def test_when_every_ticket_is_held_elsewhere_the_batch_pass_decides(paula, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("needs row locks: SQLite locks the whole file; CI runs this on PostgreSQL")
    from marketplace import events

    asked = []
    monkeypatch.setattr(events, "dispatch_soon", lambda: asked.append(1))
    held = [_waiting(10 - n, category="payments") for n in range(2)]

    rows = Ticket.objects.filter(pk__in=[t.pk for t in held])
    while_locked(rows, lambda: events.agent_freed(agent_id=paula.pk))

    assert asked == [1]
    assert not Offer.objects.exists()


# --- the statement agrees with the rules on random markets --------------------------

SKILLS = ["general", "payments", "technical"]


def _random_market(rng: random.Random, now):
    """The freed agent, other online agents (specialists or not), and a queue."""
    freed = AgentFactory(
        user__password=None,
        languages=rng.choice([["en"], ["pt"], ["en", "pt"]]),
        skills=rng.sample(SKILLS, rng.randint(1, 2)),
        capacity=3,
    )
    for _ in range(6):
        AgentFactory(
            user__password=None,
            languages=rng.choice([["en"], ["pt"], ["en", "pt"]]),
            skills=rng.sample(SKILLS, 1),
        )
    Agent.objects.update(presence=Presence.ONLINE)
    Agent.objects.filter(
        pk__in=rng.sample(list(Agent.objects.values_list("pk", flat=True)), 2)
    ).exclude(pk=freed.pk).update(presence=Presence.AWAY)
    customer = UserFactory(password=None)
    moments = [now - timedelta(minutes=m) for m in (2, 6, 18)]  # repeated: ties on time
    tickets = []
    for _ in range(16):
        at = rng.choice(moments)
        ticket = TicketFactory(
            customer=customer,
            language=rng.choice(["en", "pt"]),
            category=rng.choice(SKILLS),
            priority=rng.choice(["urgent", "high", "normal", "normal"]),
            status=rng.choice([TicketStatus.QUEUED] * 4 + [TicketStatus.OFFERED]),
            queued_at=at,
            # A few just queued: their own fast path's.
            status_changed_at=now if rng.random() < 0.15 else at,
        )
        if rng.random() < 0.2:
            _offer_row(ticket, freed, rng.choice(list(dispatch.ENDED)))
        tickets.append(ticket)
    return freed, tickets


@pytest.mark.parametrize("seed", range(10))
def test_the_pull_takes_the_ticket_the_rules_give_the_freed_agent(seed, settings):
    settings.HUMANLINE = {**settings.HUMANLINE, "DISPATCH_PULL_AFTER_MS": 1000}
    rng = random.Random(seed)
    now = timezone.now()
    freed, tickets = _random_market(rng, now)
    candidates = dispatch._candidates(languages={"en", "pt"}, now=now)
    me = next(c for c in candidates if c.agent_id == freed.pk)
    ended = set(
        Offer.objects.filter(agent=freed, status__in=dispatch.ENDED).values_list(
            "ticket_id", flat=True
        )
    )
    waiting = [
        rules.WaitingTicket(
            ticket_id=t.pk,
            language=t.language,
            category=t.category,
            priority=t.priority,
            queued_at=t.queued_at,
            offered_to=frozenset({freed.pk} if t.pk in ended else ()),
        )
        for t in tickets
        if t.status == TicketStatus.QUEUED and t.status_changed_at < now - timedelta(seconds=1)
    ]
    servable = [
        t
        for t in rules.order_tickets(waiting)
        if rules.why_not(t, me, specialist_is_online=rules.specialist_online(t, candidates)) is None
    ]

    assert dispatch.pull_for_agent(agent_id=freed.pk) is True

    taken = list(Offer.objects.filter(agent=freed, status=OfferStatus.PENDING))
    assert [o.ticket_id for o in taken] == [t.ticket_id for t in servable[:1]]


# --- a seat freed by a resolve --------------------------------------------------------


def _busy_with_one(agent) -> Ticket:
    """The agent at capacity (1) with one assigned ticket."""
    from tickets import services as ticket_services

    Agent.objects.filter(pk=agent.pk).update(capacity=1)
    ticket = TicketFactory(category="payments")
    return ticket_services.ticket_assign(ticket_id=ticket.pk, agent_id=agent.pk)


def _resolve(ticket, agent, capture) -> None:
    from tickets import services as ticket_services

    with capture(execute=True):
        ticket_services.ticket_resolve(ticket_id=ticket.pk, caller=agent.user)


def test_a_seat_freed_by_a_resolve_takes_a_ticket_that_waited(
    paula, django_capture_on_commit_callbacks
):
    mine = _busy_with_one(paula)
    waited = _waiting(10, category="payments")

    _resolve(mine, paula, django_capture_on_commit_callbacks)

    assert offer_for(waited).agent == paula


def test_a_seat_freed_while_only_a_ticket_in_flight_waits_leaves_it_to_its_fast_path(
    paula, settings, django_capture_on_commit_callbacks
):
    # Every resolve used to ask for a batch pass, which offered such a ticket
    # too; at 100 resolves a second the passes ran back to back.
    settings.HUMANLINE = {**settings.HUMANLINE, "DISPATCH_PULL_AFTER_MS": 60_000}
    mine = _busy_with_one(paula)
    in_flight = TicketFactory(category="payments")  # just queued: its request is placing it

    _resolve(mine, paula, django_capture_on_commit_callbacks)

    assert not Offer.objects.filter(ticket=in_flight).exists()
    in_flight.refresh_from_db()
    assert in_flight.status == TicketStatus.QUEUED
    # Once it has waited past that, the next seat freed takes it.
    settings.HUMANLINE = {**settings.HUMANLINE, "DISPATCH_PULL_AFTER_MS": 0}
    _resolve(_busy_with_one(paula), paula, django_capture_on_commit_callbacks)
    assert offer_for(in_flight).agent == paula
