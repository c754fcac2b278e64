"""Indexes on busy tables are built without holding their writes back."""

import io

import pytest
from django.core.management import call_command
from django.db import connection

# sqlmigrate opens a schema editor, which SQLite refuses inside a test's transaction.
pytestmark = pytest.mark.django_db(transaction=True)


def test_the_lanes_index_is_built_and_its_old_one_dropped_online_on_postgresql():
    out = io.StringIO()
    call_command("sqlmigrate", "tickets", "0005", stdout=out)
    sql = out.getvalue()

    online = connection.vendor == "postgresql"
    assert ('CREATE INDEX CONCURRENTLY "ticket_lane_served"' in sql) is online
    assert ('DROP INDEX CONCURRENTLY IF EXISTS "ticketevent_status_recent"' in sql) is online
    # Elsewhere (the embedded SQLite) the plain statements.
    assert ('CREATE INDEX "ticket_lane_served"' in sql) is not online
    assert "BEGIN;" not in sql  # outside a transaction: PostgreSQL requires it


def test_going_back_builds_the_old_index_online_too():
    out = io.StringIO()
    call_command("sqlmigrate", "tickets", "0005", backwards=True, stdout=out)
    sql = out.getvalue()

    online = connection.vendor == "postgresql"
    assert ('CREATE INDEX CONCURRENTLY "ticketevent_status_recent"' in sql) is online
    assert ('DROP INDEX CONCURRENTLY IF EXISTS "ticket_lane_served"' in sql) is online
