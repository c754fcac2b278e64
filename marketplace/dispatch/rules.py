"""The dispatch rules, each written once, as database expressions.

Eligibility (an agent may be offered a ticket when every rule holds):
  E1 approved (not applied, rejected or suspended)
  E2 online
  E3 speaks the ticket's language
  E4 has the ticket's category as a skill — or has the ``general`` skill while
     no agent with that skill who speaks the language is online at all (the
     documented fallback), or at any time once the ticket has climbed to the
     escalation ladder's wider pool
  E5 below capacity (assigned tickets < capacity)
  E6 no pending offer already (one offer at a time per agent)
  E7 has not passed on this ticket within the cool-down (``passed``)

Agent order (first difference wins):
  R1 booked into a shift slot covering now
  R2 skill match: has the exact category (before a ``general`` fallback)
  R3 lower current load (assigned tickets / capacity)
  R4 longest idle (earliest ``idle_since``)
  R5 higher quality score (``Agent.quality_score``)
  R6 lowest id, so that the order is total and repeatable

Ticket order: ``tickets.models.queue_order`` (priority, then time in line).

Each rule is a query expression over the agents, written against a
``Target``: the ticket's side of the rules, either plain values (one ticket,
or a lane of them) or columns of the ticket a query is about (``OuterRef``).
So the same definitions serve every question dispatch asks, and nothing
else in the code states a rule:

- ``agents_for(target)``: the eligible agents of a ticket or lane, best first
  (a new ticket's offer, a pass per lane);
- ``tickets_for(agent)``: the waiting tickets an agent may take, first in
  line first (the agent freed by an answer or a resolve);
- ``FREE`` and ``passed``: what an offer reads again under its row locks;
- ``explain(target)``: which rule leaves a ticket without anyone, for the
  floor and for the customer.

Why database expressions rather than Python: every path asks the database
anyway, the database can then stop at the first row it needs, and a rule in
one form cannot drift from a copy in another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import (
    Count,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    OuterRef,
    Q,
    QuerySet,
    Value,
)
from django.db.models.expressions import Expression
from django.db.models.functions import Cast, Coalesce
from django.db.models.lookups import GreaterThanOrEqual

from agents.models import Agent, AgentLanguage, AgentStatus, Presence
from marketplace.models import BookingStatus, DeclineReason, Offer, OfferStatus, ShiftBooking
from tickets.models import Rung, Ticket, TicketStatus, queue_order

GENERAL = "general"
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
AgentSkill = Agent.skills.through


@dataclass(frozen=True)
class Target:
    """The ticket's side of the rules.

    Each field is a value, or an expression over the ticket that a query is
    about (``OuterRef("language")`` from inside a query of agents).  Without
    ``ticket`` the rules are those of its lane (E7 is about one ticket).
    """

    language: str | F
    category: str | F
    ticket: int | F | None = None
    # The ladder's wider pool is open for it (E4): True, False, or a condition.
    wide: bool | Expression = False

    @classmethod
    def of(cls, ticket: Ticket) -> Target:
        return cls(
            language=ticket.language,
            category=ticket.category,
            ticket=ticket.pk,
            wide=ticket.escalation >= Rung.WIDER_POOL,
        )


# The rules about a ticket of the query around (``tickets_for``): its columns.
OUTER_TICKET = Target(
    language=OuterRef("language"),
    category=OuterRef("category"),
    ticket=OuterRef("pk"),
    wide=GreaterThanOrEqual(OuterRef("escalation"), Rung.WIDER_POOL),
)


def _deeper(value):
    """A ticket-side value as seen from one subquery further in."""
    return OuterRef(value) if isinstance(value, F) else value


def speaks(language) -> Exists:
    return Exists(AgentLanguage.objects.filter(agent=OuterRef("pk"), code=_deeper(language)))


def has_skill(slug) -> Exists:
    return Exists(AgentSkill.objects.filter(agent_id=OuterRef("pk"), skill__slug=_deeper(slug)))


def passed(now: datetime) -> Q:
    """E7's offers: an agent with one of these for a ticket has passed on it.

    They declined it or let the offer expire, within ``REOFFER_COOLDOWN_SECONDS``:
    then the ticket may come round to them again, so that a small pool never
    strands it.  A decline as ``not_my_area`` lasts for good.  An offer the
    platform withdrew (the agent went away, the customer cancelled) was no
    choice of the agent's and does not count.
    """
    since = now - timedelta(seconds=settings.HUMANLINE["REOFFER_COOLDOWN_SECONDS"])
    return Q(status__in=(OfferStatus.DECLINED, OfferStatus.EXPIRED), answered_at__gt=since) | Q(
        status=OfferStatus.DECLINED, decline_reason=DeclineReason.NOT_MY_AREA
    )


# --- eligibility ----------------------------------------------------------------------


def _approved(t: Target, now: datetime) -> Q:
    return Q(status=AgentStatus.APPROVED)


def _online(t: Target, now: datetime) -> Q:
    return Q(presence=Presence.ONLINE)


def _speaks(t: Target, now: datetime) -> Q:
    return Q(speaks(t.language))


def specialist_online(t: Target) -> Exists:
    """Is an agent with the ticket's skill who speaks its language online (busy or not)?"""
    inner = Target(language=_deeper(t.language), category=_deeper(t.category))
    return Exists(
        Agent.objects.filter(_approved(inner, EPOCH), _online(inner, EPOCH), _speaks(inner, EPOCH))
        .filter(has_skill(inner.category))
        .values("pk")
    )


