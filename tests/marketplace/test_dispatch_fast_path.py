"""The fast path (a new ticket offered in the process that queued it), the batch
limit's order, the quality cache, and dispatch after an accepted offer."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from marketplace.models import Offer, OfferStatus
from marketplace.services import dispatch
from tests.factories import AgentFactory
from tests.marketplace.test_dispatch import go_online, offer_for
from tests.tickets.factories import TicketFactory
from tickets import selectors
from tickets.models import Rating, Ticket, TicketStatus

pytestmark = pytest.mark.django_db
pytestmark = [pytestmark, pytest.mark.postgres("dispatch core: reviewed in the dispatch rewrite")]


def _offer_row(ticket, agent, status=OfferStatus.PENDING, *, amount=1, seconds=15) -> Offer:
    """An offer row written directly: another dispatcher's, or one answered before."""
    return Offer.objects.create(
        ticket=ticket,
        agent=agent,
        status=status,
        base_amount=amount,
        surge_multiplier=1,
        amount=amount,
        currency="EUR",
        expires_at=timezone.now() + timedelta(seconds=seconds),
    )


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
        type(agent).objects.filter(pk=agent.pk).update(idle_since=now - timedelta(minutes=minutes))
    return agents


def test_a_new_ticket_goes_at_once_to_its_best_agent(three):
    ana = three[0]
    ticket = TicketFactory(category="general")

    assert dispatch.dispatch_ticket(ticket_id=ticket.pk) is True

    assert offer_for(ticket).agent == ana  # R4: idle longest
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.OFFERED


def test_the_fast_path_leaves_the_ticket_to_the_batch_when_the_queue_ahead_is_as_long(three):
    # Three older tickets wait for the three agents: the new one must not jump them.
    earlier = timezone.now() - timedelta(minutes=2)
    for _ in range(3):
        TicketFactory(category="general", queued_at=earlier)
    ticket = TicketFactory(category="general")

    assert dispatch.dispatch_ticket(ticket_id=ticket.pk) is False

    assert not Offer.objects.exists()


def test_the_fast_path_serves_a_ticket_when_agents_outnumber_those_ahead(three):
    earlier = timezone.now() - timedelta(minutes=2)
    TicketFactory(category="general", queued_at=earlier)
    ticket = TicketFactory(category="general")

    assert dispatch.dispatch_ticket(ticket_id=ticket.pk) is True

    assert offer_for(ticket).agent == three[0]


def test_an_urgent_ticket_is_not_held_back_by_older_normal_ones(three):
    earlier = timezone.now() - timedelta(minutes=2)
    for _ in range(5):
        TicketFactory(category="general", queued_at=earlier)
    urgent = TicketFactory(category="general", priority="urgent")

    assert dispatch.dispatch_ticket(ticket_id=urgent.pk) is True
    assert offer_for(urgent).agent == three[0]


def test_the_fast_path_has_nothing_to_do_for_a_ticket_no_longer_waiting(three):
    ticket = TicketFactory(category="general")
    dispatch.dispatch_ticket(ticket_id=ticket.pk)

    assert dispatch.dispatch_ticket(ticket_id=ticket.pk) is True
    assert Offer.objects.filter(ticket=ticket).count() == 1


def test_the_fast_path_gives_way_when_nobody_can_take_the_ticket(three):
    ticket = TicketFactory(category="general", language="pt")
    assert dispatch.dispatch_ticket(ticket_id=ticket.pk) is False
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.QUEUED


def test_opening_a_ticket_offers_it_without_the_batch_pass(three, settings, monkeypatch):
    """The queued hook takes the fast path; the batch pass is not even asked."""
    from marketplace import events

    asked = []
    monkeypatch.setattr(events, "dispatch_soon", lambda: asked.append(1))
    ticket = TicketFactory(category="general")
    events.ticket_waiting(ticket.pk)

    assert offer_for(ticket).agent == three[0]
    assert asked == []

    settings.HUMANLINE = {**settings.HUMANLINE, "DISPATCH_INLINE": False}
    other = TicketFactory(category="general")
    events.ticket_waiting(other.pk)
    assert asked == [1]
    other.refresh_from_db()
    assert other.status == TicketStatus.QUEUED


def test_a_ticket_just_opened_is_not_read_again_before_its_offer(three, customer):
    from tickets import services

    new = services.NewTicket(subject="Refund", body="Where is it?", category="general")
    with CaptureQueriesContext(connection) as queries:
        ticket = services.ticket_open(caller=customer, new=new).ticket  # hooks run on commit
    assert not Offer.objects.filter(ticket=ticket).exists()  # inside the test's transaction
    ticket_reads = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith("SELECT") and 'FROM "tickets_ticket"' in q["sql"]
    ]

    with CaptureQueriesContext(connection) as queries:
        assert dispatch.dispatch_ticket(ticket_id=ticket.pk, opened=ticket) is True

    assert offer_for(ticket).agent == three[0]
    assert ticket_reads == []
    assert not [
        q["sql"] for q in queries.captured_queries if 'FROM "tickets_ticket"' in q["sql"]
    ]  # the ranking and the offer are the statements; no read of the ticket itself


