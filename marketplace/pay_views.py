"""The agent's earnings page: this week's totals by kind, each entry, past weeks."""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render

from marketplace import pay_selectors
from marketplace.models import EntryKind, PayPeriod


@login_required
def agent_earnings(request):
    agent = getattr(request.user, "agent", None) if request.user.is_agent else None
    if agent is None:
        raise Http404
    raw = request.GET.get("period", "")
    try:
        earnings = pay_selectors.agent_earnings(
            agent=agent, period_id=int(raw) if raw.isdigit() else None
        )
    except PayPeriod.DoesNotExist as exc:
        raise Http404 from exc
    totals = [
        {
            "currency": t.currency,
            "total": t.total,
            "rows": [
                (label, t.by_kind[value], t.counts[value]) for value, label in EntryKind.choices
            ],
        }
        for t in earnings.totals
    ]
    return render(
        request,
        "marketplace/earnings.html",
        {"agent": agent, "earnings": earnings, "totals": totals, "kinds": dict(EntryKind.choices)},
    )