def _skilled(t: Target, now: datetime) -> Q:
    own, general = Q(has_skill(t.category)), Q(has_skill(GENERAL))
    if t.wide is True:
        return own | general
    no_specialist = ~Q(specialist_online(t))
    if t.wide is False:
        return own | (general & no_specialist)
    return own | (general & (Q(t.wide) | no_specialist))


def _below_capacity(t: Target, now: datetime) -> Q:
    return Q(active_tickets__lt=F("capacity"))


def _no_pending_offer(t: Target, now: datetime) -> Q:
    return ~Q(Exists(Offer.objects.filter(agent=OuterRef("pk"), status=OfferStatus.PENDING)))


def _not_passed(t: Target, now: datetime) -> Q:
    if t.ticket is None:
        return Q()
    return ~Q(
        Exists(Offer.objects.filter(passed(now), agent=OuterRef("pk"), ticket=_deeper(t.ticket)))
    )


@dataclass(frozen=True)
class Rule:
    code: str
    text: str
    condition: Callable[[Target, datetime], Q]
    # Only about the agent's own row and offers: read again under the agent's
    # lock when an offer is made (``FREE``).
    agent_alone: bool = False


ELIGIBILITY: tuple[Rule, ...] = (
    Rule("E1", "approved", _approved, agent_alone=True),
    Rule("E2", "online", _online, agent_alone=True),
    Rule("E3", "speaks the ticket's language", _speaks),
    Rule(
        "E4", "has the skill, or general while no specialist is online or in a wide pool", _skilled
    ),
    Rule("E5", "below capacity", _below_capacity, agent_alone=True),
    Rule("E6", "no pending offer already", _no_pending_offer, agent_alone=True),
    Rule("E7", "has not passed on this ticket", _not_passed),
)


def eligible(t: Target, now: datetime, *, rules: tuple[Rule, ...] = ELIGIBILITY) -> Q:
    condition = Q()
    for rule in rules:
        condition &= rule.condition(t, now)
    return condition


def free(now: datetime) -> Q:
    """E1, E2, E5 and E6: the agent can take an offer of something now."""
    return eligible(
        Target(language="", category=""), now, rules=tuple(r for r in ELIGIBILITY if r.agent_alone)
    )


# --- ranking --------------------------------------------------------------------------


def _ranks(t: Target, now: datetime) -> dict:
    booked = ShiftBooking.objects.filter(
        agent=OuterRef("pk"), status=BookingStatus.BOOKED, starts_at__lte=now, ends_at__gt=now
    )
    return {
        "r1_booked": Exists(booked),
        "r2_skill_match": has_skill(t.category),
        "r3_load": ExpressionWrapper(
            Cast("active_tickets", FloatField()) / F("capacity"), output_field=FloatField()
        ),
        "r4_idle_since": Coalesce("idle_since", "presence_changed_at", Value(EPOCH)),
        "r5_quality": F("quality_score"),
    }


RANKING = (
    ("R1", "booked into a shift slot covering now", "-r1_booked"),
    ("R2", "has the exact skill", "-r2_skill_match"),
    ("R3", "lower current load", "r3_load"),
    ("R4", "longest idle", "r4_idle_since"),
    ("R5", "higher quality score", "-r5_quality"),
    ("R6", "lowest id", "pk"),
)


def ranked(agents: QuerySet[Agent], t: Target, now: datetime) -> QuerySet[Agent]:
    """The agents in rule order, R1 to R6, each rule's value annotated by its code."""
    return agents.annotate(**_ranks(t, now)).order_by(*(order for _, _, order in RANKING))


def agents_for(t: Target, now: datetime) -> QuerySet[Agent]:
    """The agents eligible for the ticket (or its lane), best first."""
    return ranked(Agent.objects.filter(eligible(t, now)), t, now)


# --- tickets --------------------------------------------------------------------------


def tickets_for(agent_id: int, now: datetime) -> QuerySet[Ticket]:
    """The queued tickets the agent may be offered, first in line first."""
    agent = Agent.objects.filter(pk=agent_id).filter(eligible(OUTER_TICKET, now))
    return (
        Ticket.objects.filter(status=TicketStatus.QUEUED)
        .filter(Exists(agent))
        .order_by(*queue_order())
    )


# --- why nobody ------------------------------------------------------------------------


@dataclass(frozen=True)
class Explanation:
    """Which rule leaves a waiting ticket with nobody to offer it to.

    ``rule`` is the first rule that no agent passes together with those
    before it (None when someone is eligible now); ``counts`` how many agents
    pass each rule and those before it.
    """

    rule: str | None
    counts: dict[str, int]


def explain(t: Target, now: datetime) -> Explanation:
    """Count, rule after rule, the agents who pass it and every rule before it."""
    conditions = {}
    so_far = Q()
    for rule in ELIGIBILITY:
        so_far &= rule.condition(t, now)
        conditions[rule.code] = Count("pk", filter=so_far)
    counts = Agent.objects.filter(status=AgentStatus.APPROVED).aggregate(**conditions)
    first_empty = next((code for code, n in counts.items() if n == 0), None)
    return Explanation(rule=first_empty, counts=counts)
