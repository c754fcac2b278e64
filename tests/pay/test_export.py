"""Payroll export: closed periods only, one row per agent, RFC 4180, formula-safe, same bytes."""

import csv
import hashlib
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from marketplace.models import LedgerEntry, PayrollExport
from marketplace.services import ledger, payroll
from tests.factories import AgentFactory
from tests.pay.helpers import accepted_and_resolved, rate, reopen

pytestmark = pytest.mark.django_db

NEXT_MONDAY = datetime(2030, 1, 14, 9, tzinfo=UTC)


@pytest.fixture
def closed_week(worker, colleague, staff, clock):
    """A week with tasks, a reversal, a bonus and adjustments for two agents, then closed."""
    kept, _ = accepted_and_resolved(worker, category="payments")  # 2.50
    rate(kept, 5)  # 0.50
    undone, _ = accepted_and_resolved(worker, category="general")  # 2.00
    reopen(undone)  # -2.00
    ledger.adjustment_create(actor=staff, agent_id=colleague.pk, amount="-1.25", reason="Dup")
    ledger.adjustment_create(
        actor=staff, agent_id=colleague.pk, amount="4.00", reason="Hat", currency_code="GBP"
    )
    period = LedgerEntry.objects.first().period
    clock.move_to(NEXT_MONDAY)
    return payroll.pay_period_close(period_id=period.pk, actor=staff)


def export_bytes(period, channel="api"):
    return b"".join(payroll.payroll_export(period_id=period.pk, actor=None, channel=channel))


def test_the_export_has_one_row_per_agent_and_currency_with_totals_by_kind(
    closed_week, worker, colleague
):
    rows = list(csv.DictReader(io.StringIO(export_bytes(closed_week).decode())))
    assert [(int(r["agent_id"]), r["currency"]) for r in rows] == [
        (worker.pk, "EUR"),
        (colleague.pk, "EUR"),
        (colleague.pk, "GBP"),
    ]
    mine = rows[0]
    assert mine["email"] == "aisha@example.org" and mine["cohort"] == "student"
    assert mine["task_count"] == "2"
    assert (mine["task"], mine["reversal"], mine["quality_bonus"]) == ("4.50", "-2.00", "0.50")
    assert mine["earnings_floor"] == "0.00" and mine["total"] == "3.00"
    assert rows[1]["adjustment"] == "-1.25" and rows[1]["total"] == "-1.25"


def test_the_export_totals_equal_the_ledger_to_the_cent(closed_week):
    rows = list(csv.DictReader(io.StringIO(export_bytes(closed_week).decode())))
    for code in ("EUR", "GBP"):
        exported = sum(Decimal(r["total"]) for r in rows if r["currency"] == code)
        entries = LedgerEntry.objects.filter(period=closed_week, currency=code)
        assert exported == sum(e.amount for e in entries)
        assert f"{exported:.2f}" == closed_week.totals[code]


def test_every_export_is_byte_identical_and_its_sha256_is_recorded(closed_week):
    first, second = export_bytes(closed_week), export_bytes(closed_week, channel="command")
    assert first == second
    recorded = list(PayrollExport.objects.order_by("id").values_list("sha256", "row_count"))
    assert recorded == [(hashlib.sha256(first).hexdigest(), 3)] * 2


def test_the_csv_is_rfc_4180_with_crlf_and_quoted_fields(closed_week, worker):
    worker.user.name = 'Aisha "Ace", Agent'
    worker.user.save()
    text = export_bytes(closed_week).decode()
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    assert '"Aisha ""Ace"", Agent"' in text


@pytest.mark.parametrize(
    "evil",
    [
        '=HYPERLINK("x")',
        "+1+1",
        "-2+3",
        "@SUM(A1)",
        "\tx",
        "\rx",
        "＝1+1",
        "＋1",
        "－2",
        "＠SUM(A1)",
    ],
)
def test_text_cells_a_spreadsheet_would_evaluate_are_neutralised(staff, clock, evil):
    agent = AgentFactory(user__name=evil)
    entry = ledger.adjustment_create(actor=staff, agent_id=agent.pk, amount="-1.00", reason="r")
    clock.move_to(NEXT_MONDAY)
    period = payroll.pay_period_close(period_id=entry.period_id, actor=staff)
    (row,) = list(csv.DictReader(io.StringIO(export_bytes(period).decode(), newline="")))
    assert row["name"] == "'" + evil
    # Amounts stay numbers: a negative total is the plain number, not text.
    assert row["total"] == "-1.00"


