"""Place in line and estimated wait: lanes, priority then age, the recent service rate."""

from datetime import timedelta
from unittest.mock import ANY

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import AgentFactory
from tests.tickets.factories import TicketFactory, assigned, resolved
from tickets import events, selectors, services
from tickets.models import Ticket, TicketEvent, queue_order

pytestmark = pytest.mark.django_db


def _position(ticket) -> int:
    ticket.refresh_from_db()
    return selectors.queue_place(ticket=ticket).position


def test_tickets_line_up_by_priority_then_waiting_time():
    now = timezone.now()
    oldest = TicketFactory(queued_at=now - timedelta(minutes=30))
    newer = TicketFactory(queued_at=now - timedelta(minutes=5))
    high = TicketFactory(queued_at=now - timedelta(minutes=1), priority="high")
    urgent = TicketFactory(queued_at=now, priority="urgent")

    assert [_position(t) for t in (urgent, high, oldest, newer)] == [1, 2, 3, 4]


def test_only_tickets_of_the_same_language_and_category_compete():
    now = timezone.now()
    TicketFactory(queued_at=now - timedelta(minutes=9), language="pt")
    TicketFactory(queued_at=now - timedelta(minutes=9), category="payments")
    ahead = TicketFactory(queued_at=now - timedelta(minutes=9))
    mine = TicketFactory(queued_at=now)

    assert _position(ahead) == 1
    assert _position(mine) == 2


def test_tickets_no_longer_waiting_leave_the_line(customer):
    now = timezone.now()
    first = TicketFactory(queued_at=now - timedelta(minutes=9), customer=customer)
    second = TicketFactory(queued_at=now - timedelta(minutes=5))
    mine = TicketFactory(queued_at=now)
    assert _position(mine) == 3

    services.ticket_cancel(ticket_id=first.pk, caller=customer)
    assigned(second, AgentFactory())

    assert _position(mine) == 1
    second.refresh_from_db()
    assert selectors.queue_place(ticket=second) is None


def test_the_estimate_falls_back_when_the_service_rate_is_unknown(settings):
    settings.HUMANLINE = {**settings.HUMANLINE, "QUEUE_ETA_FALLBACK_SECONDS": 120}
    TicketFactory(queued_at=timezone.now() - timedelta(minutes=1))
    mine = TicketFactory()

    assert selectors.queue_place(ticket=mine).eta_seconds == 2 * 120


def test_the_estimate_follows_the_recent_service_rate():
    # given: 6 tickets of the lane were assigned in the last 30 minutes: one per 5 minutes
    for _ in range(6):
        assigned(TicketFactory(), AgentFactory())
    # ... and 10 of another lane, which do not count
    for _ in range(10):
        assigned(TicketFactory(language="pt"), AgentFactory(languages=["pt"]))
    TicketFactory(queued_at=timezone.now() - timedelta(minutes=2))
    mine = TicketFactory()

    place = selectors.queue_place(ticket=mine)

    assert place.position == 2
    assert place.eta_seconds == 2 * 300


def test_positions_are_pushed_to_the_lane_when_a_ticket_leaves_it(
    customer, pushed, django_capture_on_commit_callbacks
):
    now = timezone.now()
    first = TicketFactory(queued_at=now - timedelta(minutes=9), customer=customer)
    second = TicketFactory(queued_at=now - timedelta(minutes=5))
    unwatched = TicketFactory(queued_at=now - timedelta(minutes=4))
    elsewhere = TicketFactory(language="pt")
    for ticket in (first, second, elsewhere):  # each with its page open
        events.watching(ticket.pk)

    with django_capture_on_commit_callbacks(execute=True):
        services.ticket_cancel(ticket_id=first.pk, caller=customer)

    positions = {
        ticket_id: event["queue_position"]
        for ticket_id, event in pushed
        if event["type"] == "queue.position"
    }
    # Second in line moved up; the third has no socket open, so nobody is told.
    assert positions == {second.pk: 1}
    assert unwatched.pk not in positions and elsewhere.pk not in positions
    assert (first.pk, "ticket.status") in [(t, e["type"]) for t, e in pushed]


def test_a_new_ticket_reads_its_place_in_the_answer_and_watched_ones_are_pushed(
    api, customer, pushed, django_capture_on_commit_callbacks
):
    ahead = TicketFactory(category="payments")
    events.watching(ahead.pk)

    with django_capture_on_commit_callbacks(execute=True):
        response = api.as_(customer).post(
            "/api/v1/tickets/", {"subject": "S", "body": "B", "category": "payments"}
        )

    mine = response.json()["id"]
    assert response.json()["queue_position"] == 2
    # Its page is not open yet (the socket's snapshot will carry the place).
    assert [e for t, e in pushed if t == mine] == []
    assert [e for t, e in pushed if t == ahead.pk] == [
        {"type": "queue.position", "ticket_id": ahead.pk, "queue_position": 1, "eta_seconds": 180}
    ]


