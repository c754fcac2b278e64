"""Choosing which waiting ticket is offered to which free agent.

One ticket at a time (``match_greedy``) walks the tickets in order and gives
each its best remaining agent.  When the queue is deep and several agents are
free, that can waste supply: an early ``general`` ticket may take the only
Portuguese-speaking disputes specialist whom a later disputes ticket needed,
leaving that ticket waiting although another agent could have served the
first.  ``match_batch`` therefore solves an assignment over the current
waiting tickets and free agents (scipy's ``linear_sum_assignment``, the
Hungarian method): it first maximises how many tickets get an offer, then
prefers earlier tickets and better-ranked agents.  The weights make a ticket's
order dominate an agent's rank, so the batch never delays an older ticket for
a younger one when both could be served; it only changes who serves whom.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from scipy.optimize import linear_sum_assignment

from marketplace.dispatch import rules

# Below this many tickets or agents the batch cannot do better than greedy.
BATCH_THRESHOLD = 2


def _lane_rankings(
    tickets: Sequence[rules.WaitingTicket], candidates: Sequence[rules.Candidate]
) -> dict[tuple[str, str], list[tuple[int, rules.Candidate]]]:
    """Per lane (language, category): eligible candidates, best first, as (index, candidate).

    Rules E1–E6 and the ranking depend on a ticket only through its lane, so
    they are worked out once per lane; E7 (already offered this ticket) is
    applied per ticket by the callers.
    """
    lanes: dict[tuple[str, str], list[tuple[int, rules.Candidate]]] = {}
    for ticket in tickets:
        lane = (ticket.language, ticket.category)
        if lane in lanes:
            continue
        probe = replace(ticket, offered_to=frozenset())
        specialist = rules.specialist_online(probe, candidates)
        lanes[lane] = sorted(
            (
                (j, c)
                for j, c in enumerate(candidates)
                if rules.why_not(probe, c, specialist_is_online=specialist) is None
            ),
            key=lambda jc, t=probe: rules.agent_order_key(t, jc[1]),
        )
    return lanes


def _for_ticket(ticket: rules.WaitingTicket, ranked: list[tuple[int, rules.Candidate]]):
    if not ticket.offered_to:
        return ranked
    return [(j, c) for j, c in ranked if c.agent_id not in ticket.offered_to]


def match_greedy(
    tickets: Sequence[rules.WaitingTicket], candidates: Sequence[rules.Candidate]
) -> list[tuple[rules.WaitingTicket, rules.Candidate]]:
    ordered = rules.order_tickets(tickets)
    lanes = _lane_rankings(ordered, candidates)
    taken: set[int] = set()
    pairs = []
    for ticket in ordered:
        for _j, candidate in _for_ticket(ticket, lanes[(ticket.language, ticket.category)]):
            if candidate.agent_id not in taken:
                taken.add(candidate.agent_id)
                pairs.append((ticket, candidate))
                break
    return pairs


def match_batch(
    tickets: Sequence[rules.WaitingTicket], candidates: Sequence[rules.Candidate]
) -> list[tuple[rules.WaitingTicket, rules.Candidate]]:
    ordered = rules.order_tickets(tickets)
    if len(ordered) < BATCH_THRESHOLD or len(candidates) < BATCH_THRESHOLD:
        return match_greedy(ordered, candidates)

    n_tickets, n_agents = len(ordered), len(candidates)
    # weight = match bonus + ticket term + agent term, each scale larger than the
    # most the terms below it can add up to over a whole matching, so the solver
    # maximises, in this order: how many tickets get an offer, how early those
    # tickets are in the queue, how well the agents rank for them.
    pairs_max = min(n_tickets, n_agents)
    agent_scale = pairs_max * n_agents + 1
    match_bonus = float(pairs_max * (n_tickets * agent_scale + n_agents) + 1)
    weights = np.full((n_tickets, n_agents), -1.0)
    lanes = _lane_rankings(ordered, candidates)
    for i, ticket in enumerate(ordered):
        ranked = _for_ticket(ticket, lanes[(ticket.language, ticket.category)])
        if not ranked:
            continue
        columns = np.fromiter((j for j, _ in ranked), dtype=np.intp, count=len(ranked))
        weights[i, columns] = (
            match_bonus + (n_tickets - i) * agent_scale + (n_agents - np.arange(len(ranked)))
        )
    rows, cols = linear_sum_assignment(weights, maximize=True)
    pairs = [
        (ordered[i], candidates[j]) for i, j in zip(rows, cols, strict=True) if weights[i, j] > 0
    ]
    pairs.sort(key=lambda pair: rules.ticket_order_key(pair[0]))
    return pairs
