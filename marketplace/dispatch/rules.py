"""The dispatch rules, each written once, as SQL conditions the statements are built from.

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

Each rule is one SQL condition about an agent (``a`` unless told) and the
ticket's side of the rules, which a statement writes either as parameters
(``VALUES``: one ticket, or a lane of them) or as the columns of the ticket
``t`` it reads (``COLUMNS``).  The statements every path runs are assembled
from these conditions once, when this module loads, and nothing else in the
code states a rule:

- ``agents_for(target)``: the eligible agents of a ticket or lane, best first
  (a new ticket's offer, a pass per lane);
- ``tickets_for(agent)``: the waiting tickets an agent may take, first in
  line first (an agent freed by an answer or a resolve);
- ``free_agents`` and ``first_free_agent``: what an offer reads again under
  its row locks;
- ``passed_pairs``: which pairs E7 keeps apart, for a pass's plan;
- ``explain(target)``: which rule leaves a ticket with nobody, for the floor
  and for the customer; ``languages_served``: where someone could take it.

Why SQL text rather than querysets: every path asks the database, and the
database then stops at the first row it needs; but composing these rules as
ORM expressions (a dozen nested ``Exists``) cost far more Python than
PostgreSQL spends running them — 42 ms to compile the ranked agents of one
ticket on the benchmark's machine, most of a new ticket's budget — while a
statement built once is only run.  Values always travel as parameters; only
table names and the code's own constants are written into the text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection

from agents.models import Agent, AgentLanguage, AgentStatus, Presence, Skill
from config import prepared
from marketplace.models import BookingStatus, DeclineReason, Offer, OfferStatus, ShiftBooking
from tickets.models import Rung, Ticket, TicketStatus, queue_order_sql

GENERAL = "general"
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
FOREVER = datetime(9999, 1, 1, tzinfo=UTC)
NO_LIMIT = 2**31 - 1

AGENT = Agent._meta.db_table
LANGUAGE = AgentLanguage._meta.db_table
AGENT_SKILL = Agent.skills.through._meta.db_table
SKILL = Skill._meta.db_table
OFFER = Offer._meta.db_table
BOOKING = ShiftBooking._meta.db_table
TICKET = Ticket._meta.db_table


def _literal(value: str) -> str:
    """A constant of the code (a status, a slug), written into a statement."""
    if not value.replace("_", "").isalnum():
        raise ValueError(f"not a constant: {value!r}")
    return f"'{value}'"


@dataclass(frozen=True)
class Side:
    """How a statement writes the ticket's side of the rules: parameters or columns."""

    language: str
    category: str
    ticket: str
    wide: str  # the ladder's wider pool is open for it (E4)


VALUES = Side(
    language="%(language)s", category="%(category)s", ticket="%(ticket)s", wide="%(wide)s"
)
COLUMNS = Side(
    language="t.language",
    category="t.category",
    ticket="t.id",
    wide=f"(t.escalation >= {int(Rung.WIDER_POOL)})",
)


@dataclass(frozen=True)
class Target:
    """The ticket's side as values: one ticket, or its lane (without ``ticket``: no E7)."""

    language: str
    category: str
    ticket: int | None = None
    wide: bool = False

    @classmethod
    def of(cls, ticket: Ticket) -> Target:
        return cls(
            language=ticket.language,
            category=ticket.category,
            ticket=ticket.pk,
            wide=ticket.escalation >= Rung.WIDER_POOL,
        )


# --- eligibility ----------------------------------------------------------------------


def speaks(agent: str, language: str) -> str:
    return (
        f"EXISTS (SELECT 1 FROM {LANGUAGE} l"  # noqa: S608 (table names and constants)
        f" WHERE l.agent_id = {agent}.id AND l.code = {language})"
    )


def has_skill(agent: str, slug: str) -> str:
    return (
        f"EXISTS (SELECT 1 FROM {AGENT_SKILL} s JOIN {SKILL} k ON k.id = s.skill_id"  # noqa: S608
        f" WHERE s.agent_id = {agent}.id AND k.slug = {slug})"
    )


def passed(offer: str) -> str:
    """E7's offers: an agent with one of these for a ticket has passed on it.

    They declined it or let the offer expire, within ``REOFFER_COOLDOWN_SECONDS``
    (``%(passed_since)s``): then the ticket may come round to them again, so
    that a small pool never strands it.  A decline as ``not_my_area`` lasts
    for good.  An offer the platform withdrew (the agent went away, the
    customer cancelled) was no choice of the agent's and does not count.
    """
    ended = ", ".join(_literal(s) for s in (OfferStatus.DECLINED, OfferStatus.EXPIRED))
    return (
        f"(({offer}.status IN ({ended}) AND {offer}.answered_at > %(passed_since)s)"
        f" OR ({offer}.status = {_literal(OfferStatus.DECLINED)}"
        f" AND {offer}.decline_reason = {_literal(DeclineReason.NOT_MY_AREA)}))"
    )