def test_a_ticket_opened_then_cancelled_before_its_hook_gets_no_offer(three, customer):
    ticket = TicketFactory(category="general")
    opened = Ticket.objects.get(pk=ticket.pk)  # as written
    Ticket.objects.filter(pk=ticket.pk).update(status=TicketStatus.CANCELLED)

    # True: nothing left to decide (the offer's statement found it no longer queued).
    assert dispatch.dispatch_ticket(ticket_id=ticket.pk, opened=opened) is True

    assert not Offer.objects.exists()  # the offer's statement checked under its lock
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CANCELLED


@pytest.mark.django_db(transaction=True)
def test_concurrent_fast_paths_fan_out_over_the_free_agents(three):
    """The best agent's row is locked by another transaction: the ticket goes to the next."""
    ana, ben, _ = three
    ticket = TicketFactory(category="general")

    made = while_locked(
        type(ana).objects.filter(pk=ana.pk), lambda: dispatch.dispatch_ticket(ticket_id=ticket.pk)
    )

    assert made is True
    assert offer_for(ticket).agent == ben


def test_an_offer_the_unique_index_refuses_is_tried_again_then_left_to_the_batch(three, caplog):
    """The index refuses a second pending offer for a ticket.  In service that
    means another fast path committed its offer after this statement's snapshot:
    the statement runs again (a new snapshot sees it), a few times at most."""
    ana = three[0]
    ticket = TicketFactory(category="general")
    _offer_row(ticket, ana)  # pending, while the ticket still reads queued: every run is refused
    others = [agent.pk for agent in three[1:]]

    with CaptureQueriesContext(connection) as queries:
        made = dispatch.offer_first_free(
            ticket_id=ticket.pk, agent_ids=others, multiplier=Decimal("1.00")
        )

    assert made == (None, True, None)  # no offer; the ticket was this call's: the batch decides
    runs = [q for q in queries.captured_queries if "humanline_offer_first_free(" in q["sql"]]
    assert len(runs) == dispatch.FAST_PATH_ATTEMPTS == 3
    assert Offer.objects.filter(ticket=ticket).count() == 1  # nothing written by the runs
    assert "lost 3 races" in caplog.text


def test_the_batch_reads_the_most_urgent_tickets_first_when_the_queue_is_over_the_limit(
    three, settings
):
    settings.HUMANLINE = {**settings.HUMANLINE, "DISPATCH_BATCH_LIMIT": 1}
    TicketFactory(category="general", queued_at=timezone.now() - timedelta(minutes=10))
    urgent = TicketFactory(category="general", priority="urgent")

    dispatch.dispatch()

    assert offer_for(urgent).agent == three[0]


def test_accepting_an_offer_lets_the_agent_take_the_next_waiting_ticket(db):
    from marketplace import events

    agent = AgentFactory(languages=["en"], skills=["general"])
    go_online(agent)
    first = TicketFactory(category="general")
    second = TicketFactory(
        category="general", status_changed_at=timezone.now() - timedelta(seconds=5)
    )
    dispatch.dispatch()
    offer = offer_for(first)

    accepted = dispatch.offer_accept(offer_id=offer.pk, user=agent.user)
    events.offer_accepted(offer=accepted)  # what the commit runs (the ORM's own check)

    assert offer_for(second).agent == agent


def test_quality_scores_are_cached_per_process_for_the_configured_time(three, settings):
    ana = three[0]
    before = dispatch.quality_cached(agent_ids=[ana.pk], now=timezone.now())[ana.pk]
    ticket = TicketFactory(category="general", status=TicketStatus.RESOLVED, assigned_agent=ana)
    Rating.objects.create(ticket=ticket, agent=ana, score=1)

    cached = dispatch.quality_cached(agent_ids=[ana.pk], now=timezone.now())[ana.pk]
    assert cached == before

    settings.HUMANLINE = {**settings.HUMANLINE, "QUALITY_CACHE_SECONDS": 0}
    dispatch.quality_cache_clear()
    fresh = dispatch.quality_cached(agent_ids=[ana.pk], now=timezone.now())[ana.pk]
    assert fresh < before

    # Kept for 0 s: the next read sees a new rating at once.
    another = TicketFactory(category="general", status=TicketStatus.RESOLVED, assigned_agent=ana)
    Rating.objects.create(ticket=another, agent=ana, score=1)
    assert dispatch.quality_cached(agent_ids=[ana.pk], now=timezone.now())[ana.pk] < fresh


