"""The database itself keeps the ledger append-only and closed periods frozen.

PostgreSQL's triggers (migration 0005) and SQLite's (migration 0008) refuse the
same changes, but for DELETE: SQLite has no TRUNCATE, so emptying a table there
(Django's flush) deletes rows, and refusing DELETE is left to PostgreSQL.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction

from marketplace.models import EntryKind, LedgerEntry, PayPeriod
from marketplace.services import ledger, payroll

pytestmark = pytest.mark.django_db


@pytest.fixture
def entry(agent, staff, clock):
    return ledger.adjustment_create(actor=staff, agent_id=agent.pk, amount="3.00", reason="Test")


def test_the_database_refuses_to_update_a_ledger_entry(entry):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        LedgerEntry.objects.filter(pk=entry.pk).update(amount=Decimal("300.00"))
    entry.refresh_from_db()
    assert entry.amount == Decimal("3.00")


NO_TRUNCATE = "refusing DELETE needs TRUNCATE to empty a table; SQLite has none"


@pytest.mark.postgres(NO_TRUNCATE)
def test_the_database_refuses_to_delete_a_ledger_entry(entry):
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM marketplace_ledgerentry WHERE id = %s", [entry.pk])
    assert LedgerEntry.objects.filter(pk=entry.pk).exists()


def test_saving_a_loaded_entry_again_is_refused_too(entry):
    entry.reason = "rewritten"
    with pytest.raises(DatabaseError), transaction.atomic():
        entry.save()


def test_the_database_refuses_an_entry_in_a_closed_period(entry, staff, clock):
    clock.shift(timedelta(days=7))
    period = payroll.pay_period_close(period_id=entry.period_id, actor=staff)
    with pytest.raises(DatabaseError, match="closed"), transaction.atomic():
        LedgerEntry.objects.create(
            agent=entry.agent,
            kind=EntryKind.ADJUSTMENT,
            amount=Decimal("1.00"),
            currency="EUR",
            period=period,
            reason="sneaked in",
            created_by=staff,
        )


def test_the_database_refuses_to_reopen_a_closed_period(entry, staff, clock):
    clock.shift(timedelta(days=7))
    payroll.pay_period_close(period_id=entry.period_id, actor=staff)
    with pytest.raises(DatabaseError, match="frozen"), transaction.atomic():
        PayPeriod.objects.filter(pk=entry.period_id).update(status="open", closed_at=None)
    assert PayPeriod.objects.get(pk=entry.period_id).status == "closed"


@pytest.mark.postgres(NO_TRUNCATE)
def test_the_database_refuses_to_delete_a_closed_period(entry, staff, clock):
    clock.shift(timedelta(days=7))
    payroll.pay_period_close(period_id=entry.period_id, actor=staff)
    with (
        pytest.raises(DatabaseError, match="frozen"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM marketplace_payperiod WHERE id = %s", [entry.period_id])


@pytest.mark.parametrize(
    ("kind", "amount"),
    [("reversal", "2.00"), ("quality_bonus", "-1.00"), ("earnings_floor", "0"), ("task", "1")],
)
def test_each_kind_keeps_its_sign_and_names_its_cause(entry, kind, amount):
    with pytest.raises(DatabaseError), transaction.atomic():
        LedgerEntry.objects.create(
            agent=entry.agent,
            kind=kind,
            amount=Decimal(amount),
            currency="EUR",
            period=entry.period,
        )