def _approved(agent: str, t: Side) -> str:
    return f"{agent}.status = {_literal(AgentStatus.APPROVED)}"


def _online(agent: str, t: Side) -> str:
    return f"{agent}.presence = {_literal(Presence.ONLINE)}"


def _speaks(agent: str, t: Side) -> str:
    return speaks(agent, t.language)


def specialist_online(t: Side) -> str:
    """An agent with the ticket's skill who speaks its language is online (busy or not)."""
    return (
        f"EXISTS (SELECT 1 FROM {AGENT} a2 WHERE {_approved('a2', t)}"  # noqa: S608
        f" AND {_online('a2', t)} AND {_speaks('a2', t)} AND {has_skill('a2', t.category)})"
    )


def _skilled(agent: str, t: Side) -> str:
    own, general = has_skill(agent, t.category), has_skill(agent, _literal(GENERAL))
    return f"({own} OR ({general} AND ({t.wide} OR NOT {specialist_online(t)})))"


def _below_capacity(agent: str, t: Side) -> str:
    return f"{agent}.active_tickets < {agent}.capacity"


def _no_pending_offer(agent: str, t: Side) -> str:
    return (
        f"NOT EXISTS (SELECT 1 FROM {OFFER} p WHERE p.agent_id = {agent}.id"  # noqa: S608
        f" AND p.status = {_literal(OfferStatus.PENDING)})"
    )


def _not_passed(agent: str, t: Side) -> str:
    return (
        f"NOT EXISTS (SELECT 1 FROM {OFFER} p WHERE p.agent_id = {agent}.id"  # noqa: S608
        f" AND p.ticket_id = {t.ticket} AND {passed('p')})"
    )


@dataclass(frozen=True)
class Rule:
    code: str
    text: str
    condition: Callable[[str, Side], str]
    # Only about the agent's own row and offers: read again under the agent's
    # row lock when an offer is made (``free_agents``).
    agent_alone: bool = False


ELIGIBILITY: tuple[Rule, ...] = (
    Rule("E1", "approved", _approved, agent_alone=True),
    Rule("E2", "online", _online, agent_alone=True),
    Rule("E3", "speaks the ticket's language", _speaks),
    Rule("E4", "the skill, or general with no specialist online or in a wide pool", _skilled),
    Rule("E5", "below capacity", _below_capacity, agent_alone=True),
    Rule("E6", "no pending offer already", _no_pending_offer, agent_alone=True),
    Rule("E7", "has not passed on this ticket", _not_passed),
)
FREE = tuple(rule for rule in ELIGIBILITY if rule.agent_alone)


def eligible(t: Side, *, rules: tuple[Rule, ...] = ELIGIBILITY, agent: str = "a") -> str:
    return " AND ".join(f"({rule.condition(agent, t)})" for rule in rules)


# --- ranking --------------------------------------------------------------------------

RANKING = (
    (
        "R1",
        "booked into a shift slot covering now",
        lambda t: (
            f"EXISTS (SELECT 1 FROM {BOOKING} b WHERE b.agent_id = a.id"  # noqa: S608
            f" AND b.status = {_literal(BookingStatus.BOOKED)}"
            " AND b.starts_at <= %(now)s AND b.ends_at > %(now)s) DESC"
        ),
    ),
    ("R2", "has the exact skill", lambda t: f"{has_skill('a', t.category)} DESC"),
    ("R3", "lower current load", lambda t: "CAST(a.active_tickets AS REAL) / a.capacity"),
    ("R4", "longest idle", lambda t: "COALESCE(a.idle_since, a.presence_changed_at, %(epoch)s)"),
    ("R5", "higher quality score", lambda t: "a.quality_score DESC"),
    ("R6", "lowest id", lambda t: "a.id"),
)


def ranking(t: Side) -> str:
    return ", ".join(order(t) for _, _, order in RANKING)


# --- the statements -----------------------------------------------------------------------

