"""Races with real threads and real commits: pay once, close once, nothing slips past a close."""

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, connections, transaction

from marketplace.models import EntryKind, LedgerEntry, PayPeriod
from marketplace.services import ledger, payroll
from tests.pay.helpers import accept, online
from tests.tickets.factories import TicketFactory
from tickets import services as ticket_services

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("short_lived_db_connections"),
]

MONDAY = datetime(2030, 1, 7, tzinfo=UTC)


def run_together(*functions):
    """Start the functions in threads at once; their results or exceptions, in order."""
    barrier = threading.Barrier(len(functions))
    results: list = [None] * len(functions)

    def worker(index, function):
        try:
            barrier.wait(timeout=10)
            results[index] = function()
        except Exception as exc:  # the loser's error is part of the result
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i, f)) for i, f in enumerate(functions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_concurrent_resolves_pay_the_assignment_once(agent, clock):
    online(agent)
    ticket = TicketFactory()
    accept(ticket, agent)

    def resolve():
        return ticket_services.ticket_resolve(ticket_id=ticket.pk, caller=agent.user)

    results = run_together(resolve, resolve, resolve)

    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert LedgerEntry.objects.filter(kind=EntryKind.TASK).count() == 1


def test_the_unique_index_pays_once_even_without_the_ticket_lock(agent, clock):
    # The resolve path holds the ticket's lock; this drives the booking itself
    # from two transactions at once, so only the database's unique index decides.
    online(agent)
    ticket = TicketFactory()
    accept(ticket, agent)
    ticket_services.ticket_resolve(ticket_id=ticket.pk, caller=agent.user)
    LedgerEntry.objects.all()  # one task already; book two more attempts racing
    first_task = LedgerEntry.objects.get()

    def book():
        with transaction.atomic():
            return ledger._book(
                agent=agent,
                kind=EntryKind.TASK,
                amount=first_task.amount,
                currency="EUR",
                ticket=ticket,
                offer=first_task.offer,
                assignment=first_task.assignment,
            )

    assert run_together(book, book) == [None, None]
    assert LedgerEntry.objects.filter(kind=EntryKind.TASK).count() == 1


def test_concurrent_first_payments_create_one_period_and_one_entry_each(agent, staff, clock):
    def adjust():
        return ledger.adjustment_create(actor=staff, agent_id=agent.pk, amount="1.00", reason="x")

    results = run_together(adjust, adjust, adjust, adjust)
    assert not [r for r in results if isinstance(r, Exception)]
    assert PayPeriod.objects.count() == 1
    assert LedgerEntry.objects.count() == 4


def test_concurrent_closes_close_once_with_one_floor_each(agent, staff, clock):
    online(agent)
    ticket = TicketFactory()
    ticket_services.ticket_assign(ticket_id=ticket.pk, agent_id=agent.pk)
    clock.shift(timedelta(hours=2))
    ticket_services.ticket_resolve(ticket_id=ticket.pk, caller=agent.user)
    period = LedgerEntry.objects.get().period
    clock.move_to(MONDAY + timedelta(days=7, hours=1))

    def close():
        return payroll.pay_period_close(period_id=period.pk, actor=staff)

    results = run_together(close, close, close)

    assert all(isinstance(r, PayPeriod) for r in results)
    assert LedgerEntry.objects.filter(kind=EntryKind.EARNINGS_FLOOR).count() == 1
    period.refresh_from_db()
    assert period.status == "closed"
    assert period.entry_count == LedgerEntry.objects.filter(period=period).count() == 2


class LockWait:
    """Tells the test when a thread's next transaction waits for another's lock."""

    def __init__(self):
        self.pid: int | None = None
        self.began = threading.Event()

    def watch(self) -> None:
        """In the waiting thread, before its transaction."""
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                self.pid = cursor.fetchone()[0]
            return
        # SQLite: one writer at a time, and each transaction asks for the write lock
        # as it begins (BEGIN IMMEDIATE); the trace is called as that statement starts.
        connection.ensure_connection()
        connection.connection.set_trace_callback(
            lambda sql: self.began.set() if sql.startswith("BEGIN") else None
        )

    def wait(self, deadline: float = 10.0) -> None:
        if connection.vendor != "postgresql":
            assert self.began.wait(deadline), "the close never began"
            return
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.pid is not None:
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [self.pid]
                    )
                    row = cursor.fetchone()
                if row and row[0] == "Lock":
                    return
            time.sleep(0.01)  # polling another backend's state, not synchronising app code
        raise AssertionError("the close never waited for the entry in flight")


def test_a_close_waits_for_an_entry_in_flight_and_counts_it(agent, staff, clock):
    # Given an adjustment being written in the week, its transaction still open
    period = ledger.period_get_or_create(MONDAY + timedelta(hours=9))
    written, release = threading.Event(), threading.Event()

    def write_entry():
        try:
            with transaction.atomic():
                ledger.adjustment_create(
                    actor=staff, agent_id=agent.pk, amount="7.00", reason="late"
                )
                written.set()
                release.wait(timeout=10)
        finally:
            connections.close_all()

    lock_wait = LockWait()

    def close_week():
        try:
            lock_wait.watch()
            payroll.pay_period_close(
                period_id=period.pk, actor=staff, now=MONDAY + timedelta(days=7)
            )
        finally:
            connections.close_all()

    writer = threading.Thread(target=write_entry)
    writer.start()
    assert written.wait(timeout=10)
    # When the week is closed meanwhile
    closer = threading.Thread(target=close_week)
    closer.start()
    lock_wait.wait()
    release.set()
    writer.join(timeout=10)
    closer.join(timeout=10)

    # Then the close waited for the entry and its snapshot includes it
    period.refresh_from_db()
    assert period.status == "closed"
    assert period.entry_count == 1 and period.totals == {"EUR": "7.00"}
