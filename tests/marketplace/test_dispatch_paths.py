"""The three ways a ticket meets an agent: a new ticket's offer (``offer_new_ticket``),
a free agent's pull (``pull``) and the pass, lane by lane (``dispatch_pass``); and
what runs on which event (``marketplace.events.routes``)."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.models import Agent, AgentStatus, Presence
from marketplace import events
from marketplace.models import Offer, OfferStatus
from marketplace.services import dispatch
from marketplace.services import pricing as pricing_services
from tests.factories import AgentFactory
from tests.marketplace.test_dispatch import go_online, offer_for
from tests.tickets.factories import TicketFactory
from tickets import services as ticket_services
from tickets.models import Ticket, TicketEvent, TicketStatus

pytestmark = pytest.mark.django_db


def offer_row(ticket, agent, status=OfferStatus.PENDING, *, amount=1, seconds=15) -> Offer:
    """An offer row written directly: another dispatcher's, or one answered before."""
    now = timezone.now()
    return Offer.objects.create(
        ticket=ticket,
        agent=agent,
        status=status,
        base_amount=amount,
        surge_multiplier=1,
        amount=amount,
        currency="EUR",
        expires_at=now + timedelta(seconds=seconds),
        answered_at=None if status == OfferStatus.PENDING else now,
    )


def waiting(minutes: float, **fields) -> Ticket:
    """A ticket queued ``minutes`` ago (long past its own fast path)."""
    at = timezone.now() - timedelta(minutes=minutes)
    return TicketFactory(queued_at=at, status_changed_at=at, **fields)


def while_locked(rows, action):
    """Run ``action`` while another transaction (another dispatcher) holds ``rows`` locked."""
    locked, release = threading.Event(), threading.Event()

    def hold():
        with transaction.atomic():
            list(rows.select_for_update())
            locked.set()
            release.wait(10)
        connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10)
        return action()
    finally:
        release.set()
        holder.join(10)


@pytest.fixture
def three(db):
    """Three online English generalists: Ana idle longest, then Ben, then Cy."""
    agents = [
        AgentFactory(user__name=name, languages=["en"], skills=["general"])
        for name in ("Ana", "Ben", "Cy")
    ]
    go_online(*agents)
    now = timezone.now()
    for minutes, agent in zip((30, 20, 10), agents, strict=True):
        Agent.objects.filter(pk=agent.pk).update(idle_since=now - timedelta(minutes=minutes))
    return agents


@pytest.fixture
def passes_asked(monkeypatch):
    asked = []
    monkeypatch.setattr(dispatch, "pass_request", lambda **_: asked.append(1))
    return asked


# --- a new ticket ---------------------------------------------------------------------


def test_a_new_ticket_goes_at_once_to_its_best_agent(three):
    ticket = TicketFactory(category="general")

    assert dispatch.offer_new_ticket(ticket_id=ticket.pk) is True

    assert offer_for(ticket).agent == three[0]  # R4: idle longest
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.OFFERED
    event = TicketEvent.objects.filter(ticket=ticket).latest("id")
    assert (event.from_status, event.to_status) == (TicketStatus.QUEUED, TicketStatus.OFFERED)


def test_a_new_ticket_behind_as_many_waiting_tickets_as_agents_is_left_to_the_pass(three):
    # Three older tickets of the lane still queued, three agents: the new one
    # must not take an agent one of them needs.
    older = [waiting(2, category="general") for _ in range(3)]
    ticket = TicketFactory(category="general")

    assert dispatch.offer_new_ticket(ticket_id=ticket.pk) is False

    assert not Offer.objects.exists()
    assert dispatch.dispatch_pass() == 3  # the pass serves the lane in order
    assert {offer.ticket_id for offer in Offer.objects.all()} == {t.pk for t in older}


def test_a_new_ticket_behind_fewer_waiting_tickets_than_agents_goes_at_once(three):
    # Two wait ahead, three agents: enough are left for them.
    older = [waiting(2, category="general") for _ in range(2)]
    ticket = TicketFactory(category="general")

    assert dispatch.offer_new_ticket(ticket_id=ticket.pk) is True
    assert offer_for(ticket).agent == three[0]

    assert dispatch.dispatch_pass() == 2
    assert {offer_for(t).agent for t in older} == {three[1], three[2]}


