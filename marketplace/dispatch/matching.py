"""Choosing which waiting ticket is offered to which free agent, in a pass.

The input is the tickets in queue order and, for each, its eligible free
agents best first (``rules.agents_for``): who may take what and in which
order is the rules' business; this module only decides how to share the
agents out.

One ticket at a time (``match_greedy``) walks the tickets in order and gives
each its best remaining agent.  When the queue is deep and several agents are
free, that can waste supply: an early ``general`` ticket may take the only
Portuguese-speaking disputes specialist whom a later disputes ticket needed,
leaving that ticket waiting although another agent could have served the
first.  ``match_batch`` therefore solves an assignment over the waiting
tickets and free agents (scipy's ``linear_sum_assignment``, the Hungarian
method): it first maximises how many tickets get an offer, then prefers
earlier tickets and better-ranked agents.  The weights make a ticket's order
dominate an agent's rank, so the batch never delays an older ticket for a
younger one when both could be served; it only changes who serves whom.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

# Below this many tickets or agents the batch cannot do better than greedy.
BATCH_THRESHOLD = 2


def match_greedy(
    tickets: Sequence[int], ranked: Mapping[int, Sequence[int]]
) -> list[tuple[int, int]]:
    """(ticket, agent) pairs: each ticket in order takes its best agent not yet taken."""
    taken: set[int] = set()
    pairs = []
    for ticket in tickets:
        for agent in ranked.get(ticket, ()):
            if agent not in taken:
                taken.add(agent)
                pairs.append((ticket, agent))
                break
    return pairs


def match_batch(
    tickets: Sequence[int], ranked: Mapping[int, Sequence[int]]
) -> list[tuple[int, int]]:
    """(ticket, agent) pairs, in ticket order, solved as one assignment."""
    tickets = [ticket for ticket in tickets if ranked.get(ticket)]
    agents = sorted({agent for ticket in tickets for agent in ranked[ticket]})
    if len(tickets) < BATCH_THRESHOLD or len(agents) < BATCH_THRESHOLD:
        return match_greedy(tickets, ranked)

    n_tickets, n_agents = len(tickets), len(agents)
    column = {agent: j for j, agent in enumerate(agents)}
    # weight = match bonus + ticket term + agent term, each scale larger than the
    # most the terms below it can add up to over a whole matching, so the solver
    # maximises, in this order: how many tickets get an offer, how early those
    # tickets are in the queue, how well the agents rank for them.
    pairs_max = min(n_tickets, n_agents)
    agent_scale = pairs_max * n_agents + 1
    match_bonus = float(pairs_max * (n_tickets * agent_scale + n_agents) + 1)
    weights = np.full((n_tickets, n_agents), -1.0)
    for i, ticket in enumerate(tickets):
        order = ranked[ticket]
        columns = np.fromiter((column[a] for a in order), dtype=np.intp, count=len(order))
        weights[i, columns] = (
            match_bonus + (n_tickets - i) * agent_scale + (n_agents - np.arange(len(order)))
        )
    rows, cols = linear_sum_assignment(weights, maximize=True)
    pairs = [(tickets[i], agents[j]) for i, j in zip(rows, cols, strict=True) if weights[i, j] > 0]
    position = {ticket: i for i, ticket in enumerate(tickets)}
    pairs.sort(key=lambda pair: position[pair[0]])
    return pairs
