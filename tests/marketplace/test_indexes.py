"""The hot tables carry no index another one already covers, and keep the invariants' own."""

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db

HOT = ["tickets_ticket", "tickets_ticketevent", "marketplace_offer"]


def _indexes(table: str) -> dict[str, dict]:
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, table)
    return {name: info for name, info in found.items() if info["index"] or info["unique"]}


@pytest.mark.parametrize("table", HOT)
def test_no_plain_single_column_index_is_the_lead_of_another(table):
    indexes = _indexes(table)
    covered = [
        name
        for name, info in indexes.items()
        if len(info["columns"]) == 1
        and not info["unique"]
        and not info["primary_key"]
        and any(
            other != name and len(o["columns"]) > 1 and o["columns"][0] == info["columns"][0]
            for other, o in indexes.items()
        )
    ]
    assert covered == []  # each is written on every insert and status change for nothing


def test_the_invariants_unique_indexes_are_there():
    offer = _indexes("marketplace_offer")
    assert offer["offer_one_pending_per_ticket"]["unique"]
    assert offer["offer_one_pending_per_agent"]["unique"]


def _plan(sql: str, params) -> str:
    """The plan PostgreSQL would run, told that sorting is dear: an ORDER BY the
    queue's index can serve is read from it; any other needs a Sort node."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("RESET enable_sort")
        cursor.execute("RESET enable_seqscan")
    return plan


@pytest.mark.postgres("reads PostgreSQL's query plans (EXPLAIN)")
def test_the_pull_and_the_pass_read_the_queue_in_the_order_of_its_index():
    from django.utils import timezone

    from marketplace.dispatch import rules
    from marketplace.services import dispatch
    from tests.factories import AgentFactory
    from tests.tickets.factories import TicketFactory

    agent = AgentFactory(languages=["en"], skills=["general"])
    for priority in ("normal", "urgent", "high", "normal"):
        TicketFactory(priority=priority)
    now = timezone.now()
    pull = rules.TICKETS_FOR, rules.statement_params(now, agent=agent.pk, settled=now, limit=4)
    lane = dispatch.lane_queue(language="en", category="general")[:100].query.sql_with_params()

    for statement in (pull, lane):
        plan = _plan(*statement)
        assert "ticket_queue_order" in plan, plan
        assert "Sort" not in plan, plan