def test_tickets_ahead_in_flight_or_in_another_lane_do_not_hold_a_new_ticket_back(three):
    TicketFactory(category="general")  # just queued: its own fast path's
    waiting(2, category="general", language="pt")  # another lane
    waiting(2, category="payments")  # another lane
    ticket = TicketFactory(category="general")

    assert dispatch.offer_new_ticket(ticket_id=ticket.pk) is True
    assert offer_for(ticket).agent == three[0]


def test_an_urgent_ticket_is_not_held_back_by_older_normal_ones(three):
    for _ in range(5):
        waiting(2, category="general")
    urgent = TicketFactory(category="general", priority="urgent")

    assert dispatch.offer_new_ticket(ticket_id=urgent.pk) is True
    assert offer_for(urgent).agent == three[0]


def test_a_new_ticket_no_longer_waiting_is_left_alone(three):
    ticket = TicketFactory(category="general")
    dispatch.offer_new_ticket(ticket_id=ticket.pk)

    assert dispatch.offer_new_ticket(ticket_id=ticket.pk) is True
    assert Offer.objects.filter(ticket=ticket).count() == 1


def test_a_new_ticket_nobody_can_take_waits_without_a_pass(three):
    ticket = TicketFactory(category="general", language="pt")

    assert dispatch.offer_new_ticket(ticket_id=ticket.pk) is True

    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.QUEUED


def test_a_ticket_opened_then_cancelled_before_its_hook_gets_no_offer(three):
    ticket = TicketFactory(category="general")
    opened = Ticket.objects.get(pk=ticket.pk)  # as written
    Ticket.objects.filter(pk=ticket.pk).update(status=TicketStatus.CANCELLED)

    # True: the offer found nothing to lock, and nothing is left for a pass.
    assert dispatch.offer_new_ticket(ticket_id=ticket.pk, opened=opened) is True

    assert not Offer.objects.exists()  # the offer checked again under its lock
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CANCELLED


def test_the_pushes_of_an_offer_are_built_from_the_rows_written(
    three, pushes, django_capture_on_commit_callbacks
):
    ticket = TicketFactory(category="general", handoff_summary="Double charge")

    with django_capture_on_commit_callbacks() as after_commit:
        dispatch.offer_new_ticket(ticket_id=ticket.pk)
    with CaptureQueriesContext(connection) as queries:
        for callback in after_commit:
            callback()

    offer = offer_for(ticket)
    created = [m for agent_id, m in pushes if m["type"] == "offer.created"]
    assert [m["offer"]["id"] for m in created] == [offer.pk]
    assert created[0]["offer"]["pay"] == {"amount": "2.00", "currency": "EUR"}
    assert created[0]["offer"]["ticket"]["summary"] == "Double charge"
    assert not [q for q in queries.captured_queries if '"marketplace_offer"' in q["sql"]]


@pytest.mark.postgres("another transaction's row locks: SQLite locks the whole file")
@pytest.mark.django_db(transaction=True)
def test_concurrent_new_tickets_fan_out_over_the_free_agents(three):
    """The best agent's row is locked by another transaction: the ticket goes to the next."""
    ana, ben, _ = three
    ticket = TicketFactory(category="general")

    made = while_locked(
        Agent.objects.filter(pk=ana.pk), lambda: dispatch.offer_new_ticket(ticket_id=ticket.pk)
    )

    assert made is True
    assert offer_for(ticket).agent == ben


@pytest.mark.postgres("another transaction's row locks: SQLite locks the whole file")
@pytest.mark.django_db(transaction=True)
def test_a_new_ticket_another_dispatcher_is_deciding_asks_for_no_pass(three):
    """A pass or a pull holds the ticket's row: it decides the ticket (and asks for
    a pass itself if it cannot offer it), so the ticket's own path asks for none."""
    ticket = TicketFactory(category="general")

    made = while_locked(
        Ticket.objects.filter(pk=ticket.pk), lambda: dispatch.offer_new_ticket(ticket_id=ticket.pk)
    )

    assert made is True
    assert not Offer.objects.exists()
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.QUEUED


@pytest.mark.postgres("another transaction's row locks: SQLite locks the whole file")
@pytest.mark.django_db(transaction=True)
def test_a_new_ticket_whose_agents_are_all_held_asks_for_a_pass(three):
    """The ticket is its own, but other dispatchers hold every agent it could have."""
    ticket = TicketFactory(category="general")

    made = while_locked(
        Agent.objects.filter(pk__in=[a.pk for a in three]),
        lambda: dispatch.offer_new_ticket(ticket_id=ticket.pk),
    )

    assert made is False
    assert not Offer.objects.exists()


