"""Reads about pay: an agent's earnings, the pay periods staff close and export."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Prefetch, QuerySet, Sum
from django.utils import timezone

from agents.models import Agent
from marketplace.models import (
    EntryKind,
    LedgerEntry,
    PayPeriod,
    PayPeriodStatus,
    PayrollExport,
    PayrollJob,
    PayrollJobKind,
    PayrollJobStatus,
)
from marketplace.services.ledger import currency as ledger_currency
from marketplace.services.ledger import period_bounds

ENTRIES_SHOWN = 200
PAST_PERIODS_SHOWN = 12


def money(amount, currency: str) -> dict:
    """The public contract's money: ``{"amount": "2.50", "currency": "EUR"}``."""
    return {"amount": f"{Decimal(amount or 0):.2f}", "currency": currency}


@dataclass
class CurrencyTotals:
    currency: str
    by_kind: dict[str, dict] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    total: dict = field(default_factory=dict)


def totals_by_currency(entries: QuerySet) -> list[CurrencyTotals]:
    """Sums per currency and kind (every kind present, zero when none), in the database."""
    grouped: dict[str, CurrencyTotals] = {}
    rows = (
        entries.order_by()
        .values("currency", "kind")
        .annotate(total=Sum("amount"), n=Count("id"))
        .order_by("currency", "kind")
    )
    for row in rows:
        code = row["currency"]
        item = grouped.setdefault(
            code,
            CurrencyTotals(
                currency=code,
                by_kind={kind.value: money(0, code) for kind in EntryKind},
                counts={kind.value: 0 for kind in EntryKind},
            ),
        )
        item.by_kind[row["kind"]] = money(row["total"], code)
        item.counts[row["kind"]] = row["n"]
    for item in grouped.values():
        item.total = money(sum(Decimal(m["amount"]) for m in item.by_kind.values()), item.currency)
    return list(grouped.values())


@dataclass
class Earnings:
    period: PayPeriod
    totals: list[CurrencyTotals]
    entries: list[LedgerEntry]
    past_periods: list[tuple[PayPeriod, list[CurrencyTotals]]]


def _current_period() -> PayPeriod:
    """The open week now; an unsaved one when no entry has created it yet."""
    start, end = period_bounds(timezone.now())
    return PayPeriod.objects.filter(starts_at=start).first() or PayPeriod(
        starts_at=start, ends_at=end
    )


def agent_earnings(*, agent: Agent, period_id: int | None = None) -> Earnings:
    """One period of an agent's earnings (the current week by default) and their past weeks.

    ``PayPeriod.DoesNotExist`` when ``period_id`` names no period.
    """
    period = PayPeriod.objects.get(pk=period_id) if period_id else _current_period()
    mine = LedgerEntry.objects.filter(agent=agent)
    in_period = mine.filter(period=period) if period.pk else mine.none()
    entries = list(
        in_period.select_related("ticket", "period").order_by("-created_at", "-id")[:ENTRIES_SHOWN]
    )
    past_ids = list(
        mine.exclude(period_id=period.pk)
        .filter(period__starts_at__lt=period.starts_at)
        .values_list("period_id", flat=True)
        .distinct()
        .order_by()
    )
    past = list(
        PayPeriod.objects.filter(pk__in=past_ids).order_by("-starts_at")[:PAST_PERIODS_SHOWN]
    )
    return Earnings(
        period=period,
        totals=totals_by_currency(in_period),
        entries=entries,
        past_periods=[(p, totals_by_currency(mine.filter(period=p))) for p in past],
    )


def pay_periods() -> QuerySet[PayPeriod]:
    return PayPeriod.objects.prefetch_related(
        Prefetch("exports", queryset=PayrollExport.objects.order_by("-created_at", "-id"))
    ).order_by("-starts_at")


# --- weekly totals (the earnings chart) ---------------------------------------------

CHART_WEEKS = 8


@dataclass
class WeekTotal:
    starts_at: datetime
    ends_at: datetime
    total: Decimal
    period_id: int | None
    current: bool


@dataclass
class WeeklyEarnings:
    currency: str
    weeks: list[WeekTotal]  # oldest first, the current week last
    other_currencies: list[str]


def week_starts(*, now: datetime, weeks: int) -> list[tuple[datetime, datetime]]:
    """The bounds of the current pay week and the ``weeks - 1`` before it, oldest first."""
    bounds = [period_bounds(now)]
    while len(bounds) < weeks:
        bounds.append(period_bounds(bounds[-1][0] - timedelta(seconds=1)))
    return bounds[::-1]


