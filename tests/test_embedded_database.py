"""The embedded default's database: one SQLite file that many threads write to.

The test database is a file set up as ``make run``'s (config/settings.py):
write-ahead logging, IMMEDIATE transactions and a busy timeout.
"""

import threading

import pytest
from django.db import connection, transaction

from agents.models import User

pytestmark = pytest.mark.sqlite("reads SQLite's own settings of the connection")


@pytest.mark.django_db
def test_the_connection_writes_ahead_and_waits_for_the_write_lock():
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        journal_mode = cursor.fetchone()[0]
        cursor.execute("PRAGMA synchronous")
        synchronous = cursor.fetchone()[0]
        cursor.execute("PRAGMA busy_timeout")
        busy_timeout_ms = cursor.fetchone()[0]

    assert journal_mode == "wal"  # an in-memory database would say "memory"
    assert synchronous == 1  # NORMAL: safe in WAL mode, one fsync per checkpoint
    assert busy_timeout_ms == 20_000
    assert connection.transaction_mode == "IMMEDIATE"


@pytest.mark.django_db(transaction=True)  # two threads, two connections, real commits
def test_a_second_writer_waits_for_the_first_instead_of_failing(customer):
    # given: a transaction holding the write lock
    holding, release = threading.Event(), threading.Event()
    asking = threading.Event()
    outcomes: list = []

    def first():
        try:
            with transaction.atomic():
                User.objects.filter(pk=customer.pk).update(name="First")
                holding.set()
                assert release.wait(timeout=20)
            outcomes.append("first committed")
        finally:
            connection.close()

    def second():
        try:
            connection.ensure_connection()
            # Called as each statement starts: BEGIN IMMEDIATE then waits for the lock.
            connection.connection.set_trace_callback(
                lambda sql: asking.set() if sql.startswith("BEGIN") else None
            )
            with transaction.atomic():
                User.objects.filter(pk=customer.pk).update(name="Second")
            outcomes.append("second committed")
        except Exception as error:  # "database is locked", had it not waited
            outcomes.append(repr(error))
        finally:
            connection.close()

    writer = threading.Thread(target=first)
    writer.start()
    assert holding.wait(timeout=20)

    # when: a second writer begins meanwhile, and only then the first commits
    other = threading.Thread(target=second)
    other.start()
    assert asking.wait(timeout=20)
    release.set()
    writer.join(timeout=30)
    other.join(timeout=30)

    # then: the second waited its turn and wrote after the first
    assert sorted(outcomes) == ["first committed", "second committed"]
    customer.refresh_from_db()
    assert customer.name == "Second"
