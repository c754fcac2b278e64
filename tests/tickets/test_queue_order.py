"""Places in line from each process's kept order of the lane: exact for what the
process wrote, within QUEUE_ORDER_SECONDS of what others wrote, and no count of
the queue per ticket shown."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import AgentFactory, UserFactory
from tests.tickets.factories import TicketFactory, assigned, new_ticket_body
from tickets import selectors, services
from tickets.models import WAITING, Ticket, queue_order

pytestmark = pytest.mark.django_db


def counted(ticket: Ticket) -> int:
    """The place by the definition: 1 + the waiting tickets of the lane before it."""
    line = list(
        Ticket.objects.filter(
            status__in=WAITING, language=ticket.language, category=ticket.category
        )
        .order_by(*queue_order())
        .values_list("id", flat=True)
    )
    return line.index(ticket.pk) + 1


def kept(ticket: Ticket) -> int:
    ticket.refresh_from_db()
    return selectors.queue_place(ticket=ticket).position


def test_places_stay_exact_through_this_processes_changes(customer, other_customer):
    agent = AgentFactory()
    opened = [
        services.ticket_open(
            caller=who, new=services.NewTicket(subject=f"T{n}", body="Help", category="general")
        ).ticket
        for n, who in enumerate([customer, other_customer, customer, other_customer])
    ]
    assert [kept(t) for t in opened] == [1, 2, 3, 4]  # the order is read and kept now

    # Each change is applied to the kept order as it is written.
    services.ticket_cancel(ticket_id=opened[0].pk, caller=customer)
    assigned(opened[2], agent)
    later = services.ticket_open(
        caller=customer, new=services.NewTicket(subject="Later", body="Help", category="general")
    ).ticket
    services.ticket_language_change(ticket_id=opened[3].pk, caller=other_customer, language="pt")

    waiting = [t for t in [*opened, later] if Ticket.objects.get(pk=t.pk).status in WAITING]
    assert [kept(t) for t in waiting] == [counted(t) for t in waiting]
    assert [kept(t) for t in waiting] == [1, 1, 2]  # opened[1], opened[3] alone in pt, later


def test_another_processes_change_shows_within_the_order_s_age(settings):
    settings.HUMANLINE = {**settings.HUMANLINE, "QUEUE_ORDER_SECONDS": 0.5}
    now = timezone.now()
    mine = TicketFactory(queued_at=now - timedelta(minutes=1))
    assert kept(mine) == 1

    # Written the way another process would: not through this process's services.
    TicketFactory(queued_at=now - timedelta(minutes=5))
    lagging = kept(mine)
    time.sleep(0.6)  # past QUEUE_ORDER_SECONDS: the order is read again

    assert lagging == 1  # within the documented tolerance
    assert kept(mine) == 2 == counted(mine)


def test_a_list_page_reads_no_queue_per_ticket(api, customer):
    for n in range(3):
        TicketFactory(customer=UserFactory(), subject=f"Ahead {n}")
    for n in range(3):
        TicketFactory(customer=customer, subject=f"Mine {n}")
    client = api.as_(customer)
    client.get("/api/v1/tickets/")  # reads the lane's order once

    with CaptureQueriesContext(connection) as queries:
        page = client.get("/api/v1/tickets/?page_size=3").json()

    assert sorted(t["queue_position"] for t in page["results"]) == [4, 5, 6]
    ahead = [q["sql"] for q in queries if "ORDER BY" in q["sql"] and "COUNT" in q["sql"]]
    assert ahead == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres("concurrent creates need PostgreSQL's row locks and connections")
def test_places_under_concurrent_creates_are_exact_once_written(api):
    customers = [UserFactory() for _ in range(8)]
    answers: list[int] = []
    lock = threading.Lock()

    def open_one(customer):
        from rest_framework.test import APIClient

        client = APIClient()
        client.force_authenticate(customer)
        try:
            response = client.post("/api/v1/tickets/", new_ticket_body(category="general"))
            with lock:
                answers.append(response.json()["queue_position"])
        finally:
            connection.close()

    threads = [threading.Thread(target=open_one, args=(c,)) for c in customers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Each answer counted what this process knew as the ticket was written: never
    # more than the tickets written, never fewer than one.
    assert len(answers) == 8 and all(1 <= n <= 8 for n in answers)
    line = list(Ticket.objects.order_by(*queue_order()))
    assert [kept(t) for t in line] == list(range(1, 9)) == [counted(t) for t in line]


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres("threads racing on one lane need PostgreSQL's connections")
def test_a_read_overtaken_by_a_commit_keeps_that_commit():
    """A thread reads the lane; before it keeps what it read, another commits a
    ticket.  The kept order must hold that ticket, or every place behind it is
    one short until the next read."""
    first = TicketFactory(category="general")
    selectors.lane_orders_clear()
    read, go, seen = threading.Event(), threading.Event(), []

    def hold_after_the_read(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if not read.is_set():  # the lane's read, this thread's first statement
            read.set()
            go.wait(10)
        return result

    def reader():
        try:
            with connection.execute_wrapper(hold_after_the_read):
                seen.append(selectors.queue_place(ticket=first).position)
        finally:
            connection.close()

    thread = threading.Thread(target=reader)
    thread.start()
    assert read.wait(10)
    overtaking = services.ticket_open(
        caller=UserFactory(), new=services.NewTicket(subject="B", body="Help", category="general")
    ).ticket
    go.set()
    thread.join(10)
    behind = services.ticket_open(
        caller=UserFactory(), new=services.NewTicket(subject="C", body="Help", category="general")
    ).ticket

    assert seen == [1]
    assert [kept(t) for t in (first, overtaking, behind)] == [1, 2, 3]
    assert [counted(t) for t in (first, overtaking, behind)] == [1, 2, 3]


@pytest.mark.django_db(transaction=True)
def test_a_request_counts_its_place_instead_of_waiting_for_the_lanes_first_read():
    """A fresh process reading a line of 100,000 takes a second: meanwhile the
    other threads' requests count their place in the database."""
    now = timezone.now()
    line = [TicketFactory(queued_at=now - timedelta(minutes=10 - n)) for n in range(4)]
    urgent = TicketFactory(queued_at=now, priority="urgent")  # ahead of them all
    selectors.lane_orders_clear()
    places, statements = {}, []

    def request():
        with CaptureQueriesContext(connection) as queries:
            places["third"] = selectors.queue_place(ticket=line[2]).position
            places["urgent"] = selectors.queue_place(ticket=urgent).position
        statements.extend(q["sql"] for q in queries)
        connection.close()

    assert selectors._orders_reading.acquire(blocking=False)  # a thread reading the lane
    try:
        other = threading.Thread(target=request)
        other.start()
        other.join(timeout=10)
        assert not other.is_alive(), "the request waited for the other thread's read"
    finally:
        selectors._orders_reading.release()

    assert places == {"third": counted(line[2]), "urgent": 1} == {"third": 4, "urgent": 1}
    # One count of the line ahead per place (and the lane's service rate, for the wait).
    assert sum("SELECT COUNT(*) FROM tickets_ticket x" in sql for sql in statements) == 2
    # The read done, places come from the kept order again: no statement.
    line[2].refresh_from_db()
    selectors.queue_place(ticket=line[2])
    with CaptureQueriesContext(connection) as queries:
        assert selectors.queue_place(ticket=line[2]).position == 4
    assert not any("COUNT(*) FROM tickets_ticket x" in q["sql"] for q in queries)
