"""Dispatch: offer each waiting ticket to one eligible agent at a time, live.

Every function here is a transaction over the ticket, offer and agent rows.
Locks are always taken in the order offer → ticket → agent (a new offer: ticket
→ agent, then the insert), so two paths never wait on each other in a circle.
The invariants are also database constraints:

- one pending offer per ticket   → unique index ``offer_one_pending_per_ticket``
- one pending offer per agent    → unique index ``offer_one_pending_per_agent``
- one assignee per ticket        → ``Ticket.assigned_agent`` (one column) and
                                   ``ticket_assigned_has_agent``
- never above capacity           → ``agent_never_above_capacity``
  (``active_tickets <= capacity``, kept by tickets.services)

Who is offered what is decided by ``marketplace.dispatch.rules`` (eligibility
and ranking) and ``marketplace.dispatch.matching`` (batch assignment).
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from agents import presence as agent_presence
from agents.models import (
    Agent,
    AgentConnection,
    AgentLanguage,
    AgentStatus,
    Presence,
    Skill,
    User,
)
from config import channel_send, prepared
from config.errors import InvalidTransition
from marketplace import events
from marketplace.dispatch import matching, rules
from marketplace.models import BookingStatus, Offer, OfferStatus, RateCard, ShiftBooking
from marketplace.services import pricing as pricing_services
from tickets import events as ticket_events
from tickets import services as ticket_services
from tickets.models import (
    PRIORITY_RANK,
    Message,
    Ticket,
    TicketEvent,
    TicketStatus,
    priority_rank,
)
from tickets.selectors import ahead_of_sql, priority_rank_sql, standing_seen

logger = logging.getLogger(__name__)

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
ENDED = (OfferStatus.DECLINED, OfferStatus.EXPIRED, OfferStatus.WITHDRAWN)


def _policy(name: str):
    return settings.HUMANLINE[name]


# --- reading the market -------------------------------------------------------


def _waiting_tickets_query(limit: int):
    # rank is higher for more urgent tickets (tickets.models.PRIORITY_RANK); the
    # order is the queue's index's (ticket_queue_order).
    return (
        Ticket.objects.filter(status=TicketStatus.QUEUED)
        .annotate(rank=priority_rank())
        .order_by("-rank", "queued_at", "id")
        .only("id", "language", "category", "priority", "queued_at")[:limit]
    )


def _waiting_tickets(limit: int) -> list[Ticket]:
    return list(_waiting_tickets_query(limit))


# Quality scores (rule R5) move slowly (a window of weeks of ratings), yet
# computing them is three grouped queries over ratings and ticket events: each
# process keeps them for QUALITY_CACHE_SECONDS.  A miss refreshes every online
# agent in the same three queries: the fast path asks about a few agents per
# ticket, and filling the cache a few agents at a time cost a new process those
# queries on most of its first few hundred tickets.
_quality_cache: dict[int, tuple[float, Decimal | None]] = {}


def quality_cached(*, agent_ids: list[int], now: datetime) -> dict[int, Decimal | None]:
    from time import monotonic

    from tickets.selectors import quality_scores

    ttl = _policy("QUALITY_CACHE_SECONDS")
    clock = monotonic()
    stale = [i for i in agent_ids if i not in _quality_cache or _quality_cache[i][0] <= clock]
    if stale:
        online = Agent.objects.filter(status=AgentStatus.APPROVED, presence=Presence.ONLINE)
        stale = sorted({*stale, *online.values_list("pk", flat=True)})
        fresh = quality_scores(agent_ids=stale, now=now)
        for agent_id in stale:
            score = fresh.get(agent_id)
            _quality_cache[agent_id] = (
                clock + ttl,
                Decimal(score) if score is not None else None,
            )
    return {agent_id: _quality_cache[agent_id][1] for agent_id in agent_ids}


def quality_cache_clear() -> None:
    _quality_cache.clear()


def _candidates(*, languages: set[str], now: datetime) -> list[rules.Candidate]:
    """Online approved agents who speak one of the languages, as ranking records.

    Busy agents are included: rule E4 asks whether a specialist is online at
    all.  Three queries (agents with their pending-offer and booked-now flags,
    languages, skills); quality comes from the per-process cache.
    """
    pending = Offer.objects.filter(agent=OuterRef("pk"), status=OfferStatus.PENDING)
    booked = ShiftBooking.objects.filter(
        agent=OuterRef("pk"), status=BookingStatus.BOOKED, starts_at__lte=now, ends_at__gt=now
    )
    speaks = AgentLanguage.objects.filter(agent=OuterRef("pk"), code__in=languages)
    rows = list(
        Agent.objects.filter(status=AgentStatus.APPROVED, presence=Presence.ONLINE)
        .filter(Exists(speaks))
        .annotate(pending=Exists(pending), booked=Exists(booked))
        .values(
            "id",
            "capacity",
            "active_tickets",
            "idle_since",
            "presence_changed_at",
            "pending",
            "booked",
        )
    )
    if not rows:
        return []
    ids = [row["id"] for row in rows]
    spoken: dict[int, set[str]] = {}
    for agent_id, code in AgentLanguage.objects.filter(agent_id__in=ids).values_list(
        "agent_id", "code"
    ):
        spoken.setdefault(agent_id, set()).add(code)
    skills: dict[int, set[str]] = {}
    for agent_id, slug in Agent.skills.through.objects.filter(agent_id__in=ids).values_list(
        "agent_id", "skill__slug"
    ):
        skills.setdefault(agent_id, set()).add(slug)
    quality = quality_cached(agent_ids=ids, now=now)
    return [
        rules.Candidate(
            agent_id=row["id"],
            status=AgentStatus.APPROVED,
            presence=Presence.ONLINE,
            languages=frozenset(spoken.get(row["id"], ())),
            skills=frozenset(skills.get(row["id"], ())),
            capacity=row["capacity"],
            load=row["active_tickets"],
            has_pending_offer=row["pending"],
            booked_now=row["booked"],
            idle_since=row["idle_since"] or row["presence_changed_at"] or EPOCH,
            quality=quality.get(row["id"]),
        )
        for row in rows
    ]


def market(*, now: datetime | None = None, limit: int | None = None):
    """The waiting tickets and the candidates, as the rules see them."""
    now = now or timezone.now()
    tickets = _waiting_tickets(limit or _policy("DISPATCH_BATCH_LIMIT"))
    if not tickets:
        return [], []
    offered: dict[int, set[int]] = {}
    for ticket_id, agent_id in Offer.objects.filter(
        ticket_id__in=[t.pk for t in tickets], status__in=ENDED
    ).values_list("ticket_id", "agent_id"):
        offered.setdefault(ticket_id, set()).add(agent_id)
    waiting = [
        rules.WaitingTicket(
            ticket_id=t.pk,
            language=t.language,
            category=t.category,
            priority=t.priority,
            queued_at=t.queued_at or now,
            offered_to=frozenset(offered.get(t.pk, ())),
        )
        for t in tickets
    ]
    candidates = _candidates(languages={t.language for t in tickets}, now=now)
    return waiting, candidates


# --- making offers ------------------------------------------------------------


def dispatch(*, now: datetime | None = None) -> int:
    """Offer waiting tickets to free agents; the number of offers made.

    Runs on every event that can create a match (ticket queued, agent online,
    capacity freed, offer declined or expired) and from the periodic sweep.
    Several may run at once: each offer is made in its own transaction that
    re-checks everything under locks, so a lost race only skips a pair.
    """
    now = now or timezone.now()
    waiting, candidates = market(now=now)
    if not waiting or not candidates:
        return 0
    pairs = matching.match_batch(waiting, candidates)
    if not pairs:
        return 0
    surge = pricing_services.surge_now()
    return len(
        offers_make(
            pairs=[(t.ticket_id, c.agent_id) for t, c in pairs],
            multiplier=surge.multiplier,
            rates=pricing_services.rate_table(),
        )
    )


# How many of the best-ranked agents the fast path tries to lock at once.  As
# many as the fast paths that may run at once, or near: with only the best five,
# at 100 tickets/s every fifth fast path found all five held by others and fell
# back to a batch pass, whose load made the next ones slower still.
FAST_PATH_AGENTS = 16
# How many times the fast path's offer runs when concurrent fast paths took
# its agents first (each run sees the offers committed before it).
FAST_PATH_ATTEMPTS = 3


# Constants (statuses, ranks) go into the statements as SQL text: see prepared.literal.
_literal = prepared.literal


def _eligibility_names() -> dict[str, str]:
    """The tables and constants the statements applying rules E1–E7 are written with."""
    return {
        "ticket": Ticket._meta.db_table,
        "agent": Agent._meta.db_table,
        "language": AgentLanguage._meta.db_table,
        "agent_skill": Agent.skills.through._meta.db_table,
        "skill": Skill._meta.db_table,
        "offer": Offer._meta.db_table,
        "queued": _literal(TicketStatus.QUEUED.value),
        "approved": _literal(AgentStatus.APPROVED.value),
        "online": _literal(Presence.ONLINE.value),
        "pending": _literal(OfferStatus.PENDING.value),
        "ended": ", ".join(_literal(status.value) for status in ENDED),
    }


def _ranked_sql() -> str:
    """The statement behind ``ranked_in_database``, written once (PostgreSQL and SQLite).

    Hand-written rather than built by the ORM: it runs for every new ticket,
    and composing this query from querysets cost more Python than the query
    costs PostgreSQL.
    """
    t = {
        **_eligibility_names(),
        "booking": ShiftBooking._meta.db_table,
        "booked": _literal(BookingStatus.BOOKED.value),
    }

    # The agent's row for a skill, by slug (slugs are unique): joined once per
    # agent rather than a subquery per agent and use, which cost PostgreSQL
    # about a fifth more (a call took 1.8 against 1.5 ms, median of six
    # interleaved rounds with 200 agents online, session 9).
    def skill_row(alias: str) -> str:
        return (
            f"LEFT JOIN {{agent_skill}} {alias} ON {alias}.agent_id = a.id"  # noqa: S608 (an alias)
            f" AND {alias}.skill_id = (SELECT k.id FROM {{skill}} k WHERE k.slug = %s)"
        )

    # Priority as a number (tickets.models.PRIORITY_RANK, higher first).
    rank = priority_rank_sql("t")
    return (
        # Only table names and the code's constants are formatted in; every value
        # of the ticket or the moment is a parameter.
        "SELECT a.id, a.capacity, a.active_tickets, a.idle_since, a.presence_changed_at,"  # noqa: S608
        # The tickets of the language ahead of this one in dispatch order, on every row.
        " (SELECT COUNT(*) FROM {ticket} t WHERE t.status = {queued} AND t.language = %s"
        f" AND t.id <> %s AND ({rank} > %s OR ({rank} = %s AND (t.queued_at < %s"
        " OR (t.queued_at = %s AND t.id < %s))))) AS ahead,"
        # The surge's two counts (pricing_services.surge_now), read in passing.
        " (SELECT COUNT(*) FROM {ticket} t WHERE t.status = {queued}) AS waiting,"
        " (SELECT COALESCE(SUM(f.capacity - f.active_tickets), 0) FROM {agent} f"
        " WHERE f.status = {approved} AND f.presence = {online}) AS free,"
        # R1 booked into a slot covering now
        " EXISTS (SELECT 1 FROM {booking} b WHERE b.agent_id = a.id AND b.status = {booked}"
        " AND b.starts_at <= %s AND b.ends_at > %s) AS booked,"
        # R2 has the ticket's own skill
        " own.agent_id IS NOT NULL AS matches"
        " FROM {agent} a"
        " JOIN {language} l ON l.agent_id = a.id AND l.code = %s"  # E3 (one row per language)
        f" {skill_row('own')} {skill_row('gen')}"
        " WHERE a.status = {approved} AND a.presence = {online}"  # E1, E2
        # E4 the skill, or general when no specialist for the ticket is online
        " AND (own.agent_id IS NOT NULL OR (gen.agent_id IS NOT NULL AND NOT EXISTS ("
        " SELECT 1 FROM {agent} a2 JOIN {language} l2 ON l2.agent_id = a2.id"
        " JOIN {agent_skill} s2 ON s2.agent_id = a2.id JOIN {skill} k2 ON k2.id = s2.skill_id"
        " WHERE a2.status = {approved} AND a2.presence = {online} AND l2.code = %s"
        " AND k2.slug = %s)))"
        " AND a.active_tickets < a.capacity"  # E5
        " AND NOT EXISTS (SELECT 1 FROM {offer} o WHERE o.agent_id = a.id"  # E6
        " AND o.status = {pending})"
        " AND NOT EXISTS (SELECT 1 FROM {offer} o WHERE o.agent_id = a.id"  # E7
        " AND o.ticket_id = %s AND o.status IN ({ended}))"
        # R1, R2, R3 load, R4 idle longest, R6 id (R5 is applied in Python)
        " ORDER BY booked DESC, matches DESC,"
        " CAST(a.active_tickets AS DOUBLE PRECISION)"
        " / (CASE WHEN a.capacity > 1 THEN a.capacity ELSE 1 END),"
        " COALESCE(a.idle_since, a.presence_changed_at, %s), a.id"
        " LIMIT %s"
    ).format(**t)


_RANKED: prepared.Statement | None = None


def _aware(value) -> datetime | None:
    """A timestamp as read by a raw cursor (SQLite may give text or naive UTC)."""
    if value is None or (isinstance(value, datetime) and value.tzinfo is not None):
        return value
    if isinstance(value, str):
        from django.utils.dateparse import parse_datetime

        value = parse_datetime(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@dataclass(frozen=True)
class Ranked:
    candidates: list[rules.Candidate]  # best first
    exact: bool  # False: agents tied on R1–R4 straddle the limit
    ahead: int  # queued tickets of the language ahead of this one (when any agent is eligible)
    surge: pricing_services.Surge | None  # the surge now (when any agent is eligible)


def ranked_in_database(*, ticket: rules.WaitingTicket, now: datetime, limit: int) -> Ranked:
    """The ticket's eligible agents in rule order, chosen by the database.

    One query applies rules E1–E7 and orders by R1–R4 and R6 (``rules`` has
    them in Python; a test checks the two forms agree on random markets),
    returning at most ``limit`` agents.  R5 (quality) cannot be computed in
    SQL, so the rows are re-sorted in Python with the full key.  That is exact
    unless agents tied on R1–R4 straddle the limit; ``exact`` is then False
    and the caller falls back to ranking every candidate.  The same statement
    counts the tickets ahead of this one in its language (0 when no agent is
    eligible: there is no row to carry it), and the surge's two counts.
    """
    global _RANKED
    if _RANKED is None:
        _RANKED = prepared.Statement("humanline_ranked_agents", _ranked_sql())
    at = connection.ops.adapt_datetimefield_value
    approved, online = AgentStatus.APPROVED.value, Presence.ONLINE.value
    queued_at = at(ticket.queued_at)
    own_rank = PRIORITY_RANK.get(ticket.priority)
    params = [
        ticket.language,
        ticket.ticket_id,
        own_rank,
        own_rank,
        queued_at,
        queued_at,
        ticket.ticket_id,
        at(now),
        at(now),
        ticket.language,
        ticket.category,
        rules.GENERAL,
        ticket.language,
        ticket.category,
        ticket.ticket_id,
        at(EPOCH),
        limit,
    ]
    with connection.cursor() as cursor:
        _RANKED.execute(connection, cursor, params)
        rows = cursor.fetchall()
    quality = quality_cached(agent_ids=[row[0] for row in rows], now=now)
    candidates = [
        rules.Candidate(
            agent_id=agent_id,
            status=approved,
            presence=online,
            languages=frozenset({ticket.language}),
            # Only whether the agent has the ticket's own skill matters to the order.
            skills=frozenset({ticket.category} if matches else {rules.GENERAL}),
            capacity=capacity,
            load=load,
            has_pending_offer=False,
            booked_now=bool(booked),
            idle_since=_aware(idle_since) or _aware(changed_at) or EPOCH,
            quality=quality.get(agent_id),
        )
        for agent_id, capacity, load, idle_since, changed_at, _, _, _, booked, matches in rows
    ]

    def before_quality(candidate):
        return rules.agent_order_key(ticket, candidate)[:4]

    exact = not (
        len(candidates) == limit
        and limit > FAST_PATH_AGENTS
        and before_quality(candidates[FAST_PATH_AGENTS - 1]) == before_quality(candidates[-1])
    )
    candidates.sort(key=lambda c: rules.agent_order_key(ticket, c))
    if not rows:
        return Ranked(candidates=[], exact=True, ahead=0, surge=None)
    ahead, waiting, free = rows[0][5:8]
    surge = pricing_services.surge_of(waiting=waiting, free=int(free))
    return Ranked(candidates=candidates, exact=exact, ahead=ahead, surge=surge)


def dispatch_ticket(
    *, ticket_id: int, opened: Ticket | None = None, now: datetime | None = None
) -> bool:
    """The fast path for a ticket that just entered ``queued``; False asks for a batch pass.

    When the agents eligible for the ticket outnumber the tickets waiting ahead
    of it in its language, a batch cannot serve the queue better: everyone
    ahead can still be served by the agents left.  The ticket then goes at once
    to its best agent (``rules.rank``), in the process that queued it, right
    after the commit, without a hop through the broker.  The best few agents
    are tried in rank order under ``SKIP LOCKED``, so concurrent fast paths
    fan out over the free agents instead of queueing on the best one.

    The agents come ranked from the database (``ranked_in_database``), one
    query and only as many rows as the decision needs.

    A ticket just opened comes as written (``opened``): its lane, priority and
    ``queued_at`` are not read again; whether it still waits, the offer's own
    statement checks under its lock.

    Returns True when the ticket got an offer, no longer waits, or is held by
    another dispatcher (a batch pass deciding it; a lock held by anything else
    leaves it to the sweep, within a second); False when the batch pass must
    decide (a deeper queue, no free agent, lost races).
    """
    now = now or timezone.now()
    if opened is not None:
        row = (opened.status, opened.language, opened.category, opened.priority, opened.queued_at)
    else:
        row = (
            Ticket.objects.filter(pk=ticket_id)
            .values_list("status", "language", "category", "priority", "queued_at")
            .first()
        )
    if row is None or row[0] != TicketStatus.QUEUED:
        return True
    _, language, category, priority, queued_at = row
    waiting = rules.WaitingTicket(
        ticket_id=ticket_id,
        language=language,
        category=category,
        priority=priority,
        queued_at=queued_at or now,
    )
    found = ranked_in_database(ticket=waiting, now=now, limit=FAST_PATH_AGENTS + 1)
    if found.ahead >= len(found.candidates) == FAST_PATH_AGENTS + 1:
        # A deep queue: are there more eligible agents than tickets ahead?
        found = ranked_in_database(ticket=waiting, now=now, limit=found.ahead + 1)
    ranked = found.candidates
    if len(ranked) <= found.ahead:
        return False  # no more eligible agents than tickets ahead: the batch decides
    if not found.exact:
        offered_to = frozenset(
            Offer.objects.filter(ticket_id=ticket_id, status__in=ENDED).values_list(
                "agent_id", flat=True
            )
        )
        waiting = replace(waiting, offered_to=offered_to)
        ranked = rules.rank(waiting, _candidates(languages={language}, now=now))
    best = [c.agent_id for c in ranked[:FAST_PATH_AGENTS]]
    multiplier = found.surge.multiplier
    if connection.vendor == "postgresql":
        # A ticket another dispatcher holds is being decided there: no pass for it.
        made = offer_first_free(ticket_id=ticket_id, agent_ids=best, multiplier=multiplier)
        if made.offer is not None and opened is not None:
            # The opening request's response shows what the offer's statement
            # wrote and saw, without reading the ticket again.
            standing_seen(opened, status=TicketStatus.OFFERED, ahead=made.ahead)
        return made.offer is not None or not made.ticket_held
    offers = offers_make(pairs=[(ticket_id, agent_id) for agent_id in best], multiplier=multiplier)
    return bool(offers)


# What the offer and accept statements return of the ticket (alias ``t``), in
# this order, for ``_ticket_read``: what the pushes show of it.
_TICKET_COLUMNS = (
    "t.subject, t.body, t.language, t.category, t.priority, t.handoff_transcript,"
    " t.handoff_summary, t.handoff_intent, t.queued_at"
)


def _as_read(instance):
    """A model instance built from a row a statement returned: saved, not new."""
    instance._state.adding, instance._state.db = False, connection.alias
    return instance


def _ticket_read(ticket_id: int, columns, *, status: str, now: datetime, **fields) -> Ticket:
    """The ticket from ``_TICKET_COLUMNS`` as returned, with its new status."""
    subject, body, language, category, priority, transcript, summary, intent, queued_at = columns
    return _as_read(
        Ticket(
            id=ticket_id,
            subject=subject,
            body=body,
            language=language,
            category=category,
            priority=priority,
            status=status,
            # A raw cursor gives jsonb as text (Django parses it for the ORM).
            handoff_transcript=json.loads(transcript)
            if isinstance(transcript, str)
            else transcript,
            handoff_summary=summary,
            handoff_intent=intent,
            queued_at=queued_at,
            status_changed_at=now,
            **fields,
        )
    )


def _offer_sql() -> str:
    """The statement behind ``offer_first_free`` (PostgreSQL)."""
    t = {
        "ticket": Ticket._meta.db_table,
        "event": TicketEvent._meta.db_table,
        "agent": Agent._meta.db_table,
        "offer": Offer._meta.db_table,
        "rate": RateCard._meta.db_table,
        "queued": _literal(TicketStatus.QUEUED.value),
        "offered": _literal(TicketStatus.OFFERED.value),
        "approved": _literal(AgentStatus.APPROVED.value),
        "online": _literal(Presence.ONLINE.value),
        "pending": _literal(OfferStatus.PENDING.value),
        "ended": ", ".join(_literal(status.value) for status in ENDED),
    }
    # Only table names and the code's constants are formatted in; every value of
    # the ticket, the agents or the moment is a parameter.
    return (
        # The ticket, locked, if it still waits and nobody else holds it.
        "WITH t AS (SELECT id, customer_id, subject, body, language, category, priority,"  # noqa: S608
        " handoff_transcript, handoff_summary, handoff_intent, queued_at FROM {ticket}"
        " WHERE id = %(ticket)s AND status = {queued} FOR UPDATE SKIP LOCKED),"
        # The first of the agents, in the order given, still free (E1, E2, E5, E6,
        # E7 read again under the lock) whose row nobody else holds.
        " a AS (SELECT ag.id FROM {agent} ag WHERE ag.id = ANY(%(agents)s)"
        " AND EXISTS (SELECT 1 FROM t)"
        " AND ag.status = {approved} AND ag.presence = {online}"
        " AND ag.active_tickets < ag.capacity"
        " AND NOT EXISTS (SELECT 1 FROM {offer} p"
        " WHERE p.agent_id = ag.id AND p.status = {pending})"
        " AND NOT EXISTS (SELECT 1 FROM {offer} p WHERE p.agent_id = ag.id"
        " AND p.ticket_id = %(ticket)s AND p.status IN ({ended}))"
        " ORDER BY array_position(%(agents)s, ag.id) LIMIT 1 FOR UPDATE OF ag SKIP LOCKED),"
        # The price: the rate card's amount for the category (or the default) times
        # the surge, rounded half up to the cent as pricing.task_price does.
        " r AS (SELECT COALESCE((SELECT amount FROM {rate} WHERE category = t.category"
        " AND currency = %(currency)s), %(default_rate)s) AS base FROM t),"
        " o AS (INSERT INTO {offer} (ticket_id, agent_id, status, base_amount, surge_multiplier,"
        " amount, currency, created_at, expires_at, answered_at, reason)"
        " SELECT t.id, a.id, {pending}, r.base, %(multiplier)s,"
        " ROUND(r.base * %(multiplier)s, 2), %(currency)s, %(now)s, %(expires)s, NULL, ''"
        " FROM t, a, r"
        " RETURNING id, ticket_id, agent_id, base_amount, amount),"
        # The audit row and the ticket's new status (tickets_offer_many's writes).
        " e AS (INSERT INTO {event} (ticket_id, actor_id, integration_id, agent_id, from_status,"
        " to_status, reason, created_at) SELECT o.ticket_id, NULL, NULL, NULL, {queued},"
        " {offered}, 'Offered to agent ' || o.agent_id || '.', %(now)s FROM o),"
        " u AS (UPDATE {ticket} SET status = {offered}, status_changed_at = %(now)s"
        " WHERE id IN (SELECT ticket_id FROM o))"
        # A row whenever the ticket was ours to offer; its offer columns are
        # NULL when no agent was free.  Last, with an offer, the waiting tickets
        # ahead of it in its lane, for the response of the request that opened it.
        f" SELECT o.id, o.agent_id, o.base_amount, o.amount, t.customer_id, {_TICKET_COLUMNS},"
        f" CASE WHEN o.id IS NOT NULL THEN ({ahead_of_sql('t')}) END"
        " FROM t LEFT JOIN o ON o.ticket_id = t.id"
    ).format(**t)


_OFFER: prepared.Statement | None = None


class FastOffer(NamedTuple):
    offer: Offer | None
    # False: the ticket was not this call's to offer — it no longer waits, or
    # another dispatcher (a batch pass) holds it and is deciding it.
    ticket_held: bool
    # With an offer: the waiting tickets ahead of this one in its lane, as the
    # statement saw them.
    ahead: int | None = None


def offer_first_free(*, ticket_id: int, agent_ids: list[int], multiplier: Decimal) -> FastOffer:
    """The fast path's offer on PostgreSQL: one statement, one round trip.

    The same checks, locks and writes as ``offers_make`` for one ticket and
    its best agents in order: the ticket and the first free agent are locked
    ``SKIP LOCKED``, the offer and the audit row are inserted and the ticket
    becomes ``offered``, all in one statement (atomic by itself, so outside a
    transaction there is no BEGIN or COMMIT to wait for).  Through the ORM
    this took eight round trips and most of a new ticket's CPU.  The pushes
    are built from the rows it returns.  No offer when every agent is taken
    (the batch pass decides then: ``ticket_held``) or when the ticket no longer
    waits or another dispatcher holds it (nothing to do here).
    """
    global _OFFER
    if _OFFER is None:
        _OFFER = prepared.Statement("humanline_offer_first_free", _offer_sql())
    now = timezone.now()
    currency = pricing_services.currency()
    params = {
        "ticket": ticket_id,
        "agents": list(agent_ids),
        "currency": currency,
        "default_rate": Decimal(settings.HUMANLINE["TASK_RATE_DEFAULT"]),
        "multiplier": multiplier,
        "now": now,
        "expires": now + timedelta(seconds=_policy("OFFER_WINDOW_SECONDS")),
    }
    for attempt in range(1, FAST_PATH_ATTEMPTS + 1):
        try:
            # Inside a transaction (a caller's, or a test's) a failed statement must
            # not poison it: a savepoint then.  Outside one it is atomic alone.
            guard = transaction.atomic() if connection.in_atomic_block else nullcontext()
            with guard, connection.cursor() as cursor:
                _OFFER.execute(connection, cursor, params)
                row = cursor.fetchone()
            break
        except IntegrityError:
            # Another fast path offered the same agent (or ticket) after this
            # statement's snapshot: the unique indexes refused the second offer.
            # Run again: the new snapshot sees that offer and passes that agent.
            if attempt == FAST_PATH_ATTEMPTS:
                logger.warning(
                    "offer statement lost %d races for ticket %s;"
                    " left to the batch pass or the sweep",
                    attempt,
                    ticket_id,
                )
                return FastOffer(offer=None, ticket_held=True)
    if row is None:
        return FastOffer(offer=None, ticket_held=False)
    offer_id, agent_id, base, amount, customer_id, *columns, ahead = row
    if offer_id is None:
        return FastOffer(offer=None, ticket_held=True)
    ticket = _ticket_read(
        ticket_id, columns, customer_id=customer_id, status=TicketStatus.OFFERED, now=now
    )
    offer = _as_read(
        Offer(
            id=offer_id,
            ticket=ticket,
            agent_id=agent_id,
            status=OfferStatus.PENDING,
            base_amount=base,
            surge_multiplier=multiplier,
            amount=amount,
            currency=currency,
            created_at=now,
            expires_at=params["expires"],
        )
    )

    def pushes():
        # As offers_make: the ticket's status to its watchers, then the offer to
        # its agent; in one send.
        with channel_send.batched():
            ticket_events.statuses_pushed([ticket])
            events.offers_made(offers=[offer])

    transaction.on_commit(pushes)
    return FastOffer(offer=offer, ticket_held=True, ahead=ahead)


# --- the freed agent pulls ------------------------------------------------------

# How many heads of the queue the pull tries, in order, when concurrent
# dispatchers take the first ones from under it.
PULL_TICKETS = 4


def _pull_sql() -> str:
    """The statement behind ``pull_for_agent`` (PostgreSQL and SQLite)."""
    t = {
        **_eligibility_names(),
        "general": _literal(rules.GENERAL),
        "rank": priority_rank_sql("t"),
    }

    def has_skill(slug: str) -> str:
        return (
            "EXISTS (SELECT 1 FROM {agent_skill} s JOIN {skill} k ON k.id = s.skill_id"  # noqa: S608
            f" WHERE s.agent_id = %(agent)s AND k.slug = {slug})"
        )

    return (
        # Only table names and the code's constants are formatted in; the agent,
        # the moment and the limit are parameters.
        "SELECT t.id,"  # noqa: S608
        # The surge's two counts (pricing_services.surge_now), read in passing.
        " (SELECT COUNT(*) FROM {ticket} w WHERE w.status = {queued}) AS waiting,"
        " (SELECT COALESCE(SUM(f.capacity - f.active_tickets), 0) FROM {agent} f"
        " WHERE f.status = {approved} AND f.presence = {online}) AS free"
        " FROM {ticket} t"
        " WHERE t.status = {queued} AND t.status_changed_at < %(settled)s"
        # The agent is free: E1, E2, E5, E6 (read again under the offer's locks).
        " AND EXISTS (SELECT 1 FROM {agent} a WHERE a.id = %(agent)s"
        " AND a.status = {approved} AND a.presence = {online}"
        " AND a.active_tickets < a.capacity AND NOT EXISTS (SELECT 1 FROM {offer} p"
        " WHERE p.agent_id = a.id AND p.status = {pending}))"
        # E3 speaks the ticket's language
        " AND EXISTS (SELECT 1 FROM {language} l WHERE l.agent_id = %(agent)s"
        " AND l.code = t.language)"
        # E4 the ticket's skill, or general when no specialist for it is online
        f" AND ({has_skill('t.category')} OR ({has_skill('{general}')}"
        " AND NOT EXISTS (SELECT 1 FROM {agent} a2 JOIN {language} l2 ON l2.agent_id = a2.id"
        " JOIN {agent_skill} s2 ON s2.agent_id = a2.id JOIN {skill} k2 ON k2.id = s2.skill_id"
        " WHERE a2.status = {approved} AND a2.presence = {online} AND l2.code = t.language"
        " AND k2.slug = t.category)))"
        # E7 not offered this ticket before
        " AND NOT EXISTS (SELECT 1 FROM {offer} o WHERE o.ticket_id = t.id"
        " AND o.agent_id = %(agent)s AND o.status IN ({ended}))"
        # The ticket order: priority, then waiting time, then id.
        " ORDER BY {rank} DESC, t.queued_at, t.id"
        " LIMIT %(limit)s"
    ).format(**t)


_PULL: prepared.Statement | None = None


def pull_for_agent(*, agent_id: int, now: datetime | None = None) -> bool:
    """An agent just freed (an accept) takes the head of the queue they can serve.

    Without this, every accept while tickets waited asked for a batch pass,
    which reads the whole market: under load the passes took the cores the
    accepts needed, accepts came slower, more tickets waited, and more passes
    were asked for.  Here one statement (``_pull_sql``) finds the first
    waiting tickets in ticket order (priority, then waiting time) that the
    agent is eligible for (E1–E7, with the ``general`` fallback), and the
    offer is made as the fast path makes it, to that one agent: what a batch
    pass would give an agent who is the only one free.

    Tickets that entered the queue less than ``DISPATCH_PULL_AFTER_MS`` ago
    are left to their own fast path, which chooses the best agent for them
    (rules R1–R6); a ticket waits past that only when its fast path deferred
    (a queue deeper than the free agents) — then any freed agent is as good
    as another for its wait, and it is served by whoever frees first.

    True when the agent got an offer, no waiting ticket is theirs to take, or
    the agent stopped being free meanwhile (another dispatcher offered them a
    ticket; the offer statement cannot tell that from losing its races three
    times, which the sweep then covers within a second); False when tickets
    they could take were all held by other dispatchers (the caller then asks
    for a batch pass).
    """
    global _PULL
    if _PULL is None:
        _PULL = prepared.Statement("humanline_pull_for_agent", _pull_sql())
    now = now or timezone.now()
    params = {
        "agent": agent_id,
        "settled": connection.ops.adapt_datetimefield_value(
            now - timedelta(milliseconds=_policy("DISPATCH_PULL_AFTER_MS"))
        ),
        "limit": PULL_TICKETS,
    }
    with connection.cursor() as cursor:
        _PULL.execute(connection, cursor, params)
        rows = cursor.fetchall()
    if not rows:
        return True
    multiplier = pricing_services.surge_of(waiting=rows[0][1], free=int(rows[0][2])).multiplier
    for ticket_id, _, _ in rows:
        if connection.vendor == "postgresql":
            made = offer_first_free(
                ticket_id=ticket_id, agent_ids=[agent_id], multiplier=multiplier
            )
            if made.offer is not None or made.ticket_held:
                # An offer; or the ticket was ours but the agent no longer free
                # (another dispatcher offered them something meanwhile).
                return True
        elif offers_make(pairs=[(ticket_id, agent_id)], multiplier=multiplier):
            return True
    return False


LOCK_KEY, AGAIN_KEY = "dispatch:running", "dispatch:again"


# If a pass is running, ask it to go round once more; atomic, so that a pass
# releasing the lock either sees the request or leaves no lock behind to hide
# it (the caller then queues a task).
_AGAIN_IF_RUNNING = """
if redis.call('EXISTS', KEYS[1]) == 1 then
    redis.call('SET', KEYS[2], '1', 'EX', ARGV[1])
    return 1
