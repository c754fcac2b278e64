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

import numpy as np
from scipy.optimize import linear_sum_assignment

from marketplace.dispatch import rules

# Below this many tickets or agents the batch cannot do better than greedy.
BATCH_THRESHOLD = 2


def match_greedy(
    tickets: Sequence[rules.WaitingTicket], candidates: Sequence[rules.Candidate]
) -> list[tuple[rules.WaitingTicket, rules.Candidate]]:
    taken: set[int] = set()
    pairs = []
    for ticket in rules.order_tickets(tickets):
        free = [c for c in candidates if c.agent_id not in taken]
        # Fallback to ``general`` depends on all online specialists, not only free ones.
        specialist = rules.specialist_online(ticket, candidates)
        ranked = sorted(
            (c for c in free if rules.why_not(ticket, c, specialist_is_online=specialist) is None),
            key=lambda c, t=ticket: rules.agent_order_key(t, c),
        )
        if ranked:
            taken.add(ranked[0].agent_id)
            pairs.append((ticket, ranked[0]))
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
    for i, ticket in enumerate(ordered):
        specialist = rules.specialist_online(ticket, candidates)
        ranked = sorted(
            (
                (j, c)
                for j, c in enumerate(candidates)
                if rules.why_not(ticket, c, specialist_is_online=specialist) is None
            ),
            key=lambda jc, t=ticket: rules.agent_order_key(t, jc[1]),
        )
        for position, (j, _candidate) in enumerate(ranked):
            weights[i, j] = match_bonus + (n_tickets - i) * agent_scale + (n_agents - position)
    rows, cols = linear_sum_assignment(weights, maximize=True)
    pairs = [
        (ordered[i], candidates[j]) for i, j in zip(rows, cols, strict=True) if weights[i, j] > 0
    ]
    pairs.sort(key=lambda pair: rules.ticket_order_key(pair[0]))
    return pairs