def test_one_miss_fills_the_quality_cache_for_every_online_agent(three, django_assert_num_queries):
    ana, ben, cy = three
    with django_assert_num_queries(4):  # the online agents, then the three grouped queries
        dispatch.quality_cached(agent_ids=[ana.pk], now=timezone.now())

    with django_assert_num_queries(0):
        scores = dispatch.quality_cached(agent_ids=[ben.pk, cy.pk], now=timezone.now())
    assert set(scores) == {ben.pk, cy.pk}


def test_nothing_is_dispatched_after_an_accept_when_the_queue_is_empty(db, monkeypatch):
    from marketplace import events

    agent = AgentFactory(languages=["en"], skills=["general"])
    go_online(agent)
    ticket = TicketFactory(category="general")
    dispatch.dispatch()
    offer = offer_for(ticket)
    accepted = dispatch.offer_accept(offer_id=offer.pk, user=agent.user)
    asked = []
    monkeypatch.setattr(events, "dispatch_soon", lambda: asked.append(1))

    events.offer_accepted(offer=accepted)

    assert asked == []
    assert Ticket.objects.get(pk=ticket.pk).status == TicketStatus.ASSIGNED
    assert Offer.objects.get(pk=offer.pk).status == OfferStatus.ACCEPTED


def test_an_accept_tells_the_agent_from_the_rows_it_wrote_without_reading_them_again(
    db, pushes, django_capture_on_commit_callbacks
):
    agent = AgentFactory(languages=["en"], skills=["general"])
    go_online(agent)
    ticket = TicketFactory(
        category="general",
        customer__name="Maria Lopes",
        handoff_transcript=[{"role": "customer", "text": "Refund?", "at": None}],
    )
    dispatch.dispatch()
    offer = offer_for(ticket)

    with django_capture_on_commit_callbacks() as after_commit:
        dispatch.offer_accept(offer_id=offer.pk, user=agent.user)
    pushes.clear()
    with CaptureQueriesContext(connection) as queries:
        for callback in after_commit:
            callback()

    assigned = [m for agent_id, m in pushes if m["type"] == "ticket.assigned"]
    assert len(assigned) == 1 and pushes[0][0] == agent.pk
    assert assigned[0]["offer_id"] == offer.pk
    assert assigned[0]["pay"] == {"amount": f"{offer.amount:.2f}", "currency": offer.currency}
    assert assigned[0]["ticket"]["customer"] == {"name": "Maria"}
    assert assigned[0]["ticket"]["status"] == TicketStatus.ASSIGNED
    assert assigned[0]["ticket"]["handoff_transcript"][0]["text"] == "Refund?"
    # The offer (with its ticket and customer) is not read again after commit.
    assert not [q["sql"] for q in queries if '"marketplace_offer"' in q["sql"]]


def _statements(queries) -> list[str]:
    # Savepoints (the test's transaction) and the one-time PREPARE of a connection aside.
    return [
        q["sql"] for q in queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE", "PREPARE"))
    ]


