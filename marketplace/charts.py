"""Chart geometry computed on the server, drawn as inline SVG by the templates.

No chart library and no script: the page is complete as rendered, and a
screen reader gets the same figures from the ``aria-label`` and each bar's
``<title>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from marketplace.pay_selectors import WeeklyEarnings
from marketplace.templatetags.humanline_format import money

NICE_STEPS = (1, 2, 2.5, 5, 10)


def nice_ceiling(value: float, *, minimum: float = 10) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10ⁿ at least ``value``: a round top for the axis."""
    value = max(value, minimum)
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in NICE_STEPS:
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude  # pragma: no cover - the loop always returns


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: str
    title: str
    current: bool
    period_id: int | None


@dataclass
class Gridline:
    y: float
    label: str


@dataclass
class WeekChart:
    width: int
    height: int
    base: float
    left: float
    right: float
    bars: list[Bar]
    gridlines: list[Gridline]
    summary: str
    currency: str
    empty: bool


def week_chart(weekly: WeeklyEarnings, *, width: int = 300, height: int = 130) -> WeekChart:
    """Bars per pay week, the current one last and highlighted, on a rounded axis."""
    left, right, top, bottom = 28.0, 4.0, 16.0, 18.0
    base = height - bottom
    top_value = nice_ceiling(float(max((w.total for w in weekly.weeks), default=Decimal(0))))
    plot = base - top
    slot = (width - left - right) / max(1, len(weekly.weeks))
    bars = []
    for i, week in enumerate(weekly.weeks):
        amount = max(float(week.total), 0.0)
        bar_height = plot * amount / top_value
        shown = money(week.total, weekly.currency)
        label = "This week" if week.current else f"{week.starts_at:%-d %b}"
        bars.append(
            Bar(
                x=round(left + i * slot + slot * 0.18, 1),
                y=round(base - bar_height, 1),
                width=round(slot * 0.64, 1),
                height=round(bar_height, 1),
                label="now" if week.current else f"{week.starts_at:%-d/%-m}",
                value=shown,
                title=f"{label}: {shown}",
                current=week.current,
                period_id=week.period_id,
            )
        )
    gridlines = [
        Gridline(y=round(base - plot * share, 1), label=f"{top_value * share:g}")
        for share in (0, 0.5, 1)
    ]
    summary = "Earnings per pay week, oldest first: " + "; ".join(b.title for b in bars) + "."
    return WeekChart(
        width=width,
        height=height,
        base=base,
        left=left,
        right=width - right,
        bars=bars,
        gridlines=gridlines,
        summary=summary,
        currency=weekly.currency,
        empty=all(w.total == 0 for w in weekly.weeks),
    )