def test_each_process_keeps_a_lanes_service_rate_for_a_few_seconds(settings):
    settings.HUMANLINE = {**settings.HUMANLINE, "QUEUE_ETA_CACHE_SECONDS": 60}
    TicketFactory(queued_at=timezone.now() - timedelta(minutes=2))
    mine = TicketFactory()
    fallback = settings.HUMANLINE["QUEUE_ETA_FALLBACK_SECONDS"]
    assert selectors.queue_place(ticket=mine).eta_seconds == 2 * fallback

    # Six assignments in the window: one every 5 minutes, once the rate is read again.
    for _ in range(6):
        assigned(TicketFactory(), AgentFactory())
    assert selectors.queue_place(ticket=mine).eta_seconds == 2 * fallback  # kept

    selectors.rate_cache_clear()
    assert selectors.queue_place(ticket=mine).eta_seconds == 2 * 300


def _line_in_python(tickets) -> dict[int, int]:
    """The rule, spelled out: each waiting ticket's place among its lane's waiting tickets."""
    rank = {"urgent": 3, "high": 2, "normal": 1}
    waiting = [t for t in tickets if t.status in ("queued", "offered")]
    places = {}
    for ticket in waiting:
        ahead = [
            other
            for other in waiting
            if (other.language, other.category) == (ticket.language, ticket.category)
            and (-rank[other.priority], other.queued_at, other.pk)
            < (-rank[ticket.priority], ticket.queued_at, ticket.pk)
        ]
        places[ticket.pk] = len(ahead) + 1
    return places


def test_both_statements_place_every_ticket_as_the_rule_does(customer):
    now = timezone.now()
    same_moment = now - timedelta(minutes=3)
    rows = [
        # (priority, minutes waiting, status, language, category)
        ("normal", 10, "queued", "en", "general"),
        ("normal", 3, "queued", "en", "general"),
        ("normal", 3, "offered", "en", "general"),  # a tie on queued_at: the id decides
        ("high", 1, "queued", "en", "general"),
        ("high", 8, "offered", "en", "general"),
        ("urgent", 0, "queued", "en", "general"),
        ("normal", 20, "queued", "pt", "general"),  # another lane
        ("urgent", 20, "queued", "en", "payments"),  # another lane
        ("high", 30, "cancelled", "en", "general"),  # no longer waiting
    ]
    tickets = [
        TicketFactory(
            priority=priority,
            queued_at=same_moment if minutes == 3 else now - timedelta(minutes=minutes),
            status=status,
            language=language,
            category=category,
        )
        for priority, minutes, status, language, category in rows
    ]
    expected = _line_in_python(tickets)

    by_place = {t.pk: selectors.queue_place(ticket=t) for t in tickets}
    by_standing = {t.pk: selectors.ticket_standing(ticket=t) for t in tickets}

    assert {pk: place.position for pk, place in by_place.items() if place} == expected
    assert {pk: place.position for pk, (_, place) in by_standing.items() if place} == expected
    assert [status for status, _ in by_standing.values()] == [row[2] for row in rows]
    assert [expected[t.pk] for t in tickets[:6]] == [4, 5, 6, 3, 2, 1]  # the rule itself
    # The ORM's form of the same order (dispatch's lanes, the pushed places) agrees.
    lane = Ticket.objects.filter(
        status__in=["queued", "offered"], language="en", category="general"
    ).order_by(*queue_order())
    assert {t.pk: n for n, t in enumerate(lane, start=1)} == {
        pk: n for pk, n in expected.items() if pk in {t.pk for t in tickets[:6]}
    }


def test_the_standing_is_read_from_the_database_not_from_memory(customer):
    ticket = TicketFactory(queued_at=timezone.now())
    TicketFactory(queued_at=timezone.now() - timedelta(minutes=1))
    stale = Ticket.objects.get(pk=ticket.pk)
    Ticket.objects.filter(pk=ticket.pk).update(status="cancelled")

    assert selectors.ticket_standing(ticket=stale) == ("cancelled", None)
    assert selectors.queue_place(ticket=stale).position == 2  # the ticket as in memory


def test_while_one_thread_counts_a_lanes_rate_again_the_others_keep_the_old_one(settings):
    settings.HUMANLINE = {**settings.HUMANLINE, "QUEUE_ETA_CACHE_SECONDS": 60}
    fallback = settings.HUMANLINE["QUEUE_ETA_FALLBACK_SECONDS"]
    assert selectors.seconds_per_ticket(language="en", category="general") == fallback
    for _ in range(6):
        assigned(TicketFactory(), AgentFactory())
    lane = ("en", "general")
    selectors._rate_cache[lane] = (0.0, selectors._rate_cache[lane][1])  # it ran out

    # Another thread is counting it again (holds the lock).
    with selectors._rate_refreshing, CaptureQueriesContext(connection) as queries:
        assert selectors.seconds_per_ticket(language="en", category="general") == fallback
    assert len(queries.captured_queries) == 0

    assert selectors.seconds_per_ticket(language="en", category="general") == 300  # counted
    assert selectors.seconds_per_ticket(language="en", category="general") == 300  # and kept


