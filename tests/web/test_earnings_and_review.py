"""Server-side: the earnings card and chart, the earnings page, the floor's review card."""

from datetime import timedelta
from decimal import Decimal

import pytest

from agents.models import AgentStatus
from marketplace import charts, pay_selectors
from marketplace.services import ledger
from tests.agents.test_onboarding import PNG
from tests.factories import AgentFactory
from tests.pay.helpers import accepted_and_resolved, online, rate

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def worker(agent, clock):
    """The ``agent`` persona, online, at the standing Monday 09:00 UTC of ``clock``."""
    return online(agent)


@pytest.mark.parametrize(
    ("value", "top"), [(0, 10), (7, 10), (10, 10), (11, 20), (23, 25), (42.5, 50), (260, 500)]
)
def test_the_chart_axis_tops_out_at_a_round_number(value, top):
    assert charts.nice_ceiling(value) == top


def test_weekly_totals_cover_the_current_and_past_weeks_with_zeros(worker, staff, clock):
    # Given: 2.50 two weeks ago, nothing last week, 2.50 + 0.50 bonus this week
    accepted_and_resolved(worker, category="payments")
    clock.shift(timedelta(days=14))
    ticket, _ = accepted_and_resolved(worker, category="payments")
    rate(ticket, 5)

    weekly = pay_selectors.agent_weekly_totals(agent=worker, weeks=4)

    assert weekly.currency == "EUR" and weekly.other_currencies == []
    assert [w.total for w in weekly.weeks] == [
        Decimal("0.00"),
        Decimal("2.50"),
        Decimal("0.00"),
        Decimal("3.00"),
    ]
    assert [w.current for w in weekly.weeks] == [False, False, False, True]
    assert weekly.weeks[1].ends_at == weekly.weeks[2].starts_at


def test_a_second_currency_is_named_not_added_to_the_bars(worker, staff, clock):
    accepted_and_resolved(worker, category="payments")
    ledger.adjustment_create(
        actor=staff, agent_id=worker.pk, amount="4.00", reason="Hat", currency_code="GBP"
    )
    ledger.adjustment_create(actor=staff, agent_id=worker.pk, amount="1.00", reason="Tip")

    weekly = pay_selectors.agent_weekly_totals(agent=worker, weeks=2)

    assert weekly.currency == "EUR" and weekly.other_currencies == ["GBP"]
    assert weekly.weeks[-1].total == Decimal("3.50")


def test_the_console_shows_this_weeks_earnings_by_kind_and_the_chart(client, worker, clock):
    ticket, _ = accepted_and_resolved(worker, category="payments")
    rate(ticket, 5)
    client.force_login(worker.user)

    page = client.get("/agent/").content.decode()

    card = page[
        page.index('id="earnings-card"') : page.index(
            "</section>", page.index('id="earnings-card"')
        )
    ]
    assert "€3.00" in card  # 2.50 task + 0.50 bonus
    assert "Tickets" in card and "€2.50" in card and "Quality bonuses" in card
    assert card.count('<g class="week') == pay_selectors.CHART_WEEKS
    assert 'data-week-total="€3.00"' in card
    assert 'href="/agent/earnings/"' in card
    assert "pending" not in card


def test_the_earnings_card_is_redrawn_alone_after_a_resolve(client, worker):
    client.force_login(worker.user)
    html = client.get("/agent/earnings/card/", **HTMX).content.decode()
    assert html.lstrip().startswith('<section class="card stat-card earnings-card"')
    assert 'hx-trigger="console:ticket-resolved from:body"' in html
    assert "€0.00" in html


@pytest.mark.parametrize("persona", ["customer", "staff"])
def test_the_earnings_card_is_for_agents_only(client, request, persona):
    client.force_login(request.getfixturevalue(persona))
    assert client.get("/agent/earnings/card/").status_code == 404


def test_the_earnings_page_draws_the_same_chart(client, worker, clock):
    accepted_and_resolved(worker, category="payments")
    client.force_login(worker.user)

    html = client.get("/agent/earnings/").content.decode()

    assert 'data-testid="week-chart"' in html and 'data-week-total="€2.50"' in html
    assert "Your last 8 weeks" in html


def test_the_floor_lists_applications_waiting_for_review_with_their_documents(
    client, staff, applicant
):
    from agents import services

    services.agent_document_upload(agent=applicant, upload=_png("passport.png"))
    AgentFactory(user__name="Already Approved", status=AgentStatus.APPROVED)
    client.force_login(staff)

    page = client.get("/ops/").content.decode()

    card = page[page.index('data-testid="review-queue"') :]
    card = card[: card.index("</section>")]
    document = applicant.documents.get()
    assert "April Applicant" in card and f"/staff/documents/{document.pk}/" in card
    assert "Already Approved" not in card
    assert 'href="/staff/review/?status=in_review"' in card


def _png(name):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, PNG, content_type="image/png")
