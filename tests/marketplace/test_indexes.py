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