def test_a_lanes_rate_counts_its_tickets_assigned_in_the_window_only():
    now = timezone.now()
    for language, category in [("en", "general"), ("en", "general"), ("pt", "general")]:
        assigned(TicketFactory(language=language, category=category), AgentFactory())
    assigned(TicketFactory(category="payments"), AgentFactory())
    resolved(TicketFactory(), AgentFactory())  # served, then resolved: it still counts
    TicketFactory()  # waiting, never assigned
    old = TicketFactory()
    assigned(old, AgentFactory())
    Ticket.objects.filter(pk=old.pk).update(assigned_at=now - timedelta(hours=2))
    back = TicketFactory()
    assigned(back, AgentFactory())
    services.ticket_requeue(ticket_id=back.pk, reason="Agent dropped out.")  # back in line

    since = now - timedelta(minutes=30)

    def served(language, category, limit=50):
        return selectors.served_in_lane(
            language=language, category=category, since=since, limit=limit
        )[0]

    assert served("en", "general") == 3
    assert served("pt", "general") == 1
    assert served("en", "payments") == 1
    assert served("de", "general") == 0
    assert served("en", "general", limit=2) == 2


def test_a_lane_busier_than_the_samples_is_timed_over_its_last_samples(settings):
    settings.HUMANLINE = {
        **settings.HUMANLINE,
        "QUEUE_ETA_SAMPLES": 4,
        "QUEUE_ETA_MIN_SAMPLES": 3,
        "QUEUE_ETA_WINDOW_MINUTES": 30,
    }
    now = timezone.now()
    tickets = [TicketFactory() for _ in range(6)]
    for ticket in tickets:
        assigned(ticket, AgentFactory())
    # One assignment every 20 minutes ago ... 0: the last four took 80 s.
    for seconds_ago, ticket in zip([900, 300, 80, 60, 40, 20], tickets, strict=True):
        Ticket.objects.filter(pk=ticket.pk).update(assigned_at=now - timedelta(seconds=seconds_ago))

    assert selectors.served_in_lane(
        language="en", category="general", since=now - timedelta(minutes=30), limit=4
    ) == (4, now - timedelta(seconds=80))
    assert selectors.seconds_per_ticket(language="en", category="general", now=now) == 80 / 4

    # Below the samples the whole window is the measure: 3 in 30 minutes.
    Ticket.objects.filter(pk__in=[t.pk for t in tickets[:3]]).update(
        assigned_at=now - timedelta(hours=1)
    )
    assert selectors.seconds_per_ticket(language="en", category="general", now=now) == 1800 / 3


@pytest.mark.postgres("reads PostgreSQL's query plans (EXPLAIN) under stale statistics")
def test_a_lanes_rate_reads_no_more_than_its_samples_whatever_the_statistics_say(settings):
    # Statistics taken while the tables are empty, as on a new deployment: the
    # planner then believes a lane holds one ticket.  The count this replaced
    # was planned on that belief to read the window again for each of the
    # lane's tickets (1.1–1.6 s of a core per count with 2,000 tickets).
    agent = AgentFactory()
    customer = TicketFactory().customer
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Ticket._meta.db_table}, {TicketEvent._meta.db_table}")
        # Then a busy day: 6,000 tickets served in two lanes, one every 0.3 s.
        cursor.execute(
            f"INSERT INTO {Ticket._meta.db_table} (customer_id, subject, body, language,"
            " category, priority, status, handoff_transcript, handoff_summary, handoff_intent,"
            " assigned_agent_id, assigned_at, queued_at, resolved_at, reopen_count, created_at,"
            " status_changed_at)"
            " SELECT %(customer)s, 'S', 'B', CASE WHEN g %% 3 = 0 THEN 'pt' ELSE 'en' END,"
            " 'general', 'normal', 'resolved', '[]', '', '', %(agent)s, at, at, at, 0, at, at"
            " FROM generate_series(1, 6000) g,"
            " LATERAL (SELECT now() - g * interval '300 milliseconds' AS at) t",
            {"customer": customer.pk, "agent": agent.pk},
        )
    since = timezone.now() - timedelta(minutes=30)
    samples = 10

    assert selectors.served_in_lane(
        language="en", category="general", since=since, limit=samples
    ) == (samples, ANY)
    with connection.cursor() as cursor:
        cursor.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + selectors._served_sql(),
            ["en", "general", since, samples],
        )
        (plan,) = cursor.fetchone()

    def nodes(node):
        yield node
        for child in node.get("Plans", []):
            yield from nodes(child)

    work = [
        (
            node["Node Type"],
            node["Actual Rows"] * node["Actual Loops"]
            + node.get("Rows Removed by Filter", 0) * node["Actual Loops"],
        )
        for node in nodes(plan[0]["Plan"])
    ]
    # The lane's newest assignments through their index, no further than the samples.
    assert max(rows_read for _, rows_read in work) <= samples, work
    assert not [kind for kind, _ in work if kind in ("Seq Scan", "Sort")], work