AGENTS_FOR = (
    f"SELECT a.id FROM {AGENT} a WHERE {eligible(VALUES)}"  # noqa: S608
    f" ORDER BY {ranking(VALUES)} LIMIT %(limit)s"
)
TICKETS_FOR = (
    f"SELECT t.id FROM {TICKET} t"  # noqa: S608
    f" WHERE t.status = {_literal(TicketStatus.QUEUED)} AND t.status_changed_at < %(settled)s"
    f" AND EXISTS (SELECT 1 FROM {AGENT} a WHERE a.id = %(agent)s AND {eligible(COLUMNS)})"
    f" ORDER BY {queue_order_sql('t')} LIMIT %(limit)s"
)
# Cumulative: how many approved agents pass each rule and every rule before it.
_COUNTS = ", ".join(
    f"COALESCE(SUM(CASE WHEN {eligible(VALUES, rules=ELIGIBILITY[: n + 1])} THEN 1 ELSE 0 END), 0)"
    for n in range(len(ELIGIBILITY))
)
EXPLAIN = f"SELECT {_COUNTS} FROM {AGENT} a WHERE {_approved('a', VALUES)}"  # noqa: S608
# The languages agents online speak in which they could take a ticket of the
# category (E1, E2, E4: E3 holds by the join), busiest first.  The rules'
# subqueries use the short aliases (l, s, k, p, b, a2): the statement's own
# take others.
LANGUAGES_SERVED = (
    f"SELECT sl.code FROM {LANGUAGE} sl JOIN {AGENT} a ON a.id = sl.agent_id"  # noqa: S608
    " WHERE "
    + eligible(
        Side(language="sl.code", category="%(category)s", ticket="NULL", wide="%(wide)s"),
        rules=tuple(r for r in ELIGIBILITY if r.code in ("E1", "E2", "E4")),
    )
    + " GROUP BY sl.code ORDER BY COUNT(*) DESC, sl.code"
)


# The two statements every ticket runs (a new ticket's agents, a freed agent's
# tickets) are prepared once per PostgreSQL connection: planning them cost
# PostgreSQL more than running them (``config.prepared``).
_AGENTS_FOR = prepared.Statement("humanline_agents_for", AGENTS_FOR)
_TICKETS_FOR = prepared.Statement("humanline_tickets_for", TICKETS_FOR)


def statement_params(now: datetime, **values) -> dict:
    at = connection.ops.adapt_datetimefield_value
    cooldown = timedelta(seconds=settings.HUMANLINE["REOFFER_COOLDOWN_SECONDS"])
    return {
        "now": at(now),
        "passed_since": at(now - cooldown),
        "epoch": at(EPOCH),
        "ticket": None,
        "wide": False,
        **values,
    }


def _target(target: Target) -> dict:
    return {
        "language": target.language,
        "category": target.category,
        "ticket": target.ticket,
        "wide": target.wide,
    }


def _run(sql: str | prepared.Statement, params) -> list[tuple]:
    with connection.cursor() as cursor:
        if isinstance(sql, prepared.Statement):
            sql.execute(connection, cursor, params)
        else:
            cursor.execute(sql, params)
        return cursor.fetchall()


def agents_for(target: Target, now: datetime, *, limit: int | None = None) -> list[int]:
    """The agents eligible for the ticket (or its lane), best first, ``limit`` at most."""
    params = statement_params(now, **_target(target), limit=limit or NO_LIMIT)
    return [agent_id for (agent_id,) in _run(_AGENTS_FOR, params)]


def tickets_for(
    agent_id: int, now: datetime, *, settled: datetime | None = None, limit: int | None = None
) -> list[int]:
    """The queued tickets the agent may be offered, first in line first.

    Only those that entered the queue before ``settled``, when given.
    """
    at = connection.ops.adapt_datetimefield_value
    params = statement_params(
        now, agent=agent_id, settled=at(settled or FOREVER), limit=limit or NO_LIMIT
    )
    return [ticket_id for (ticket_id,) in _run(_TICKETS_FOR, params)]


def _in(values) -> str:
    return ", ".join(["%s"] * len(values))


def free_agents(agent_ids, ticket_ids, now: datetime, *, lock: bool = False) -> dict[int, set[int]]:
    """Which of these agents could take an offer now (E1, E2, E5, E6), each with
    the ones of these tickets E7 keeps them from: one read for an offer.

    With ``lock``, their rows are locked for the caller's transaction, and
    rows another transaction holds are skipped (on PostgreSQL; SQLite has one
    writer at a time).
    """
    agents, tickets = sorted(set(agent_ids)), sorted(set(ticket_ids))
    if not agents:
        return {}
    condition, since = passed_condition("o", now)
    sql = (
        f"SELECT a.id, o.ticket_id FROM {AGENT} a LEFT JOIN {OFFER} o"  # noqa: S608
        f" ON o.agent_id = a.id AND o.ticket_id IN ({_in(tickets) or 'NULL'}) AND {condition}"
        f" WHERE a.id IN ({_in(agents)}) AND {eligible(VALUES, rules=FREE)} ORDER BY a.id"
    )
    if lock and connection.vendor == "postgresql":
        sql += " FOR UPDATE OF a SKIP LOCKED"
    free: dict[int, set[int]] = {}
    for agent_id, ticket_id in _run(sql, [*tickets, *since, *agents]):
        passed_on = free.setdefault(agent_id, set())
        if ticket_id is not None:
            passed_on.add(ticket_id)
    return free