def agent_weekly_totals(*, agent: Agent, weeks: int = CHART_WEEKS) -> WeeklyEarnings:
    """The agent's total per pay week, current week included, in one currency.

    Weeks with no entry count as zero.  The currency charted is the one of the
    agent's latest entry (the platform's by default); any other currency earned
    in the window is named, not mixed into the bars.
    """
    bounds = week_starts(now=timezone.now(), weeks=weeks)
    mine = LedgerEntry.objects.filter(agent=agent)
    latest = mine.order_by("-created_at", "-id").values_list("currency", flat=True).first()
    code = latest or ledger_currency()
    rows = (
        mine.filter(period__starts_at__gte=bounds[0][0], period__starts_at__lte=bounds[-1][0])
        .values("period_id", "period__starts_at", "currency")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    by_start: dict[datetime, tuple[int, Decimal]] = {}
    others: set[str] = set()
    for row in rows:
        if row["currency"] != code:
            others.add(row["currency"])
            continue
        by_start[row["period__starts_at"]] = (row["period_id"], row["total"])
    items = []
    for i, (start, end) in enumerate(bounds):
        period_id, total = by_start.get(start, (None, Decimal(0)))
        items.append(
            WeekTotal(
                starts_at=start,
                ends_at=end,
                total=Decimal(total).quantize(Decimal("0.01")),
                period_id=period_id,
                current=i == len(bounds) - 1,
            )
        )
    return WeeklyEarnings(currency=code, weeks=items, other_currencies=sorted(others))


def agent_week_totals(*, agent: Agent) -> tuple[PayPeriod, list[CurrencyTotals]]:
    """The open week and the agent's totals in it by currency and kind (for the console)."""
    period = _current_period()
    entries = LedgerEntry.objects.filter(agent=agent, period=period) if period.pk else None
    return period, totals_by_currency(entries) if entries is not None else []


# --- pay periods on the operations floor ------------------------------------------

FLOOR_PERIODS = 6


@dataclass
class FloorPeriod:
    period: PayPeriod
    entry_count: int
    totals: list[tuple[str, Decimal]]
    ended: bool
    close_job: PayrollJob | None  # under way, or the last one if it failed
    export_job: PayrollJob | None  # under way, failed, or the newest file ready
    export_inline: bool  # small enough to download at once

    @property
    def closing(self) -> bool:
        return bool(self.close_job and self.close_job.active)

    @property
    def can_close(self) -> bool:
        return self.period.status == PayPeriodStatus.OPEN and self.ended and not self.closing


def floor_pay_periods(*, limit: int = FLOOR_PERIODS, inline_max: int) -> list[FloorPeriod]:
    """The recent pay periods with their figures and the payroll work on them.

    Closed periods show their close-time snapshot; open ones are summed live.
    Three queries whatever the number of periods.
    """
    now = timezone.now()
    periods = list(PayPeriod.objects.order_by("-starts_at")[:limit])
    live: dict[int, list[tuple[str, Decimal]]] = {}
    live_counts: dict[int, int] = {}
    for row in (
        LedgerEntry.objects.filter(period__in=[p for p in periods if p.status == "open"])
        .values("period_id", "currency")
        .annotate(total=Sum("amount"), n=Count("id"))
        .order_by("period_id", "currency")
    ):
        live.setdefault(row["period_id"], []).append((row["currency"], row["total"]))
        live_counts[row["period_id"]] = live_counts.get(row["period_id"], 0) + row["n"]
    jobs: dict[tuple[int, str], PayrollJob] = {}
    for job in PayrollJob.objects.filter(period__in=periods).order_by("-created_at", "-id"):
        jobs.setdefault((job.period_id, job.kind), job)  # the newest of each kind
    rows = []
    for period in periods:
        closed = period.status == PayPeriodStatus.CLOSED
        close_job = jobs.get((period.pk, PayrollJobKind.CLOSE))
        if close_job and (closed or close_job.status == PayrollJobStatus.DONE):
            close_job = None
        export_job = jobs.get((period.pk, PayrollJobKind.EXPORT))
        if export_job and export_job.status == PayrollJobStatus.DONE and not export_job.file_name:
            export_job = None
        count = (period.entry_count or 0) if closed else live_counts.get(period.pk, 0)
        totals = (
            sorted((code, Decimal(total)) for code, total in period.totals.items())
            if closed
            else live.get(period.pk, [])
        )
        rows.append(
            FloorPeriod(
                period=period,
                entry_count=count,
                totals=totals,
                ended=period.ends_at <= now,
                close_job=close_job,
                export_job=export_job,
                export_inline=count <= inline_max,
            )
        )
    return rows
