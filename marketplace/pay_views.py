"""The agent's earnings: the page (``/agent/earnings/``) and the console's earnings card.

Both draw the same weekly chart (``marketplace.charts``) from the pay selectors.
"""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render

from agents.models import Agent
from config import params
from marketplace import charts, pay_selectors
from marketplace.models import EntryKind, PayPeriod

KIND_LABELS = {
    EntryKind.TASK: "Tickets",
    EntryKind.REVERSAL: "Reversals",
    EntryKind.QUALITY_BONUS: "Quality bonuses",
    EntryKind.SHIFT_INCENTIVE: "Shift incentives",
    EntryKind.EARNINGS_FLOOR: "Engaged-time floor",
    EntryKind.ADJUSTMENT: "Adjustments",
}


def _rows(totals: pay_selectors.CurrencyTotals, *, non_zero: bool) -> list[tuple]:
    """(label, money, count) per kind, in the ledger's order of kinds."""
    return [
        (KIND_LABELS[kind], totals.by_kind[kind.value], totals.counts[kind.value])
        for kind in EntryKind
        if not non_zero or totals.counts[kind.value]
    ]


def earnings_card_context(agent: Agent) -> dict:
    """The console's earnings card: this week's total by kind and the weekly chart."""
    period, totals = pay_selectors.agent_week_totals(agent=agent)
    weekly = pay_selectors.agent_weekly_totals(agent=agent)
    return {
        "week": period,
        "week_totals": [
            {"currency": t.currency, "total": t.total, "rows": _rows(t, non_zero=True)}
            for t in totals
        ],
        "chart": charts.week_chart(weekly, width=260, height=120),
    }


def _agent(request) -> Agent:
    agent = getattr(request.user, "agent", None) if request.user.is_agent else None
    if agent is None:
        raise Http404
    return agent


@login_required
def agent_earnings_card(request):
    """The card alone: the console swaps it in after a resolve, when a task pay lands."""
    return render(
        request, "marketplace/_earnings_card.html", earnings_card_context(_agent(request))
    )


@login_required
def agent_earnings(request):
    agent = _agent(request)
    try:
        earnings = pay_selectors.agent_earnings(
            agent=agent, period_id=params.integer(request.GET, "period")
        )
    except PayPeriod.DoesNotExist as exc:
        raise Http404 from exc
    totals = [
        {"currency": t.currency, "total": t.total, "rows": _rows(t, non_zero=False)}
        for t in earnings.totals
    ]
    weekly = pay_selectors.agent_weekly_totals(agent=agent)
    return render(
        request,
        "marketplace/earnings.html",
        {
            "agent": agent,
            "earnings": earnings,
            "totals": totals,
            "chart": charts.week_chart(weekly, width=640, height=180),
            "weekly": weekly,
        },
    )
