"""The domain's metrics, read from the database when Prometheus scrapes.

Gauges (the queue by lane, agents online and busy, surge, pending offers) are
one grouped read each, so they are true whatever process serves the scrape.
Counters of events that leave a row behind (offers made and how they ended,
each ticket's time to its first human) are totals over those rows, kept per
process by ``operations.tally`` so that a scrape reads only the recent rows.
Events that leave no row (pushes failed, the sweep's repairs) are counted in
process (``operations.counters``).
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, DurationField, Exists, ExpressionWrapper, F, Min, OuterRef, Q
from django.db.models import Sum as DbSum
from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

from operations.tally import Tally

# Seconds from a ticket's opening to its first human.  The wait targets are
# 30 s, 60 s and 120 s by default (urgent, high, normal); the tail goes to an
# hour, past which a customer is lost however long they were kept.
TIME_TO_HUMAN_BUCKETS = (5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1200, 1800, 3600)

OFFER_ENDINGS = ("accepted", "declined", "expired", "withdrawn")


def _offer_rows():
    from marketplace.models import Offer

    return Offer.objects.order_by()


def _offers_by_status(rows) -> dict[str, float]:
    return {row["status"]: row["n"] for row in rows.values("status").annotate(n=Count("id"))}


def _first_pending_offer() -> int | None:
    from marketplace.models import OfferStatus

    return _offer_rows().filter(status=OfferStatus.PENDING).aggregate(first=Min("id"))["first"]


def _assignment_rows():
    """Every ticket's first assignment: the audit row of its first move to ``assigned``."""
    from tickets.models import EventKind, TicketEvent, TicketStatus

    assignments = TicketEvent.objects.filter(kind=EventKind.STATUS, to_status=TicketStatus.ASSIGNED)
    earlier = assignments.filter(ticket_id=OuterRef("ticket_id"), id__lt=OuterRef("id"))
    return assignments.order_by().filter(~Exists(earlier))


def _time_to_human(rows) -> dict[str, float]:
    wait = ExpressionWrapper(
        F("created_at") - F("ticket__created_at"), output_field=DurationField()
    )
    buckets = {
        f"le{bound}": Count("id", filter=Q(wait__lte=timedelta(seconds=bound)))
        for bound in TIME_TO_HUMAN_BUCKETS
    }
    figures = rows.annotate(wait=wait).aggregate(count=Count("id"), sum=DbSum("wait"), **buckets)
    total = figures.pop("sum")
    figures["sum"] = total.total_seconds() if total is not None else 0.0
    return figures


offers_tally = Tally(_offer_rows, _offers_by_status, open_from=_first_pending_offer)
time_to_human_tally = Tally(_assignment_rows, _time_to_human)


class DomainCollector:
    """What Prometheus reads of the marketplace, at each scrape."""

    def describe(self):
        return []  # nothing read at registration: the database may not be there yet

    def collect(self):
        yield from self.queue()
        yield from self.agents()
        yield from self.surge()
        yield from self.offers()
        yield self.time_to_human()

    def queue(self):
        from marketplace.services import dispatch

        depth = GaugeMetricFamily(
            "humanline_queue_depth",
            "Queued tickets by lane: language, category and whether the escalation"
            " ladder's wider pool is open (a lane of its own in dispatch).",
            labels=["language", "category", "wide"],
        )
        for language, category, wide, count in dispatch.lanes_depth():
            depth.add_metric([language, category, "true" if wide else "false"], count)
        yield depth

    def agents(self):
        from marketplace.floor import agents_now

        counts = agents_now()
        for state, help_text in (
            ("online", "Approved agents online."),
            ("busy", "Approved agents online and holding at least one ticket."),
            ("away", "Approved agents away."),
        ):
            yield GaugeMetricFamily(f"humanline_agents_{state}", help_text, value=counts[state])

    def surge(self):
        from marketplace.services.pricing import surge_now

        surge = surge_now()
        yield GaugeMetricFamily(
            "humanline_surge_multiplier",
            "The surge multiplier new offers are priced with.",
            value=float(surge.multiplier),
        )
        yield GaugeMetricFamily(
            "humanline_surge_waiting_customers",
            "Customers with a queued ticket (the surge's demand).",
            value=surge.waiting,
        )
        yield GaugeMetricFamily(
            "humanline_free_seats",
            "Free seats of approved agents online (the surge's supply).",
            value=surge.free_capacity,
        )

    def offers(self):
        totals = offers_tally.totals()
        yield CounterMetricFamily(
            "humanline_offers_made",
            "Offers made to agents.",
            value=sum(totals.values()),
        )
        ended = CounterMetricFamily(
            "humanline_offers_ended",
            "Offers that ended, by outcome: accepted, declined, expired (not answered"
            " in its window) or withdrawn (the agent left, the ticket was cancelled).",
            labels=["outcome"],
        )
        for outcome in OFFER_ENDINGS:
            ended.add_metric([outcome], totals.get(outcome, 0))
        yield ended
        yield GaugeMetricFamily(
            "humanline_offers_pending",
            "Offers waiting for the agent's answer now.",
            value=totals.get("pending", 0),
        )

    def time_to_human(self):
        figures = time_to_human_tally.totals()
        count = figures.get("count", 0)
        buckets = [(str(float(b)), figures.get(f"le{b}", 0)) for b in TIME_TO_HUMAN_BUCKETS]
        buckets.append(("+Inf", count))
        return HistogramMetricFamily(
            "humanline_time_to_human_seconds",
            "Seconds from a ticket's opening to its first assignment to an agent.",
            buckets=buckets,
            sum_value=figures.get("sum", 0.0),
        )


DOMAIN = CollectorRegistry(auto_describe=False)
DOMAIN.register(DomainCollector())