end
return 0
"""


def dispatch_ask_running_pass() -> bool:
    """True if a dispatch pass was running and will now go round once more.

    At saturation every accepted offer asks for a dispatch while a pass is
    running; publishing a task for each only had the worker set the flag that
    this sets directly, in one round trip to Redis.  The holder deletes the
    lock *before* its last look at the flag (``dispatch_single_flight``), so
    the request is either seen by that look or finds no lock.  False (queue a
    task) with any cache but Redis's.
    """
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    cache = caches["default"]
    if not isinstance(cache, RedisCache):
        return False
    client = cache._cache.get_client(write=True)
    return bool(
        client.eval(
            _AGAIN_IF_RUNNING,
            2,
            cache.make_and_validate_key(LOCK_KEY),
            cache.make_and_validate_key(AGAIN_KEY),
            30,
        )
    )


def dispatch_single_flight(*, max_passes: int = 50, pause=time.sleep) -> int:
    """Run ``dispatch`` unless one is running; then that one runs again for us.

    Every event that can create a match asks for a dispatch, up to hundreds a
    second.  Running them all at once would have each read the same market and
    fight over the same rows; instead one pass at a time runs (a cache lock,
    Redis in production) and a request arriving meanwhile sets a flag that
    makes the running pass go round once more.  Each pass matches everything
    waiting, so nothing is lost; the periodic sweep covers a crashed holder
    (the lock expires).  Passes run back to back start at least
    ``DISPATCH_PASS_INTERVAL_MS`` apart: under load every accept asks for a
    pass, and a pass per accept spent the cores on passes of one or two
    offers each; the requests of those milliseconds share the next pass.
    """
    from django.core.cache import cache

    made = 0
    if not cache.add(LOCK_KEY, 1, timeout=30):
        cache.set(AGAIN_KEY, 1, timeout=30)
        return 0
    interval = _policy("DISPATCH_PASS_INTERVAL_MS") / 1000
    try:
        for number in range(max_passes):
            started = time.monotonic()
            cache.delete(AGAIN_KEY)
            made += dispatch()
            if not cache.get(AGAIN_KEY) or number == max_passes - 1:
                break
            rest = interval - (time.monotonic() - started)
            if rest > 0:
                pause(rest)
    finally:
        cache.delete(LOCK_KEY)
    if cache.get(AGAIN_KEY):
        # A request slipped in between our last look and the release.
        made += dispatch_single_flight(max_passes=max_passes, pause=pause)
    return made


def offers_make(
    *, pairs: list[tuple[int, int]], multiplier: Decimal, rates: dict | None = None
) -> list[Offer]:
    """Make the offers for many (ticket, agent) pairs in one transaction.

    The same checks as ``offer_make``, under the same locks (tickets, then
    agents, both ``SKIP LOCKED`` so a concurrent dispatcher's rows are left to
    it), with one INSERT, one UPDATE of the tickets and one round of pushes:
    a batch of a hundred offers costs a handful of queries and one commit.
    """
    if not pairs:
        return []
    window = timedelta(seconds=_policy("OFFER_WINDOW_SECONDS"))
    rates = rates if rates is not None else pricing_services.rate_table()
    try:
        with transaction.atomic():
            offers = _offers_insert(pairs=pairs, multiplier=multiplier, rates=rates, window=window)
            if offers:
                ticket_services.tickets_offer_many(
                    tickets=[offer.ticket for offer in offers],
                    reasons={o.ticket_id: f"Offered to agent {o.agent_id}." for o in offers},
                )
                # The pushes are built from the rows written here: no re-read.
                transaction.on_commit(lambda offers=offers: events.offers_made(offers=offers))
    except IntegrityError:
        # Only possible if a row changed hands outside these locks; the next
        # pass (events or the sweep) matches again from fresh data.
        logger.warning("dispatch pass lost a race on %d pairs; retrying later", len(pairs))
        return []
    return offers


def _offers_insert(
    *, pairs: list[tuple[int, int]], multiplier: Decimal, rates: dict, window: timedelta
) -> list[Offer]:
    currency = pricing_services.currency()
    tickets = {
        t.pk: t
        for t in Ticket.objects.select_for_update(skip_locked=True)
        .filter(pk__in=[ticket_id for ticket_id, _ in pairs], status=TicketStatus.QUEUED)
        .order_by("pk")
    }
    if not tickets:
        return []
    # Rule E6 (one pending offer per agent) is read with the lock.
    agents = {
        a.pk: a
        for a in Agent.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(
            pk__in=[agent_id for ticket_id, agent_id in pairs if ticket_id in tickets],
            status=AgentStatus.APPROVED,
            presence=Presence.ONLINE,
            active_tickets__lt=F("capacity"),
        )
        .annotate(
            pending=Exists(Offer.objects.filter(agent=OuterRef("pk"), status=OfferStatus.PENDING))
        )
        .order_by("pk")
    }
    busy = {agent_id for agent_id, agent in agents.items() if agent.pending}
    if len(busy) == len(agents):
        return []
    before = set(
        Offer.objects.filter(
            ticket_id__in=tickets, agent_id__in=agents, status__in=ENDED
        ).values_list("ticket_id", "agent_id")
    )
    now = timezone.now()
    offers = []
    offered: set[int] = set()
    # Pairs are in preference order; a ticket listed with several agents
    # (the fast path) goes to the first of them still free.
    for ticket_id, agent_id in pairs:
        ticket, agent = tickets.get(ticket_id), agents.get(agent_id)
        if ticket is None or agent is None or agent_id in busy or ticket_id in offered:
            continue
        if (ticket_id, agent_id) in before:
            continue
        busy.add(agent_id)
        offered.add(ticket_id)
        base = pricing_services.base_rate(
            category=ticket.category, currency_code=currency, rates=rates
        )
        offers.append(
            Offer(
                ticket=ticket,
                agent=agent,
                base_amount=base,
                surge_multiplier=multiplier,
                amount=pricing_services.pricing.task_price(base=base, multiplier=multiplier),
                currency=currency,
                created_at=now,
                expires_at=now + window,
            )
        )
    if offers:
        Offer.objects.bulk_create(offers)
    return offers


def offer_make(
    *,
    ticket_id: int,
    agent_id: int,
    multiplier: Decimal | None = None,
    rates: dict | None = None,
) -> Offer | None:
    """Offer one queued ticket to one agent, or None if either is no longer free."""
    if multiplier is None:
        multiplier = pricing_services.surge_now().multiplier
    offers = offers_make(pairs=[(ticket_id, agent_id)], multiplier=multiplier, rates=rates)
    return offers[0] if offers else None


# --- answering offers -----------------------------------------------------------


def _own_offer(*, offer_id: int, user: User) -> Offer:
    """The caller's offer, locked; ``Offer.DoesNotExist`` (a 404) for anyone else's."""
    # of=("self",): the agent row is read, not locked here; ticket_assign locks
    # it after the ticket, keeping the order offer → ticket → agent.
    return (
        Offer.objects.select_for_update(of=("self",))
        .select_related("agent")
        .get(pk=offer_id, agent__user=user)
    )


def _refuse_unless_open(offer: Offer, *, now: datetime) -> None:
    _refuse_unless_answerable(status=offer.status, expires_at=offer.expires_at, now=now)


def _refuse_unless_answerable(*, status: str, expires_at: datetime, now: datetime) -> None:
    if status != OfferStatus.PENDING:
        raise InvalidTransition(
            f"This offer is {status} and can no longer be answered.",
            code=f"offer_{status}",
            fields={"status": [status]},
        )
    if expires_at <= now:
        raise InvalidTransition(
            "This offer has expired.", code="offer_expired", fields={"status": ["expired"]}
        )


def offer_accept(*, offer_id: int, user: User) -> Offer:
    """The offered agent takes the ticket: it is assigned to them at the locked price.

    ``Offer.DoesNotExist`` for anyone else's offer (a 404); ``InvalidTransition``
    or ``Conflict`` (a 409) when it can no longer be taken, with nothing written.
    """
    if connection.vendor == "postgresql":
        return _offer_accept_in_one_statement(offer_id=offer_id, user=user)
    return _offer_accept(offer_id=offer_id, user=user)


@transaction.atomic
def _offer_accept(*, offer_id: int, user: User) -> Offer:
    """``offer_accept`` through the ORM (SQLite, the embedded default)."""
    offer = _own_offer(offer_id=offer_id, user=user)
    now = timezone.now()
    _refuse_unless_open(offer, now=now)
    offer.ticket = ticket_services.ticket_assign_within(
        ticket_id=offer.ticket_id,
        agent_id=offer.agent_id,
        actor=user,
        reason=f"Accepted offer {offer.pk}.",
    )
    offer.status, offer.answered_at = OfferStatus.ACCEPTED, now
    offer.save(update_fields=["status", "answered_at"])
    if offer.agent.expired_streak:  # read with the offer's lock (select_related)
        Agent.objects.filter(pk=offer.agent_id).update(expired_streak=0)
    # The push is built from the offer and the ticket as written here: no re-read.
    transaction.on_commit(lambda offer=offer: events.offer_accepted(offer=offer))
    return offer


def _accept_sql() -> str:
    """The statement behind ``_offer_accept_in_one_statement`` (PostgreSQL)."""
    t = {
        "ticket": Ticket._meta.db_table,
        "event": TicketEvent._meta.db_table,
        "agent": Agent._meta.db_table,
        "offer": Offer._meta.db_table,
        "user": User._meta.db_table,
        "pending": _literal(OfferStatus.PENDING.value),
        "accepted": _literal(OfferStatus.ACCEPTED.value),
        "waiting": ", ".join(
            _literal(status.value) for status in (TicketStatus.QUEUED, TicketStatus.OFFERED)
        ),
        "approved": _literal(AgentStatus.APPROVED.value),
        "assigned": _literal(TicketStatus.ASSIGNED.value),
        "queued": _literal(TicketStatus.QUEUED.value),
    }
    # Only table names and the code's constants are formatted in; every value of
    # the offer, the caller or the moment is a parameter.
    return (
        # The locks, in the order every path takes them (offer → ticket → agent):
        # each lock's row is found through the one before, so it waits for it.
        "WITH o AS (SELECT p.id, p.ticket_id, p.agent_id, p.status, p.expires_at, p.amount,"  # noqa: S608
        " p.currency FROM {offer} p JOIN {agent} pa ON pa.id = p.agent_id"
        " WHERE p.id = %(offer)s AND pa.user_id = %(user)s FOR UPDATE OF p),"
        " t AS (SELECT id, status, customer_id, subject, body, language, category, priority,"
        " handoff_transcript, handoff_summary, handoff_intent, queued_at FROM {ticket}"
        " WHERE id = (SELECT ticket_id FROM o) FOR UPDATE),"
        " a AS (SELECT id, status FROM {agent} WHERE id = (SELECT agent_id FROM o)"
        " AND EXISTS (SELECT 1 FROM t) FOR UPDATE),"
        # Every check, on the locked rows; then the writes, only if the agent has a
        # free seat (the conditional increment; agent_never_above_capacity backs it).
        " ok AS (SELECT 1 FROM o, t, a WHERE o.status = {pending} AND o.expires_at > %(now)s"
        " AND t.status IN ({waiting}) AND a.status = {approved}),"
        " inc AS (UPDATE {agent} SET active_tickets = active_tickets + 1, expired_streak = 0"
        " WHERE id = (SELECT id FROM a) AND active_tickets < capacity"
        " AND EXISTS (SELECT 1 FROM ok) RETURNING id),"
        " e AS (INSERT INTO {event} (ticket_id, actor_id, integration_id, agent_id, from_status,"
        " to_status, reason, created_at) SELECT t.id, %(user)s, NULL, inc.id, t.status,"
        " {assigned}, %(reason)s, %(now)s FROM t, inc),"
        " u AS (UPDATE {ticket} SET status = {assigned}, status_changed_at = %(now)s,"
        " assigned_agent_id = (SELECT id FROM inc), assigned_at = %(now)s"
        " WHERE id = (SELECT id FROM t) AND EXISTS (SELECT 1 FROM inc)),"
        " w AS (UPDATE {offer} SET status = {accepted}, answered_at = %(now)s"
        " WHERE id = (SELECT id FROM o) AND EXISTS (SELECT 1 FROM inc))"
        # What the checks saw, whether the writes happened, and what the pushes need.
        " SELECT o.status, o.expires_at, t.status, a.status, EXISTS (SELECT 1 FROM inc),"
        " o.ticket_id, o.agent_id, o.amount, o.currency, t.customer_id, c.name,"
        f" {_TICKET_COLUMNS},"
        # Whether tickets wait for the agent this accept frees for another offer
        # (not those queued a moment ago: their own fast path is deciding them).
        " EXISTS (SELECT 1 FROM {ticket} q WHERE q.status = {queued}"
        " AND q.status_changed_at < %(settled)s)"
        " FROM o LEFT JOIN t ON true LEFT JOIN a ON true LEFT JOIN {user} c ON c.id = t.customer_id"
    ).format(**t)


_ACCEPT: prepared.Statement | None = None


def _offer_accept_in_one_statement(*, offer_id: int, user: User) -> Offer:
    """``offer_accept`` on PostgreSQL: one statement, one round trip.

    The same locks, in the same order, the same checks and the same writes as
    ``_offer_accept`` (which took nine round trips and most of an accept's
    CPU): the statement reads the three rows locked, writes only if every check
    passes, and returns what it saw.  The errors are raised from that, in the
    ORM version's order; nothing was written then.  Atomic by itself outside a
    transaction; a savepoint inside one.
    """
    global _ACCEPT
    if _ACCEPT is None:
        _ACCEPT = prepared.Statement("humanline_offer_accept", _accept_sql())
    now = timezone.now()
    params = {
        "offer": offer_id,
        "user": user.pk,
        "settled": now - events.just_queued(),
        "reason": f"Accepted offer {offer_id}.",
        "now": now,
    }
    guard = transaction.atomic() if connection.in_atomic_block else nullcontext()
    with guard, connection.cursor() as cursor:
        _ACCEPT.execute(connection, cursor, params)
        row = cursor.fetchone()
    if row is None:
        raise Offer.DoesNotExist("No such offer.")
    offer_status, expires_at, ticket_status, agent_status, written, *rest = row
    if not written:
        _refuse_unless_answerable(status=offer_status, expires_at=expires_at, now=now)
        ticket_services.refuse_unless_assignable(
            ticket_status=ticket_status, agent_status=agent_status
        )
        raise ticket_services.at_capacity()
    ticket_id, agent_id, amount, currency, customer_id, customer_name, *columns, more = rest
    language, category = columns[2], columns[3]
    agent = _as_read(Agent(id=agent_id, user=user, status=AgentStatus.APPROVED))
    ticket = _ticket_read(
        ticket_id,
        columns,
        customer=User(id=customer_id, name=customer_name),
        status=TicketStatus.ASSIGNED,
        now=now,
        assigned_agent=agent,
        assigned_at=now,
    )
    offer = _as_read(
        Offer(
            id=offer_id,
            ticket=ticket,
            agent=agent,
            status=OfferStatus.ACCEPTED,
            amount=amount,
            currency=currency,
            expires_at=expires_at,
            answered_at=now,
        )
    )

    def after_commit():
        # As ticket_assign_within and _offer_accept: the customer's pushes, the
        # lane's places, then the agent's push (and dispatch if tickets wait);
        # the customer's and the agent's pushes in one send.
        with channel_send.batched():
            ticket_events.assignment_pushed(ticket)
            ticket_events.lane_changed(language=language, category=category)
            events.offer_accepted(offer=offer, tickets_waiting=more)

    transaction.on_commit(after_commit)
    return offer


@transaction.atomic
def offer_decline(*, offer_id: int, user: User, reason: str = "") -> Offer:
    """The offered agent passes; the ticket goes at once to the next best agent."""
    offer = _own_offer(offer_id=offer_id, user=user)
    now = timezone.now()
    _refuse_unless_open(offer, now=now)
    offer.status, offer.answered_at = OfferStatus.DECLINED, now
    offer.reason = (reason or "").strip()[:200]
    offer.save(update_fields=["status", "answered_at", "reason"])
    if offer.agent.expired_streak:
        Agent.objects.filter(pk=offer.agent_id).update(expired_streak=0)
    # Requeueing triggers dispatch after commit (tickets.events.QUEUED_HOOKS).
    ticket_services.ticket_requeue(
        ticket_id=offer.ticket_id, reason=f"Offer {offer.pk} declined by the agent."
    )
    return offer


def _end_pending(*, offer_id: int, status: str, reason: str, now: datetime) -> Offer | None:
    """Close a pending offer the agent did not answer; requeue its ticket.  Caller: atomic."""
    offer = (
        Offer.objects.select_for_update(skip_locked=True)
        .filter(pk=offer_id, status=OfferStatus.PENDING)
        .first()
    )
    if offer is None:
        return None
    offer.status, offer.answered_at, offer.reason = status, now, reason
    offer.save(update_fields=["status", "answered_at", "reason"])
    # The ticket may have been cancelled meanwhile; only an offered one goes back.
    if Ticket.objects.filter(pk=offer.ticket_id, status=TicketStatus.OFFERED).exists():
        ticket_services.ticket_requeue(
            ticket_id=offer.ticket_id, reason=f"Offer {offer.pk} {status}: {reason}."
        )
    return offer


def offers_expire_overdue(*, now: datetime | None = None) -> int:
    """Expire the pending offers past their window; three in a row set the agent away."""
    now = now or timezone.now()
    away_after = _policy("OFFER_EXPIRIES_BEFORE_AWAY")
    expired = 0
    overdue = list(
        Offer.objects.filter(status=OfferStatus.PENDING, expires_at__lte=now).values_list(
            "pk", flat=True
        )[:1000]
    )
    for offer_id in overdue:
        with transaction.atomic():
            offer = _end_pending(
                offer_id=offer_id,
                status=OfferStatus.EXPIRED,
                reason="not answered in time",
                now=now,
            )
            if offer is None:
                continue
            expired += 1
            Agent.objects.filter(pk=offer.agent_id).update(expired_streak=F("expired_streak") + 1)
            streak = Agent.objects.values_list("expired_streak", flat=True).get(pk=offer.agent_id)
            transaction.on_commit(lambda offer_id=offer.pk: events.offer_ended(offer_id=offer_id))
            if streak >= away_after:
                Agent.objects.filter(pk=offer.agent_id).update(expired_streak=0)
                agent_presence.agent_presence_system(
                    agent_id=offer.agent_id, status=Presence.AWAY, reason="missed_offers"
                )
    return expired


def offers_withdraw_for_agent(*, agent_id: int, reason: str) -> int:
    """The agent left (away, offline, suspended, sockets gone): their offers go back."""
    now = timezone.now()
    withdrawn = 0
    for offer_id in list(
        Offer.objects.filter(agent_id=agent_id, status=OfferStatus.PENDING).values_list(
            "pk", flat=True
        )
    ):
        with transaction.atomic():
            offer = _end_pending(
                offer_id=offer_id, status=OfferStatus.WITHDRAWN, reason=reason, now=now
            )
            if offer is not None:
                withdrawn += 1
                transaction.on_commit(
                    lambda offer_id=offer.pk: events.offer_ended(offer_id=offer_id)
                )
    return withdrawn


def offers_withdraw_for_ticket(*, ticket_id: int, reason: str) -> int:
    """The ticket stopped waiting (cancelled): its pending offer is withdrawn."""
    now = timezone.now()
    withdrawn = 0
    for offer_id in list(
        Offer.objects.filter(ticket_id=ticket_id, status=OfferStatus.PENDING).values_list(
            "pk", flat=True
        )
    ):
        with transaction.atomic():
            offer = _end_pending(
                offer_id=offer_id, status=OfferStatus.WITHDRAWN, reason=reason, now=now
            )
            if offer is not None:
                withdrawn += 1
                transaction.on_commit(
                    lambda offer_id=offer.pk: events.offer_ended(offer_id=offer_id)
                )
    return withdrawn


# --- taking work back -----------------------------------------------------------


def _requeue_assigned(*, ticket_id: int, agent_id: int, reason: str) -> bool:
    with transaction.atomic():
        ticket = (
            Ticket.objects.select_for_update(skip_locked=True)
            .filter(pk=ticket_id, status=TicketStatus.ASSIGNED, assigned_agent_id=agent_id)
            .first()
        )
        if ticket is None:
            return False
        ticket_services.ticket_requeue(ticket_id=ticket.pk, reason=reason)
        transaction.on_commit(
            lambda ticket_id=ticket.pk, agent_id=agent_id, reason=reason: events.assignment_lost(
                ticket_id=ticket_id, agent_id=agent_id, reason=reason
            )
        )
    return True


def assignments_return_for_agent(*, agent_id: int, reason: str) -> int:
    """Every ticket assigned to the agent goes back to the queue (suspension)."""
    tickets = list(
        Ticket.objects.filter(assigned_agent_id=agent_id, status=TicketStatus.ASSIGNED).values_list(
            "pk", flat=True
        )
    )
    return sum(_requeue_assigned(ticket_id=t, agent_id=agent_id, reason=reason) for t in tickets)


def _disconnected_assignments(*, now: datetime):
    """Assigned tickets whose agent has had no live socket for the longer grace period."""
    grace = now - timedelta(seconds=_policy("ASSIGNED_TICKET_GRACE_SECONDS"))
    stale = now - timedelta(seconds=_policy("AGENT_SOCKET_STALE_SECONDS"))
    alive = AgentConnection.objects.filter(
        agent=OuterRef("assigned_agent"), closed_at__isnull=True, last_seen_at__gte=stale
    )
    recent = AgentConnection.objects.filter(
        agent=OuterRef("assigned_agent"), last_seen_at__gte=grace
    )
    return (
        Ticket.objects.filter(status=TicketStatus.ASSIGNED, assigned_at__lt=grace)
        .exclude(Exists(alive))
        .exclude(Exists(recent))
    )


def _silent_assignments(*, now: datetime):
    """Assigned tickets whose agent has not written to the customer within the limit."""
    limit = now - timedelta(seconds=_policy("AGENT_FIRST_REPLY_SECONDS"))
    replied = Message.objects.filter(
        ticket=OuterRef("pk"),
        author=OuterRef("assigned_agent__user"),
        created_at__gte=OuterRef("assigned_at"),
    )
    return Ticket.objects.filter(status=TicketStatus.ASSIGNED, assigned_at__lte=limit).exclude(
        Exists(replied)
    )


def assignments_reclaim(*, now: datetime | None = None) -> dict[str, int]:
    now = now or timezone.now()
    counts = {"disconnected": 0, "silent": 0}
    for reason, queryset in (
        ("disconnected", _disconnected_assignments(now=now)),
        ("silent", _silent_assignments(now=now)),
    ):
        text = {
            "disconnected": "The agent lost their connection; finding you another agent.",
            "silent": "The agent did not reply in time; finding you another agent.",
        }[reason]
        for ticket_id, agent_id in list(queryset.values_list("pk", "assigned_agent_id")[:500]):
            counts[reason] += _requeue_assigned(ticket_id=ticket_id, agent_id=agent_id, reason=text)
    return counts


# --- the sweeper ----------------------------------------------------------------


def sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Repair what a lost message or a dead worker left behind, then dispatch.

    Expires overdue offers, takes back tickets from vanished or silent agents,
    and offers whatever is waiting.  Runs every second or two (Celery beat;
    an in-process loop in the embedded default).
    """
    now = now or timezone.now()
    result = {"expired": offers_expire_overdue(now=now)}
    result.update(assignments_reclaim(now=now))
    result["offered"] = dispatch(now=now)
    return result


# --- hooks from other apps -------------------------------------------------------


def on_suspension(*, agent: Agent, actor) -> None:
    """SUSPENSION_HOOKS: after the suspension commits, return the agent's work."""
    transaction.on_commit(
        lambda agent_id=agent.pk: assignments_return_for_agent(
            agent_id=agent_id, reason="The agent is no longer available; finding you another."
        )
    )