def test_the_fast_path_offers_in_one_statement_at_the_locked_price(
    three, pushes, settings, django_capture_on_commit_callbacks
):
    """Ticket read, ranking (with the surge's counts), then one statement writes it all."""
    from marketplace.models import RateCard
    from marketplace.pricing import task_price
    from tickets.models import TicketEvent

    ana = three[0]
    settings.HUMANLINE = {**settings.HUMANLINE, "SURGE_BANDS": "0:1.10"}  # a surge at any ratio
    currency = settings.HUMANLINE["CURRENCY"]
    RateCard.objects.update_or_create(
        category_id="general", currency=currency, defaults={"amount": "2.25"}
    )
    ticket = TicketFactory(category="general", handoff_summary="Card blocked abroad")
    dispatch.quality_cached(agent_ids=[a.pk for a in three], now=timezone.now())

    with (
        CaptureQueriesContext(connection) as queries,
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert dispatch.dispatch_ticket(ticket_id=ticket.pk) is True

    assert len(_statements(queries.captured_queries)) == 3
    offer = offer_for(ticket)
    assert (offer.agent, offer.status) == (ana, OfferStatus.PENDING)
    assert offer.base_amount == Decimal("2.25") and offer.surge_multiplier == Decimal("1.10")
    assert offer.amount == task_price(base=Decimal("2.25"), multiplier=Decimal("1.10"))  # 2.48
    assert offer.currency == currency
    window = settings.HUMANLINE["OFFER_WINDOW_SECONDS"]
    assert offer.expires_at - offer.created_at == timedelta(seconds=window)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.OFFERED
    event = TicketEvent.objects.filter(ticket=ticket).latest("id")
    assert (event.from_status, event.to_status) == (TicketStatus.QUEUED, TicketStatus.OFFERED)
    assert event.reason == f"Offered to agent {ana.pk}."
    # The agent's push is built from the rows the statement returned.
    (agent_id, message), *_ = [p for p in pushes if p[1]["type"] == "offer.created"]
    assert agent_id == ana.pk
    assert message["offer"]["id"] == offer.pk
    assert message["offer"]["pay"] == {"amount": "2.48", "currency": currency}
    assert message["offer"]["surge_multiplier"] == "1.10"
    assert message["offer"]["ticket"]["summary"] == "Card blocked abroad"
    assert message["offer"]["ticket"]["id"] == ticket.pk


def test_the_offer_statement_checks_again_who_is_still_free(three):
    """Ana has a pending offer and Ben declined this ticket since the ranking: Cy gets it."""
    ana, ben, cy = three
    ticket = TicketFactory(category="general")
    other = TicketFactory(category="general")
    _offer_row(other, ana, amount=2, seconds=30)
    _offer_row(ticket, ben, OfferStatus.DECLINED, amount=2, seconds=30)

    offer, held, ahead = dispatch.offer_first_free(
        ticket_id=ticket.pk, agent_ids=[ana.pk, ben.pk, cy.pk], multiplier=Decimal("1.00")
    )

    assert held and offer is not None and offer.agent_id == cy.pk
    assert offer_for(ticket).agent == cy
    assert ahead == 0  # the other waiting ticket came after it


def test_no_free_agent_leaves_the_ticket_to_the_batch(three):
    ticket = TicketFactory(category="general")
    ana = three[0]
    type(ana).objects.filter(pk=ana.pk).update(active_tickets=F("capacity"))  # ana is full

    made = dispatch.offer_first_free(
        ticket_id=ticket.pk, agent_ids=[ana.pk], multiplier=Decimal("1.00")
    )

    assert made == (None, True, None)


@pytest.mark.django_db(transaction=True)
def test_a_ticket_another_dispatcher_holds_is_left_to_it_without_a_batch_pass(three, monkeypatch):
    from marketplace import events

    asked = []
    monkeypatch.setattr(events, "dispatch_soon", lambda: asked.append(1))
    ticket = TicketFactory(category="general")

    # A batch pass holds the ticket's row.
    while_locked(Ticket.objects.filter(pk=ticket.pk), lambda: events.ticket_waiting(ticket.pk))

    assert asked == []  # the holder decides it
    assert not Offer.objects.filter(ticket=ticket).exists()


def test_the_offer_statement_writes_nothing_for_a_ticket_no_longer_queued(three):
    ticket = TicketFactory(category="general")
    Ticket.objects.filter(pk=ticket.pk).update(status=TicketStatus.CANCELLED)
    before = Offer.objects.count()

    made = dispatch.offer_first_free(
        ticket_id=ticket.pk, agent_ids=[a.pk for a in three], multiplier=Decimal("1.00")
    )

    assert made == (None, False, None)  # not this call's to offer: no batch pass either
    assert Offer.objects.count() == before
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CANCELLED


@pytest.mark.django_db(transaction=True)
def test_a_ticket_offered_as_it_opens_answers_with_what_the_offer_saw(api, customer):
    """Autocommit, as in service: the fast path offers the new ticket before the
    response is built, and its statement counted the tickets ahead: the response
    shows that standing without reading the ticket again."""
    agents = [AgentFactory(languages=["en"], skills=["general"]) for _ in range(3)]
    go_online(*agents)
    earlier = timezone.now() - timedelta(minutes=5)
    for minutes in (2, 1):  # two waiting ahead in the lane, one in another
        TicketFactory(category="general", queued_at=earlier + timedelta(minutes=minutes))
    TicketFactory(category="general", language="pt", queued_at=earlier)

    with CaptureQueriesContext(connection) as queries:
        response = api.as_(customer).post(
            "/api/v1/tickets/", {"subject": "S", "body": "B", "category": "general"}
        )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["queue_position"]) == ("offered", 3)
    assert Offer.objects.get(ticket_id=body["id"], status=OfferStatus.PENDING)
    statements = [q["sql"] for q in queries.captured_queries]
    assert not [sql for sql in statements if "humanline_ticket_standing" in sql]
    # The same standing as a read of the database gives.
    status, place = selectors.ticket_standing(ticket=Ticket.objects.get(pk=body["id"]))
    assert (status, place.position, place.eta_seconds) == ("offered", 3, body["eta_seconds"])
