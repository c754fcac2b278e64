"""The dispatch rules, in one place.  Pure functions over plain records, so the
ranking can be read, documented (docs/architecture.md, "Dispatch rules") and
tested table by table without a database.

Eligibility (all must hold):
  E1 approved (not applied, rejected or suspended)
  E2 online
  E3 speaks the ticket's language
  E4 has the ticket's category as a skill — or, when no agent with that skill
     who speaks the ticket's language is online at all, has the ``general``
     skill (the documented fallback)
  E5 below capacity (assigned tickets < capacity)
  E6 no pending offer already (one offer at a time per agent)
  E7 not already offered this ticket (declined, expired or withdrawn before)

Ticket order: priority (urgent, high, normal), then waiting time (longest first).

Agent order (first difference wins):
  R1 booked into a shift slot covering now
  R2 skill match: has the exact category (before a ``general`` fallback)
  R3 lower current load (assigned tickets / capacity)
  R4 longest idle (earliest ``idle_since``)
  R5 higher quality score
  R6 lowest id, so that the order is total and repeatable

The fast path applies E1–E7 and R1–R4, R6 in one SQL statement
(``marketplace.services.dispatch.ranked_in_database``) and R5 here;
tests/marketplace/test_dispatch_ranking_sql.py checks that it agrees with
``rank`` on random markets.  The pull (``dispatch.pull_for_agent``: an agent
freed by an accept takes the first ticket in ticket order they are eligible
for) applies E1–E7 and the ticket order in SQL too;
tests/marketplace/test_dispatch_pull.py checks it against ``why_not`` and
``order_tickets``.  A change to a rule changes all three.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

GENERAL = "general"
PRIORITY_RANK = {"urgent": 0, "high": 1, "normal": 2}


@dataclass(frozen=True)
class Candidate:
    agent_id: int
    status: str
    presence: str
    languages: frozenset[str]
    skills: frozenset[str]
    capacity: int
    load: int
    has_pending_offer: bool
    booked_now: bool
    idle_since: datetime
    quality: Decimal | None = None


@dataclass(frozen=True)
class WaitingTicket:
    ticket_id: int
    language: str
    category: str
    priority: str
    queued_at: datetime
    offered_to: frozenset[int] = field(default_factory=frozenset)


def ticket_order_key(ticket: WaitingTicket) -> tuple:
    return (PRIORITY_RANK.get(ticket.priority, 9), ticket.queued_at, ticket.ticket_id)


def order_tickets(tickets: Iterable[WaitingTicket]) -> list[WaitingTicket]:
    return sorted(tickets, key=ticket_order_key)


def specialist_online(ticket: WaitingTicket, candidates: Iterable[Candidate]) -> bool:
    """Is an agent who could serve the ticket as a specialist online (busy or not)?"""
    return any(
        c.presence == "online"
        and c.status == "approved"
        and ticket.category in c.skills
        and ticket.language in c.languages
        for c in candidates
    )


def why_not(
    ticket: WaitingTicket, candidate: Candidate, *, specialist_is_online: bool
) -> str | None:
    """The first rule that keeps this candidate from this ticket, or None if eligible."""
    if candidate.status != "approved":
        return "E1 not approved"
    if candidate.presence != "online":
        return "E2 not online"
    if ticket.language not in candidate.languages:
        return "E3 does not speak the language"
    if ticket.category not in candidate.skills and (
        specialist_is_online or GENERAL not in candidate.skills
    ):
        return "E4 lacks the skill"
    if candidate.load >= candidate.capacity:
        return "E5 at capacity"
    if candidate.has_pending_offer:
        return "E6 has a pending offer"
    if candidate.agent_id in ticket.offered_to:
        return "E7 already offered this ticket"
    return None


def eligible(ticket: WaitingTicket, candidates: Sequence[Candidate]) -> list[Candidate]:
    specialist = specialist_online(ticket, candidates)
    return [c for c in candidates if why_not(ticket, c, specialist_is_online=specialist) is None]


def agent_order_key(ticket: WaitingTicket, candidate: Candidate) -> tuple:
    return (
        not candidate.booked_now,  # R1
        ticket.category not in candidate.skills,  # R2
        Decimal(candidate.load) / Decimal(max(candidate.capacity, 1)),  # R3
        candidate.idle_since,  # R4
        -(candidate.quality if candidate.quality is not None else Decimal(0)),  # R5
        candidate.agent_id,  # R6
    )


def rank(ticket: WaitingTicket, candidates: Sequence[Candidate]) -> list[Candidate]:
    """Eligible candidates for the ticket, best first."""
    return sorted(eligible(ticket, candidates), key=lambda c: agent_order_key(ticket, c))


def best(ticket: WaitingTicket, candidates: Sequence[Candidate]) -> Candidate | None:
    ranked = rank(ticket, candidates)
    return ranked[0] if ranked else None
