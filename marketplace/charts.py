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


@dataclass
class HalfHour:
    x: float
    width: float
    center: float
    published_y: float
    published_height: float
    booked_y: float
    booked_height: float
    required_y: float
    missing_height: float  # from the published places up to the required line
    attended_y: float | None
    short: bool
    title: str


@dataclass
class StaffingChart:
    width: int
    height: int
    base: float
    left: float
    right: float
    half_hours: list[HalfHour]
    required_path: str
    gridlines: list[Gridline]
    ticks: list[Gridline]  # x positions (in ``y``) and hour labels
    summary: str


def staffing_chart(slots: list[dict], *, width: int = 720, height: int = 190) -> StaffingChart:
    """Per half hour: published places (pale bar), booked (bar inside it), required (a step
    line, amber) and, once past, attended (a dot); ``slots`` as the staffing API gives them."""
    left, right, top, bottom = 26.0, 6.0, 10.0, 20.0
    base = height - bottom
    plot = base - top
    peak = max(
        (max(s["required"], s["published"], s["booked"], s["attended"] or 0) for s in slots),
        default=0,
    )
    top_value = nice_ceiling(peak, minimum=4)
    top_value += top_value % 2  # whole agents on the middle gridline too: 5 → 6
    step = (width - left - right) / max(1, len(slots))

    def y(value: float) -> float:
        return round(base - plot * value / top_value, 1)

    half_hours, path = [], []
    for i, s in enumerate(slots):
        x = left + i * step
        level = y(s["required"])
        path.append(f"M{x:.1f},{level}" if i == 0 else f"V{level}")
        path.append(f"H{x + step:.1f}")
        attended = s["attended"]
        title = (
            f"{s['starts_at']:%H:%M}: required {s['required']}, published {s['published']},"
            f" booked {s['booked']}"
            + (f", attended {attended}" if attended is not None else "")
            + f"; {s['expected_arrivals']:g} tickets expected"
        )
        half_hours.append(
            HalfHour(
                x=round(x + step * 0.12, 1),
                width=round(step * 0.76, 1),
                center=round(x + step / 2, 1),
                published_y=y(s["published"]),
                published_height=round(base - y(s["published"]), 1),
                booked_y=y(s["booked"]),
                booked_height=round(base - y(s["booked"]), 1),
                required_y=y(s["required"]),
                missing_height=round(max(0.0, y(s["published"]) - y(s["required"])), 1),
                attended_y=y(attended) if attended is not None else None,
                short=s["published"] < s["required"],
                title=title,
            )
        )
    gridlines = [
        Gridline(y=round(base - plot * share, 1), label=f"{top_value * share:g}")
        for share in (0, 0.5, 1)
    ]
    ticks = [
        Gridline(y=round(left + i * step, 1), label=f"{s['starts_at']:%H:%M}")
        for i, s in enumerate(slots)
        if s["starts_at"].minute == 0 and s["starts_at"].hour % 3 == 0
    ]
    short = [s for s in slots if s["published"] < s["required"]]
    summary = (
        f"Agents per half hour: required against published and booked. "
        f"Most required: {max((s['required'] for s in slots), default=0)}. "
        + (
            f"{len(short)} half hours short of their requirement by"
            f" {sum(s['required'] - s['published'] for s in short)} places in all."
            if short
            else "Every half hour has its required places published."
        )
    )
    return StaffingChart(
        width=width,
        height=height,
        base=base,
        left=left,
        right=width - right,
        half_hours=half_hours,
        required_path=" ".join(path),
        gridlines=gridlines,
        ticks=ticks,
        summary=summary,
    )
