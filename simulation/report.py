"""The figures of a run, read from what the services wrote, beside Erlang C's prediction.

The wait to a human is the time from a ticket's opening to its first
``assigned`` event (the accept), as the customer lived it.  Only the run's own
tickets and agents are read.

For a stationary floor the report also replays the run's own draws (each
ticket's arrival time and handle time) through an ideal first-come-first-served
queue of the same seats, with no offers at all (``reference``).  Its expected
mean wait is Erlang C's, and, fed the same draws, it follows the run ticket by
ticket: the paired difference is what the dispatcher adds (offer round trips,
the sweep's period), with a far narrower interval than either mean alone.
"""

from __future__ import annotations

import heapq
import math
import statistics
from collections import defaultdict
from datetime import datetime
from decimal import Decimal

from django.db.models import Min, Sum

from agents.selectors import online_seconds_by_agent
from marketplace.models import EntryKind, LedgerEntry, Offer, OfferStatus, PayPeriod
from marketplace.services import payroll
from marketplace.staffing import erlang_c
from tickets.models import Ticket, TicketEvent, TicketStatus

BATCHES = 20


def percentile(values: list[float], share: float) -> float | None:
    """Linear interpolation between closest ranks (PostgreSQL's ``percentile_cont``)."""
    if not values:
        return None
    ordered = sorted(values)
    position = share * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def batch_interval(values: list[float], batches: int = BATCHES) -> list[float] | None:
    """95 % interval of the mean by batch means (waits in a queue are correlated: the
    batches, consecutive stretches of tickets, are close to independent)."""
    size = len(values) // batches
    if size < 5:
        return None
    means = [statistics.fmean(values[i * size : (i + 1) * size]) for i in range(batches)]
    centre = statistics.fmean(means)
    half = 2.093 * statistics.stdev(means) / math.sqrt(batches)  # Student t, 19 d.f.
    return [round(centre - half, 2), round(centre + half, 2)]


def ideal_queue(arrivals: list[tuple[float, float]], seats: int) -> list[float]:
    """Waits of first-come-first-served tickets on ``seats`` seats: (arrival, handle) in
    arrival order; each takes the seat that frees first (Kiefer–Wolfowitz)."""
    free = [0.0] * seats
    heapq.heapify(free)
    waits = []
    for arrival, handle in arrivals:
        earliest = heapq.heappop(free)
        begins = max(arrival, earliest)
        waits.append(begins - arrival)
        heapq.heappush(free, begins + handle)
    return waits


def _r(value, digits=2):
    return None if value is None else round(value, digits)


