"""The per-process connection pool (config.pgpool) against the real PostgreSQL."""

import threading

import pytest
from django.db import connection as default_connection

from config.pgpool import base as pgpool

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.postgres("config.pgpool hands PostgreSQL connections between threads"),
]


@pytest.fixture
def wrapper_factory():
    """Pooled wrappers on the test database; the pool is emptied afterwards."""
    made = []

    def make(**pool):
        settings = {**default_connection.settings_dict, "POOL": pool}
        wrapper = pgpool.DatabaseWrapper(settings, alias="pooled")
        made.append(wrapper)
        return wrapper

    yield make
    for wrapper in made:
        wrapper.close()
    pgpool.POOL.clear()


def backend_pid(wrapper) -> int:
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_a_closed_connection_is_reused_by_the_next_wrapper_on_another_thread(wrapper_factory):
    first = wrapper_factory()
    pid = backend_pid(first)
    first.close()
    assert pgpool.POOL.idle_count() == 1

    seen = []

    def on_another_thread():
        other = pgpool.DatabaseWrapper(
            {**default_connection.settings_dict, "POOL": {}}, alias="pooled"
        )
        seen.append(backend_pid(other))
        other.close()

    thread = threading.Thread(target=on_another_thread)
    thread.start()
    thread.join(10)

    assert seen == [pid]


def test_a_connection_comes_back_rolled_back(wrapper_factory):
    first = wrapper_factory()
    first.set_autocommit(False)
    with first.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE scratch (n int)")
        cursor.execute("INSERT INTO scratch VALUES (1)")
    first.close()  # mid-transaction: the pool rolls it back

    second = wrapper_factory()
    with second.cursor() as cursor:
        cursor.execute("SELECT to_regclass('pg_temp.scratch') IS NULL")
        assert cursor.fetchone()[0] is True  # the uncommitted table is gone
    assert second.get_autocommit() is True


def test_a_failed_transaction_is_cleaned_before_reuse(wrapper_factory):
    from django.db import DatabaseError

    first = wrapper_factory()
    first.set_autocommit(False)
    with pytest.raises(DatabaseError), first.cursor() as cursor:
        cursor.execute("SELECT 1 / 0")
    first.close()

    second = wrapper_factory()
    with second.cursor() as cursor:
        cursor.execute("SELECT 41 + 1")
        assert cursor.fetchone()[0] == 42


def test_no_more_idle_connections_than_the_size_are_kept(wrapper_factory):
    wrappers = [wrapper_factory(SIZE=2) for _ in range(3)]
    pids = {backend_pid(w) for w in wrappers}
    assert len(pids) == 3  # all three open at once: three connections
    for wrapper in wrappers:
        wrapper.close()
    assert pgpool.POOL.idle_count() == 2


def test_a_connection_idle_too_long_is_closed_not_reused(wrapper_factory):
    first = wrapper_factory(MAX_IDLE_SECONDS=-1)
    pid = backend_pid(first)
    raw = first.connection
    first.close()

    second = wrapper_factory(MAX_IDLE_SECONDS=-1)
    assert backend_pid(second) != pid
    assert raw.closed


def test_a_connection_whose_server_session_ended_while_idle_is_not_handed_out(wrapper_factory):
    # A PostgreSQL restart (or an administrator's pg_terminate_backend) ends the
    # sessions of the pool's idle connections; the next request used to take one
    # and fail with a 500, once for every connection the pool held.
    first = wrapper_factory()
    dead_pid = backend_pid(first)
    first.close()
    with default_connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [dead_pid])
    _wait_until_gone(dead_pid)

    second = wrapper_factory()
    pid = backend_pid(second)  # before: OperationalError, "terminating connection"

    assert pid != dead_pid
    assert pgpool.POOL.idle_count() == 0


def _wait_until_gone(pid: int) -> None:
    """pg_terminate_backend signals the backend; its exit follows a moment later."""
    import time

    for _ in range(200):
        with default_connection.cursor() as cursor:
            # The statistics views are read once per transaction, and the test's
            # transaction lasts: drop that snapshot so each look is a new one.
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
            if cursor.fetchone()[0] == 0:
                return
        time.sleep(0.05)  # waiting for another process to exit
    raise AssertionError(f"backend {pid} did not exit")
