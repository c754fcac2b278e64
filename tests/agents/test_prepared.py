"""Hot hand-written statements prepared once per PostgreSQL connection (config.prepared)."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from config.prepared import Statement

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.postgres("prepared statements (PREPARE and EXECUTE)"),
]


def _run(statement, params):
    with CaptureQueriesContext(connection) as queries, connection.cursor() as cursor:
        statement.execute(connection, cursor, params)
        row = cursor.fetchone()
    return row, [q["sql"].split()[0] for q in queries.captured_queries]


def test_a_named_statement_is_prepared_once_then_executed_with_each_call_s_values():
    assert connection.vendor == "postgresql", "the suite runs on PostgreSQL"
    sums = Statement("test_prepared_sum", "SELECT %(a)s::int + %(b)s::int + %(a)s::int")

    first, sent_first = _run(sums, {"a": 1, "b": 2})
    second, sent_second = _run(sums, {"b": 10, "a": 5})

    assert (first, second) == ((4,), (20,))  # a name used twice is one parameter
    assert sent_first == ["PREPARE", "EXECUTE"]
    assert sent_second == ["EXECUTE"]


def test_a_positional_statement_and_a_rollback_in_between():
    pairs = Statement("test_prepared_pair", "SELECT %s::text || '-' || %s::text")
    assert _run(pairs, ["a", "b"])[0] == ("a-b",)

    with pytest.raises(ZeroDivisionError), transaction.atomic():
        _run(pairs, ["c", "d"])
        raise ZeroDivisionError  # the transaction that used it rolls back

    row, sent = _run(pairs, ["e", "f"])
    assert row == ("e-f",) and sent == ["EXECUTE"]  # still prepared on this connection


@pytest.mark.django_db(transaction=True)
def test_a_new_connection_prepares_it_again():
    once = Statement("test_prepared_new_connection", "SELECT %(n)s::int * 2")
    assert _run(once, {"n": 2}) == ((4,), ["PREPARE", "EXECUTE"])

    connection.close()

    assert _run(once, {"n": 3}) == ((6,), ["PREPARE", "EXECUTE"])


def test_two_objects_for_one_statement_prepare_it_once_per_connection():
    # Modules make their statement on first use; two threads may both make one.
    sql = "SELECT %(n)s::int + 1"
    first, twin = Statement("test_prepared_twin", sql), Statement("test_prepared_twin", sql)

    assert _run(first, {"n": 1}) == ((2,), ["PREPARE", "EXECUTE"])
    assert _run(twin, {"n": 2}) == ((3,), ["EXECUTE"])  # no second PREPARE: it would fail


def test_with_preparing_off_the_statement_itself_runs(settings):
    settings.PREPARED_STATEMENTS = False
    plain = Statement("test_prepared_off", "SELECT %(a)s::int * 2")

    row, sent = _run(plain, {"a": 21})

    assert row == (42,)
    assert sent == ["SELECT"]  # neither PREPARE nor EXECUTE: a pooler in transaction mode