# ``first_free_agent`` on PostgreSQL, where every new ticket runs it: the agents
# as one array parameter (ordered by their place in it), so that the statement
# has one text and is prepared; written out as a list it was planned again on
# every call, at four times the cost of running it.
_FIRST_FREE_AGENT = prepared.Statement(
    "humanline_first_free_agent",
    f"SELECT a.id FROM {AGENT} a WHERE a.id = ANY(%(agents)s)"  # noqa: S608
    f" AND {eligible(VALUES, rules=FREE)} AND NOT EXISTS (SELECT 1 FROM {OFFER} o"
    f" WHERE o.agent_id = a.id AND o.ticket_id = %(ticket)s AND {passed('o')})"
    " ORDER BY array_position(%(agents)s, a.id) LIMIT 1 FOR UPDATE OF a SKIP LOCKED",
)


def first_free_agent(agent_ids: list[int], ticket_id: int, now: datetime) -> int | None:
    """The first of these agents, in the order given, who could take an offer of the
    ticket now (E1, E2, E5, E6, E7), its row locked for the caller's transaction.

    Only that row is locked: rows another transaction holds are skipped (on
    PostgreSQL), so that concurrent new tickets fan out over their agents.
    """
    if not agent_ids:
        return None
    if connection.vendor == "postgresql":
        params = statement_params(now, agents=list(agent_ids), ticket=ticket_id)
        rows = _run(_FIRST_FREE_AGENT, params)
        return rows[0][0] if rows else None
    condition, since = passed_condition("o", now)
    order = " ".join(f"WHEN {int(agent_id)} THEN {n}" for n, agent_id in enumerate(agent_ids))
    sql = (
        f"SELECT a.id FROM {AGENT} a WHERE a.id IN ({_in(agent_ids)})"  # noqa: S608
        f" AND {eligible(VALUES, rules=FREE)} AND NOT EXISTS (SELECT 1 FROM {OFFER} o"
        f" WHERE o.agent_id = a.id AND o.ticket_id = %s AND {condition})"
        f" ORDER BY CASE a.id {order} END LIMIT 1"
    )
    if connection.vendor == "postgresql":
        sql += " FOR UPDATE OF a SKIP LOCKED"
    rows = _run(sql, [*agent_ids, ticket_id, *since])
    return rows[0][0] if rows else None


def passed_pairs(ticket_ids, agent_ids, now: datetime) -> set[tuple[int, int]]:
    """The (ticket, agent) pairs among these that E7 keeps apart now."""
    tickets, agents = sorted(set(ticket_ids)), sorted(set(agent_ids))
    if not tickets or not agents:
        return set()
    condition, params = passed_condition("p", now)
    sql = (
        f"SELECT p.ticket_id, p.agent_id FROM {OFFER} p"  # noqa: S608
        f" WHERE p.ticket_id IN ({_in(tickets)}) AND p.agent_id IN ({_in(agents)})"
        f" AND {condition}"
    )
    return {(t, a) for t, a in _run(sql, [*tickets, *agents, *params])}


def passed_condition(offer: str, now: datetime) -> tuple[str, list]:
    """``passed`` about the offer rows ``offer``, with its parameter: for a query of offers."""
    cooldown = timedelta(seconds=settings.HUMANLINE["REOFFER_COOLDOWN_SECONDS"])
    since = connection.ops.adapt_datetimefield_value(now - cooldown)
    return passed(offer).replace("%(passed_since)s", "%s"), [since]


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


def explain(target: Target, now: datetime) -> Explanation:
    """Count, rule after rule, the agents who pass it and every rule before it."""
    (row,) = _run(EXPLAIN, statement_params(now, **_target(target)))
    counts = {rule.code: int(n) for rule, n in zip(ELIGIBILITY, row, strict=True)}
    first_empty = next((code for code, n in counts.items() if n == 0), None)
    return Explanation(rule=first_empty, counts=counts)


def languages_served(*, category: str, now: datetime, wide: bool = False) -> list[str]:
    """The languages in which someone online could take a ticket of this category now."""
    params = statement_params(now, category=category, wide=wide)
    return [code for (code,) in _run(LANGUAGES_SERVED, params)]