# --- a free agent pulls ---------------------------------------------------------------


@pytest.fixture
def tech(db):
    """Tomás, an online English technical specialist, busy with a pending offer."""
    agent = AgentFactory(user__name="Tomás Tech", languages=["en"], skills=["technical"])
    go_online(agent)
    offer_row(TicketFactory(status=TicketStatus.OFFERED, category="technical"), agent)
    return agent


def test_a_free_agent_takes_the_first_ticket_in_queue_order_they_may_take(
    paula, tech, pushes, django_capture_on_commit_callbacks
):
    waiting(20, category="payments", language="pt")  # E3: Paula speaks no Portuguese
    waiting(15, category="technical")  # E4: a specialist is online (busy, but online)
    older = waiting(10, category="payments")
    high = waiting(5, category="payments", priority="high")
    waiting(1, category="payments", priority="urgent", status=TicketStatus.OFFERED)

    with django_capture_on_commit_callbacks(execute=True):
        assert dispatch.pull(agent_id=paula.pk) is True

    offer = offer_for(high)  # priority before waiting time
    assert offer.agent == paula
    assert not Offer.objects.filter(ticket=older).exists()
    created = [m for agent_id, m in pushes if agent_id == paula.pk and m["type"] == "offer.created"]
    assert [m["offer"]["id"] for m in created] == [offer.pk]

    # Answered, she takes the next: the older payments ticket, not the technical one.
    Offer.objects.filter(pk=offer.pk).update(status=OfferStatus.ACCEPTED)
    assert dispatch.pull(agent_id=paula.pk) is True
    assert offer_for(older).agent == paula


def test_with_no_specialist_online_a_generalist_pulls_the_ticket_as_the_fallback(paula):
    technical = waiting(15, category="technical")
    assert dispatch.pull(agent_id=paula.pk) is True
    assert offer_for(technical).agent == paula


def test_a_ticket_the_agent_passed_on_is_not_pulled_again(paula):
    declined = waiting(10, category="payments")
    offer_row(declined, paula, OfferStatus.DECLINED)
    later = waiting(5, category="payments")

    assert dispatch.pull(agent_id=paula.pk) is True

    assert offer_for(later).agent == paula
    assert not Offer.objects.filter(ticket=declined, status=OfferStatus.PENDING).exists()


def test_a_ticket_just_queued_is_left_to_its_own_fast_path(paula, settings):
    settings.HUMANLINE = {**settings.HUMANLINE, "DISPATCH_PULL_AFTER_MS": 200}
    at = timezone.now() - timedelta(milliseconds=50)
    fresh = TicketFactory(category="payments", queued_at=at, status_changed_at=at)

    assert dispatch.pull(agent_id=paula.pk) is True  # nothing of Paula's to take

    assert not Offer.objects.filter(ticket=fresh).exists()
    settings.HUMANLINE = {**settings.HUMANLINE, "DISPATCH_PULL_AFTER_MS": 20}
    assert dispatch.pull(agent_id=paula.pk) is True
    assert offer_for(fresh).agent == paula


def _full(agent):
    Agent.objects.filter(pk=agent.pk).update(active_tickets=F("capacity"))


def _holding_an_offer(agent):
    offer_row(TicketFactory(status=TicketStatus.OFFERED), agent)


def _away(agent):
    Agent.objects.filter(pk=agent.pk).update(presence=Presence.AWAY)


def _suspended(agent):
    Agent.objects.filter(pk=agent.pk).update(status=AgentStatus.SUSPENDED)


@pytest.mark.parametrize(
    "change",
    [_full, _holding_an_offer, _away, _suspended],
    ids=["E5 at capacity", "E6 a pending offer", "E2 away", "E1 suspended"],
)
def test_an_agent_who_is_not_free_pulls_nothing_in_one_read(paula, change):
    ticket = waiting(10, category="payments")
    change(paula)

    with CaptureQueriesContext(connection) as queries:
        assert dispatch.pull(agent_id=paula.pk) is True  # nothing theirs: no pass

    assert len(queries.captured_queries) == 1
    assert not Offer.objects.filter(ticket=ticket, agent=paula).exists()


