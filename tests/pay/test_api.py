"""The pay API: each endpoint's answers and who may call it."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from marketplace.models import LedgerEntry, PayrollExport
from marketplace.services import ledger, payroll
from tests.pay.helpers import accepted_and_resolved, rate

pytestmark = pytest.mark.django_db

EARNINGS = "/api/v1/agents/me/earnings/"
PERIODS = "/api/v1/admin/pay-periods/"
NEXT_MONDAY = datetime(2030, 1, 14, 9, tzinfo=UTC)


def adjustments(agent) -> str:
    return f"/api/v1/admin/agents/{agent.pk}/adjustments/"


# --- GET /agents/me/earnings/ --------------------------------------------------------


def test_an_agent_sees_this_weeks_totals_by_kind_and_entries_with_tickets(api, worker):
    ticket, _ = accepted_and_resolved(worker, category="payments")
    rate(ticket, 5)

    body = api.as_(worker).get(EARNINGS).json()

    assert body["period"]["status"] == "open"
    assert body["period"]["starts_at"] == "2030-01-07T00:00:00Z"
    (eur,) = body["totals"]
    assert eur["by_kind"]["task"] == {"amount": "2.50", "currency": "EUR"}
    assert eur["by_kind"]["quality_bonus"] == {"amount": "0.50", "currency": "EUR"}
    assert eur["by_kind"]["adjustment"] == {"amount": "0.00", "currency": "EUR"}
    assert eur["total"] == {"amount": "3.00", "currency": "EUR"}
    assert eur["counts"]["task"] == 1
    kinds = [(e["kind"], e["ticket"]["id"]) for e in body["entries"]]
    assert sorted(kinds) == [("quality_bonus", ticket.pk), ("task", ticket.pk)]


def test_an_agent_sees_only_their_own_earnings(api, worker, colleague):
    accepted_and_resolved(colleague)
    body = api.as_(worker).get(EARNINGS).json()
    assert body["totals"] == [] and body["entries"] == []


def test_an_agent_with_no_entries_yet_sees_an_empty_current_week(api, agent, clock):
    body = api.as_(agent).get(EARNINGS).json()
    assert body["period"]["id"] is None and body["period"]["status"] == "open"


def test_past_weeks_are_listed_and_can_be_opened(api, worker, staff, clock):
    accepted_and_resolved(worker)
    first = LedgerEntry.objects.get().period
    clock.move_to(NEXT_MONDAY)
    payroll.pay_period_close(period_id=first.pk, actor=staff)
    ledger.adjustment_create(actor=staff, agent_id=worker.pk, amount="1.00", reason="x")

    body = api.as_(worker).get(EARNINGS).json()
    assert [p["id"] for p in body["past_periods"]] == [first.pk]
    assert body["past_periods"][0]["totals"][0]["total"]["amount"] == "2.00"
    past = api.as_(worker).get(EARNINGS, {"period": first.pk}).json()
    assert past["period"]["status"] == "closed" and len(past["entries"]) == 1
    assert api.as_(worker).get(EARNINGS, {"period": 999999}).status_code == 404


@pytest.mark.parametrize("persona", ["customer", "staff"])
def test_only_agents_have_earnings(api, request, persona):
    assert api.as_(request.getfixturevalue(persona)).get(EARNINGS).status_code == 403


def test_earnings_need_sign_in(api, db):
    assert api.get(EARNINGS).status_code in (401, 403)


# --- POST /admin/agents/{id}/adjustments/ -----------------------------------------------


def test_staff_adjust_an_agents_earnings_with_a_reason(api, staff, agent, clock):
    response = api.as_(staff).post(
        adjustments(agent), {"amount": "-2.50", "reason": "Paid twice for #12"}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["money"] == {"amount": "-2.50", "currency": "EUR"}
    assert body["kind"] == "adjustment" and body["created_by"] == "ops@example.org"
    entry = LedgerEntry.objects.get()
    assert (entry.created_by, entry.reason) == (staff, "Paid twice for #12")


def test_an_adjustment_without_a_reason_is_a_400(api, staff, agent):
    response = api.as_(staff).post(adjustments(agent), {"amount": "5.00", "reason": ""})
    assert response.status_code == 400
    assert "reason" in response.json()["error"]["fields"]
    response = api.as_(staff).post(adjustments(agent), {"amount": "0", "reason": "x"})
    assert response.status_code == 400 and "amount" in response.json()["error"]["fields"]
    assert not LedgerEntry.objects.exists()


def test_adjusting_an_unknown_agent_is_a_404(api, staff):
    assert api.as_(staff).post("/api/v1/admin/agents/999999/adjustments/").status_code == 404


@pytest.mark.parametrize("persona", ["agent", "customer"])
def test_only_staff_adjust_earnings(api, request, agent, persona):
    who = request.getfixturevalue(persona)
    response = api.as_(who).post(adjustments(agent), {"amount": "99.00", "reason": "me"})
    assert response.status_code == 403
    assert not LedgerEntry.objects.exists()


# --- pay periods: list, close, export --------------------------------------------------


@pytest.fixture
def week(worker, clock):
    accepted_and_resolved(worker, category="payments")
    return LedgerEntry.objects.get().period


def test_staff_list_pay_periods(api, staff, week):
    body = api.as_(staff).get(PERIODS).json()
    assert body["count"] == 1
    (row,) = body["results"]
    assert row["id"] == week.pk and row["status"] == "open" and row["exports"] == []


def test_staff_close_a_period_once_it_has_ended(api, staff, week, clock):
    assert api.as_(staff).post(f"{PERIODS}{week.pk}/close/").status_code == 409
    clock.move_to(NEXT_MONDAY)
    first = api.as_(staff).post(f"{PERIODS}{week.pk}/close/")
    again = api.as_(staff).post(f"{PERIODS}{week.pk}/close/")
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert first.json()["status"] == "closed" and first.json()["closed_by"] == "ops@example.org"
    assert first.json()["totals"] == {"EUR": {"amount": "2.50", "currency": "EUR"}}


def test_exporting_an_open_period_is_a_409(api, staff, week):
    response = api.as_(staff).get(f"{PERIODS}{week.pk}/export.csv")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "period_open"


def test_staff_export_a_closed_period_as_a_streamed_csv(api, staff, week, worker, clock):
    clock.move_to(NEXT_MONDAY)
    api.as_(staff).post(f"{PERIODS}{week.pk}/close/")

    response = api.as_(staff).get(f"{PERIODS}{week.pk}/export.csv", HTTP_ACCEPT="text/csv")

    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment;" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(r["agent_id"], r["total"]) for r in rows] == [(str(worker.pk), "2.50")]
    listed = api.as_(staff).get(PERIODS).json()["results"][0]
    assert listed["exports"][0]["sha256"] == PayrollExport.objects.get().sha256


def test_unknown_periods_are_404(api, staff):
    assert api.as_(staff).post(f"{PERIODS}999999/close/").status_code == 404
    assert api.as_(staff).get(f"{PERIODS}999999/export.csv").status_code == 404


@pytest.mark.parametrize("persona", ["agent", "customer"])
def test_only_staff_see_close_and_export_pay_periods(api, request, week, clock, persona):
    client = api.as_(request.getfixturevalue(persona))
    clock.move_to(NEXT_MONDAY + timedelta(hours=1))
    assert client.get(PERIODS).status_code == 403
    assert client.post(f"{PERIODS}{week.pk}/close/").status_code == 403
    assert client.get(f"{PERIODS}{week.pk}/export.csv").status_code == 403
    week.refresh_from_db()
    assert week.status == "open"


def test_signed_out_callers_get_nothing(api, week):
    assert api.get(PERIODS).status_code in (401, 403)
    assert api.get(f"{PERIODS}{week.pk}/export.csv").status_code in (401, 403)


# --- the earnings page ----------------------------------------------------------------


def test_the_earnings_page_shows_the_week_and_its_entries(client, worker):
    ticket, _ = accepted_and_resolved(worker, category="payments", subject="Refund stuck")
    client.force_login(worker.user)
    page = client.get("/agent/earnings/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "2.50 EUR" in html and "Refund stuck" in html and f"#{ticket.pk}" in html
    assert 'href="/agent/earnings/"' in html  # the nav link


def test_the_earnings_page_is_for_agents_only(client, customer, staff):
    client.force_login(customer)
    assert client.get("/agent/earnings/").status_code == 404
    client.force_login(staff)
    assert client.get("/agent/earnings/").status_code == 404
    client.logout()
    assert client.get("/agent/earnings/").status_code == 302
