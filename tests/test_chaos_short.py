"""The chaos suite, short: "Redis may lose a message; PostgreSQL never loses a fact."

The production-like stack (two web processes, a worker, beat) on the test
database and a Redis server of this test's own, under a load of customers
and agents on the public API and real WebSockets, while a worker is killed
with -9, Redis is restarted, agents' sockets are cut, a web process is
killed with -9 and every database session is cut.  Then every invariant is
read from the database (``chaos.checks``).  ``make chaos`` runs the full
version, which also restarts PostgreSQL; this one never touches the
machine's PostgreSQL or Redis servers.
"""

import os

import pytest
from django.db import connection

from chaos import run, stack

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres("the stack's processes share the test database, and the checks are SQL"),
    pytest.mark.redis("runs a Redis server of its own, restarted during the load"),
]


def _database_url() -> str:
    database = connection.settings_dict
    return (
        f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:"
        f"{database['PORT'] or 5432}/{database['NAME']}"
    )


@pytest.fixture
def private_redis(tmp_path):
    server = stack.PrivateRedis(tmp_path)
    server.start()
    yield server
    server.kill()


def test_no_fact_is_lost_while_processes_die_under_load(private_redis, tmp_path):
    options = run.Options(
        seconds=30,
        agents=10,
        customers=16,
        faults=["worker_kill", "redis_restart", "socket_drop", "web_kill", "db_sessions_cut"],
        offer_window=6,
        ping_seconds=5,
        redis=private_redis,
        workdir=tmp_path,
        env={
            **os.environ,
            "DATABASE_URL": _database_url(),
            "REDIS_URL": private_redis.url(0),
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "LOG_LEVEL": "WARNING",
            # Persistent connections, as deployed (the suite keeps none in its own process).
            "DB_CONN_MAX_AGE": "300",
        },
    )

    outcome = run.run(options)

    table = run.report(outcome)
    print(table)
    assert [f.kind for f in outcome.faults] == options.faults
    assert "PostgreSQL restart | skipped" in table
    assert outcome.load.tally.resolved > 0, table
    failed = [c.name for c in outcome.checks if not c.ok]
    assert failed == [], table