def build(engine) -> dict:
    s = engine.scenario
    start, end = engine.start, engine.clock.now
    ids = list(engine.order)
    opened = {
        pk: created
        for pk, created in Ticket.objects.filter(pk__in=ids).values_list("pk", "created_at")
    }
    first_assigned = dict(
        TicketEvent.objects.filter(ticket_id__in=ids, to_status=TicketStatus.ASSIGNED)
        .values("ticket_id")
        .annotate(at=Min("created_at"))
        .values_list("ticket_id", "at")
    )
    waits_by_ticket = {
        pk: (first_assigned[pk] - opened[pk]).total_seconds() for pk in ids if pk in first_assigned
    }
    waits = [waits_by_ticket[pk] for pk in ids if pk in waits_by_ticket]
    answered = len(waits)
    statuses = defaultdict(int)
    for status in Ticket.objects.filter(pk__in=ids).values_list("status", flat=True):
        statuses[status] += 1
    abandoned = engine.tally.abandoned
    within = sum(1 for w in waits if w <= s.answer_seconds)
    decided = answered + abandoned + engine.tally.unanswered_at_end

    offers = defaultdict(int)
    for status in Offer.objects.filter(ticket_id__in=ids).values_list("status", flat=True):
        offers[status] += 1
    answered_offers = offers[OfferStatus.ACCEPTED] + offers[OfferStatus.DECLINED]
    answered_offers += offers[OfferStatus.EXPIRED]

    agent_ids = [a.agent.pk for a in engine.agents]
    capacity = {a.agent.pk: a.agent.capacity for a in engine.agents}
    online = online_seconds_by_agent(agent_ids=agent_ids, start=start, end=end)
    engaged = payroll.engaged_seconds(start=start, end=end, now=end)
    held = 0.0
    for assigned_at, resolved_at in Ticket.objects.filter(
        pk__in=ids, resolved_at__isnull=False
    ).values_list("assigned_at", "resolved_at"):
        held += (resolved_at - assigned_at).total_seconds()
    online_total = sum(online.get(pk, 0) for pk in agent_ids)
    seat_total = sum(online.get(pk, 0) * capacity[pk] for pk in agent_ids)
    engaged_total = sum(engaged.get(pk, 0) for pk in agent_ids)

    earned = dict(
        LedgerEntry.objects.filter(agent_id__in=agent_ids, created_at__gte=start)
        .exclude(kind=EntryKind.EARNINGS_FLOOR)
        .values("agent_id")
        .annotate(total=Sum("amount"))
        .values_list("agent_id", "total")
    )
    per_hour = sorted(
        float(earned.get(pk) or 0) / (online[pk] / 3600) for pk in agent_ids if online.get(pk)
    )
    incentives = LedgerEntry.objects.filter(
        agent_id__in=agent_ids, kind=EntryKind.SHIFT_INCENTIVE, created_at__gte=start
    ).aggregate(total=Sum("amount"))["total"] or Decimal(0)

    top_ups: dict[int, Decimal] = {}
    for period in PayPeriod.objects.filter(starts_at__lt=end, ends_at__gt=start):
        paid = LedgerEntry.objects.filter(
            period=period, agent_id__in=agent_ids, kind=EntryKind.EARNINGS_FLOOR
        ).values_list("agent_id", "amount")
        found = dict(paid) or payroll.floor_top_ups(period=period, now=end)
        for agent_id, amount in found.items():
            if agent_id in capacity:
                top_ups[agent_id] = top_ups.get(agent_id, Decimal(0)) + amount

    report = {
        "start": start.isoformat(),
        "simulated_hours": s.hours,
        "seed": s.seed,
        "opened": len(ids),
        "answered": answered,
        "abandoned": abandoned,
        "unanswered_at_end": engine.tally.unanswered_at_end,
        "abandonment": _r(abandoned / len(ids), 4) if ids else None,
        "answer_seconds": s.answer_seconds,
        "service_level": _r(within / decided, 4) if decided else None,
        "mean_wait_seconds": _r(statistics.fmean(waits)) if waits else None,
        "mean_wait_ci95": batch_interval(waits),
        "p50_wait_seconds": _r(percentile(waits, 0.5)),
        "p90_wait_seconds": _r(percentile(waits, 0.9)),
        "offers": {str(k): offers[k] for k in sorted(offers)},
        "offer_acceptance": _r(offers[OfferStatus.ACCEPTED] / answered_offers, 4)
        if answered_offers
        else None,
        "utilisation": _r(engaged_total / online_total, 4) if online_total else None,
        "occupancy": _r(held / seat_total, 4) if seat_total else None,
        "agents": len(agent_ids),
        "online_hours": _r(online_total / 3600),
        "earnings_per_online_hour": {
            "currency": payroll.floor_rate()[1],
            "mean": _r(statistics.fmean(per_hour)) if per_hour else None,
            "min": _r(per_hour[0]) if per_hour else None,
            "p10": _r(percentile(per_hour, 0.1)),
            "p50": _r(percentile(per_hour, 0.5)),
            "p90": _r(percentile(per_hour, 0.9)),
            "max": _r(per_hour[-1]) if per_hour else None,
        },
        "floor_top_ups": {
            "agents": len(top_ups),
            "total": f"{sum(top_ups.values(), Decimal(0)):.2f}",
        },
        "shift_incentives": f"{incentives:.2f}",
        "erlang_c": prediction(engine),
    }
    if s.stationary and len(s.agents) == 1 and s.agents[0].rotation:
        report["reference"] = reference(engine, waits_by_ticket)
    return report


def prediction(engine) -> dict:
    """Erlang C for the run's inputs.  A stationary floor is one prediction; otherwise
    each hour is predicted from its arrival rate and the seats scheduled in it, and the
    hours are weighed by their arrivals (a pool that treats every ticket alike: Erlang C
    knows nothing of languages and skills)."""
    s = engine.scenario
    if s.stationary and len(s.agents) == 1 and s.agents[0].rotation:
        group = s.agents[0]
        staffing = erlang_c(
            s.arrivals_per_hour[0],
            s.handle_seconds * group.handle_factor,
            s.answer_seconds,
            agents=group.count,
            capacity=group.capacity,
        )
        return _staffing(staffing, arrivals=s.arrivals_per_hour[0], seats=staffing.seats)
    hours = []
    for moment in engine.hours_of_run():
        rate = s.rate(moment)
        seats = engine.seats_scheduled(moment)
        if rate <= 0:
            continue
        hours.append((rate, erlang_c(rate, s.handle_seconds, s.answer_seconds, agents=seats)))
    total = sum(rate for rate, _ in hours)
    if not total:
        return {}
    stable = [(rate, st) for rate, st in hours if math.isfinite(st.mean_wait_seconds)]
    return {
        "mean_wait_seconds": _r(sum(r * st.mean_wait_seconds for r, st in stable) / total)
        if len(stable) == len(hours)
        else None,
        "service_level": _r(sum(r * st.service_level for r, st in hours) / total, 4),
        "occupancy": _r(sum(r * st.occupancy for r, st in hours) / total, 4),
        "hours": len(hours),
        "hours_overloaded": len(hours) - len(stable),
        "handle_seconds": s.handle_seconds,
    }