def test_amount_cells_are_plain_numbers_only():
    assert payroll.amount_cell(Decimal("-2.5")) == "-2.50"
    assert payroll.safe_text("-2.50") == "'-2.50"  # the same text in a name is neutralised
    with pytest.raises(ValueError):
        payroll.amount_cell(Decimal("Infinity"))


def test_an_open_period_cannot_be_exported(worker, clock):
    accepted_and_resolved(worker)
    period = LedgerEntry.objects.get().period
    with pytest.raises(payroll.InvalidTransition):
        payroll.payroll_export(period_id=period.pk, actor=None, channel="api")
    assert not PayrollExport.objects.exists()


def test_the_management_command_writes_the_same_bytes(closed_week, tmp_path):
    target = tmp_path / "payroll.csv"
    call_command("export_payroll", str(closed_week.pk), output=str(target), stderr=io.StringIO())
    by_date = tmp_path / "by-date.csv"
    call_command("export_payroll", "2030-01-09", output=str(by_date), stderr=io.StringIO())
    assert target.read_bytes() == by_date.read_bytes() == export_bytes(closed_week)
    assert set(PayrollExport.objects.values_list("channel", flat=True)) == {"command", "api"}


def test_the_management_command_refuses_an_open_or_unknown_period(worker):
    accepted_and_resolved(worker)
    period = LedgerEntry.objects.get().period
    with pytest.raises(CommandError, match="closed"):
        call_command("export_payroll", str(period.pk), stdout=io.StringIO())
    with pytest.raises(CommandError, match="No pay period"):
        call_command("export_payroll", "99999", stdout=io.StringIO())


def test_the_admin_action_streams_the_csv(closed_week, client, staff):
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    response = client.post(
        "/django-admin/marketplace/payperiod/",
        {"action": "export_payroll", "_selected_action": [closed_week.pk]},
    )
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == export_bytes(closed_week)
    assert PayrollExport.objects.filter(channel="admin").count() == 1


def test_the_admin_action_closes_ended_periods(worker, client, staff, clock):
    accepted_and_resolved(worker)
    period = LedgerEntry.objects.get().period
    clock.move_to(NEXT_MONDAY + timedelta(hours=1))
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    client.post(
        "/django-admin/marketplace/payperiod/",
        {"action": "close_periods", "_selected_action": [period.pk]},
    )
    period.refresh_from_db()
    assert period.status == "closed"


def test_the_ledger_admin_is_read_only(worker, client, staff):
    accepted_and_resolved(worker)
    entry = LedgerEntry.objects.get()
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    page = client.get(f"/django-admin/marketplace/ledgerentry/{entry.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert client.get("/django-admin/marketplace/ledgerentry/add/").status_code == 403
    assert (
        client.post(f"/django-admin/marketplace/ledgerentry/{entry.pk}/delete/").status_code == 403
    )


def test_the_management_command_prints_to_stdout_by_default(closed_week):
    out, err = io.StringIO(), io.StringIO()
    call_command("export_payroll", str(closed_week.pk), stdout=out, stderr=err)
    assert out.getvalue().encode() == export_bytes(closed_week)
    assert PayrollExport.objects.filter(channel="command").get().sha256 in err.getvalue()


def test_the_hourly_task_keeps_this_weeks_period_in_place(db, clock):
    from marketplace.models import PayPeriod
    from marketplace.tasks import ensure_pay_period

    ensure_pay_period()
    ensure_pay_period()
    (period,) = PayPeriod.objects.all()
    assert period.starts_at == datetime(2030, 1, 7, tzinfo=UTC) and period.status == "open"