def test_the_surge_in_force_is_fixed_into_the_pulled_offer(paula):
    # One seat free against three waiting: demand outruns supply.
    Agent.objects.filter(pk=paula.pk).update(capacity=2, active_tickets=1)
    tickets = [waiting(10 - n, category="payments") for n in range(3)]
    surge = pricing_services.surge_now()
    assert surge.multiplier > 1

    assert dispatch.pull(agent_id=paula.pk) is True

    offer = offer_for(tickets[0])
    assert offer.surge_multiplier == surge.multiplier
    assert offer.amount == (offer.base_amount * surge.multiplier).quantize(Decimal("0.01"))


@pytest.mark.postgres("another transaction's row locks: SQLite locks the whole file")
@pytest.mark.django_db(transaction=True)
def test_a_head_another_dispatcher_holds_is_passed_for_the_next(paula):
    head, second = waiting(10, category="payments"), waiting(5, category="payments")

    held = Ticket.objects.filter(pk=head.pk)
    assert while_locked(held, lambda: dispatch.pull(agent_id=paula.pk)) is True

    assert offer_for(second).agent == paula
    assert not Offer.objects.filter(ticket=head).exists()


@pytest.mark.postgres("another transaction's row locks: SQLite locks the whole file")
@pytest.mark.django_db(transaction=True)
def test_when_every_ticket_is_held_elsewhere_a_pass_decides(paula, passes_asked):
    held = [waiting(10 - n, category="payments") for n in range(2)]

    rows = Ticket.objects.filter(pk__in=[t.pk for t in held])
    while_locked(rows, lambda: events.agent_free(agent_id=paula.pk))

    assert passes_asked == [1]
    assert not Offer.objects.exists()


def _busy_with_one(agent) -> Ticket:
    """The agent at capacity (1) with one assigned ticket."""
    Agent.objects.filter(pk=agent.pk).update(capacity=1)
    ticket = TicketFactory(category="payments")
    return ticket_services.ticket_assign(ticket_id=ticket.pk, agent_id=agent.pk)


def _resolve(ticket, agent, capture) -> None:
    with capture(execute=True):
        ticket_services.ticket_resolve(ticket_id=ticket.pk, caller=agent.user)


def test_a_seat_freed_by_a_resolve_takes_a_ticket_that_waited(
    paula, django_capture_on_commit_callbacks
):
    mine = _busy_with_one(paula)
    waited = waiting(10, category="payments")

    _resolve(mine, paula, django_capture_on_commit_callbacks)

    assert offer_for(waited).agent == paula


def test_a_seat_freed_while_only_a_ticket_in_flight_waits_leaves_it_to_its_fast_path(
    paula, settings, django_capture_on_commit_callbacks, passes_asked
):
    settings.HUMANLINE = {**settings.HUMANLINE, "DISPATCH_PULL_AFTER_MS": 60_000}
    mine = _busy_with_one(paula)
    in_flight = TicketFactory(category="payments")  # just queued: its request is placing it

    _resolve(mine, paula, django_capture_on_commit_callbacks)

    assert not Offer.objects.filter(ticket=in_flight).exists()
    assert passes_asked == []
    # Once it has waited past that, the next seat freed takes it.
    settings.HUMANLINE = {**settings.HUMANLINE, "DISPATCH_PULL_AFTER_MS": 0}
    _resolve(_busy_with_one(paula), paula, django_capture_on_commit_callbacks)
    assert offer_for(in_flight).agent == paula


# --- the pass, lane by lane -----------------------------------------------------------


def test_a_lane_nobody_online_can_serve_holds_back_no_other_lane(paula, settings):
    """A thousand tickets in a language nobody online speaks, older than one Paula can
    serve: her ticket is offered in the first pass."""
    at = timezone.now() - timedelta(minutes=30)
    TicketFactory.create_batch(1000, category="payments", language="mt", queued_at=at)
    servable = waiting(1, category="payments")

    assert dispatch.dispatch_pass() == 1

    assert offer_for(servable).agent == paula


def test_a_lane_is_read_past_tickets_its_free_agents_have_all_passed_on(paula, settings):
    passed_on = [waiting(30 - n / 100, category="payments") for n in range(60)]
    for ticket in passed_on:
        offer_row(ticket, paula, OfferStatus.DECLINED)
    behind = waiting(1, category="payments")

    assert dispatch.dispatch_pass() == 1

    assert offer_for(behind).agent == paula