def _staffing(staffing, *, arrivals: float, seats: int) -> dict:
    return {
        "mean_wait_seconds": _r(staffing.mean_wait_seconds)
        if math.isfinite(staffing.mean_wait_seconds)
        else None,
        "service_level": _r(staffing.service_level, 4),
        "probability_of_waiting": _r(staffing.probability_of_waiting, 4),
        "occupancy": _r(staffing.occupancy, 4),
        "agents": staffing.agents,
        "seats": seats,
        "arrivals_per_hour": arrivals,
    }


def reference(engine, waits_by_ticket: dict[int, float]) -> dict:
    group = engine.scenario.agents[0]
    seats = group.count * group.capacity
    arrivals = [
        (
            (engine.tickets[pk].opened_at - engine.start).total_seconds(),
            engine.tickets[pk].handle_seconds * group.handle_factor,
        )
        for pk in engine.order
    ]
    ideal = ideal_queue(arrivals, seats)
    paired = [
        waits_by_ticket[pk] - ideal[n] for n, pk in enumerate(engine.order) if pk in waits_by_ticket
    ]
    return {
        "mean_wait_seconds": _r(statistics.fmean(ideal)) if ideal else None,
        "mean_wait_ci95": batch_interval(ideal),
        "dispatcher_added_seconds": _r(statistics.fmean(paired)) if paired else None,
        "dispatcher_added_ci95": batch_interval(paired),
    }


def first_of_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def text(report: dict) -> str:
    """The report for people."""
    ec = report["erlang_c"]
    earn = report["earnings_per_online_hour"]

    def pct(value):
        return "—" if value is None else f"{value * 100:.1f} %"

    def sec(value):
        return "—" if value is None else f"{value:.1f} s"

    lines = [
        f"Simulated {report['simulated_hours']:g} h from {report['start']} (seed {report['seed']})",
        f"  tickets opened          {report['opened']}",
        f"  answered by a person    {report['answered']}",
        f"  answered within {report['answer_seconds']} s   {pct(report['service_level'])}"
        f"   (Erlang C {pct(ec.get('service_level'))})",
        f"  wait to a human         mean {sec(report['mean_wait_seconds'])}"
        f" (95 % {report['mean_wait_ci95'] or '—'}), p50 {sec(report['p50_wait_seconds'])},"
        f" p90 {sec(report['p90_wait_seconds'])}"
        f"   (Erlang C mean {sec(ec.get('mean_wait_seconds'))})",
        f"  abandoned               {report['abandoned']} ({pct(report['abandonment'])}),"
        f" unanswered at the end {report['unanswered_at_end']}",
        f"  offers                  {report['offers']},"
        f" acceptance {pct(report['offer_acceptance'])}",
        f"  utilisation             {pct(report['utilisation'])} of online time busy,"
        f" seat occupancy {pct(report['occupancy'])}   (Erlang C {pct(ec.get('occupancy'))})",
        f"  earnings per online h   mean {earn['mean']} {earn['currency']}, p10 {earn['p10']},"
        f" p50 {earn['p50']}, p90 {earn['p90']} (min {earn['min']}, max {earn['max']},"
        f" {report['agents']} agents, {report['online_hours']} h online)",
        f"  pay-floor top-ups       {report['floor_top_ups']['total']} {earn['currency']} for"
        f" {report['floor_top_ups']['agents']} agents; shift incentives"
        f" {report['shift_incentives']}",
    ]
    if "reference" in report:
        ref = report["reference"]
        lines.append(
            f"  ideal FIFO queue, same draws: mean wait {sec(ref['mean_wait_seconds'])};"
            f" the dispatcher adds {sec(ref['dispatcher_added_seconds'])} a ticket"
            f" (95 % {ref['dispatcher_added_ci95'] or '—'})"
        )
    return "\n".join(lines)