def test_the_pass_shares_the_free_agents_out_over_lanes_in_queue_order(three):
    ana, ben, cy = three
    Agent.objects.filter(pk=cy.pk).update(presence=Presence.AWAY)
    older = waiting(10, category="general")
    urgent = waiting(1, category="payments", priority="urgent")  # general fallback
    younger = waiting(5, category="general")

    assert dispatch.dispatch_pass() == 2

    assert offer_for(urgent).agent == ana  # most urgent first, to the best agent
    assert offer_for(older).agent == ben
    assert not Offer.objects.filter(ticket=younger).exists()


# --- what runs on which event ---------------------------------------------------------


def test_every_dispatch_route_is_registered_on_its_hook():
    for event, hooks, handler in events.routes():
        assert handler in hooks, event


def test_a_queued_ticket_is_offered_without_a_pass_unless_inline_dispatch_is_off(
    three, settings, passes_asked
):
    ticket = TicketFactory(category="general")
    events.ticket_waiting(ticket.pk)

    assert offer_for(ticket).agent == three[0]
    assert passes_asked == []

    settings.HUMANLINE = {**settings.HUMANLINE, "DISPATCH_INLINE": False}
    other = TicketFactory(category="general")
    events.ticket_waiting(other.pk)
    assert passes_asked == [1]
    other.refresh_from_db()
    assert other.status == TicketStatus.QUEUED


def test_a_freed_agent_pulls_instead_of_asking_for_a_pass(paula, settings, passes_asked):
    first, second = waiting(10, category="payments"), waiting(5, category="payments")

    events.agent_free(agent_id=paula.pk)

    assert passes_asked == [] and offer_for(first).agent == paula
    settings.HUMANLINE = {**settings.HUMANLINE, "DISPATCH_INLINE": False}
    Offer.objects.filter(ticket=first).update(status=OfferStatus.ACCEPTED)
    events.agent_free(agent_id=paula.pk)
    assert passes_asked == [1]
    assert not Offer.objects.filter(ticket=second).exists()


def test_an_agent_going_online_asks_for_a_pass(
    db, passes_asked, django_capture_on_commit_callbacks
):
    agent = AgentFactory(languages=["en"], skills=["general"])
    with django_capture_on_commit_callbacks(execute=True):
        go_online(agent)
    assert passes_asked == [1]


def test_a_freed_agent_joins_a_pass_already_running_instead_of_pulling(
    paula, settings, monkeypatch
):
    """At saturation passes run back to back: the freed agent is served by the next round."""
    from django.core.cache import cache

    settings.CELERY_TASK_ALWAYS_EAGER = False
    queued = []
    monkeypatch.setattr(events.tasks.dispatch, "delay", lambda: queued.append(1))
    ticket = waiting(10, category="payments")
    cache.add(dispatch.LOCK_KEY, 1, timeout=30)  # a pass is running

    events.agent_free(agent_id=paula.pk)

    assert cache.get(dispatch.AGAIN_KEY) == 1 and queued == []  # that pass goes round again
    assert not Offer.objects.filter(ticket=ticket).exists()  # no pull beside it

    cache.delete_many([dispatch.LOCK_KEY, dispatch.AGAIN_KEY])  # the pass ended
    events.agent_free(agent_id=paula.pk)
    assert offer_for(ticket).agent == paula and queued == []


def test_a_freed_agent_with_nothing_to_take_does_not_send_a_running_pass_round_again(
    paula, settings, monkeypatch
):
    """In service a pass may be running while agents accept: one with nothing
    waiting that they may take (a ticket just queued is its own fast path's)
    leaves that pass to end, rather than keep passes following each other."""
    from django.core.cache import cache

    settings.CELERY_TASK_ALWAYS_EAGER = False
    queued = []
    monkeypatch.setattr(events.tasks.dispatch, "delay", lambda: queued.append(1))
    TicketFactory(category="payments")  # just queued
    cache.add(dispatch.LOCK_KEY, 1, timeout=30)  # a pass is running

    try:
        events.agent_free(agent_id=paula.pk)

        assert cache.get(dispatch.AGAIN_KEY) is None and queued == []
        assert not Offer.objects.exists()
    finally:
        cache.delete_many([dispatch.LOCK_KEY, dispatch.AGAIN_KEY])
