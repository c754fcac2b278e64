"""Erlang C: how many agents a queue needs, and how a given pool will serve it.

Pure arithmetic, no Django: the API (``GET /api/v1/admin/staffing/erlang/``),
the shift planner, the operations floor and the simulator all call
``erlang_c``.

The model (M/M/m, Erlang 1917): tickets arrive at random (Poisson) at
``arrivals_per_hour``; each holds a seat for ``handle_seconds`` on average
(exponentially distributed); a ticket that finds every seat taken waits in one
line, first come first served, and nobody gives up.  With ``A = λ·h`` the
offered traffic in erlangs and ``m`` seats (``m > A``, or the line grows
without end):

- probability of waiting ``Pw = C(m, A)`` (Erlang's delay formula);
- service level ``P(wait ≤ t) = 1 − Pw · exp(−(m − A) · t / h)``;
- mean wait ``Pw · h / (m − A)`` (the average speed of answer, over all tickets);
- occupancy ``A / m``.

**Capacity.**  A Humanline agent may hold several tickets at once
(``Agent.capacity``).  The model counts *seats*: an agent with capacity ``C``
brings ``C`` seats, and dispatch fills any free seat of any eligible agent, so
the pool's seats form one group of parallel servers.  ``handle_seconds`` must
then be the time a ticket holds its seat — from assignment to resolve, which is
what Humanline measures — not the agent's attention per ticket: an agent who
juggles two tickets takes longer over each, and the measured time already says
so.  Hence: required seats by Erlang C, and ``agents = ceil(seats / capacity)``
with ``capacity`` the pool's mean capacity (``seats = floor(agents ·
capacity)`` the other way).  With ``capacity=1`` every figure is the textbook
one.  Occupancy is the share of *seats* in use.

**Why no library.**  pyworkforce, the maintained Python package, needs Python
3.12 from 0.5.2 on, and its last release for 3.11 pulls in OR-Tools and pandas
for its scheduling half: hundreds of megabytes for twenty lines.  Computed
naïvely, ``A^m / m!`` overflows a float from ``m ≈ 170``, while the brief's
peak (10 tickets/s at a few minutes each) needs thousands of seats.  Here
Erlang B comes from its recursion ``B(k) = A·B(k−1) / (k + A·B(k−1))``, every
term of which lies in (0, 1], and ``C = m·B / (m − A·(1 − B))``: no factorial,
no power, exact in floating point to ~1e-12 for any ``m``, in ``O(m)`` steps.
The search for the smallest ``m`` that meets a goal runs the same recursion
once, upwards, so it is ``O(m)`` too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# No plan needs more seats than this (the brief's peak needs a few thousand);
# a goal out of reach below it is refused rather than searched for ever.
MAX_SEATS = 200_000


class StaffingInputError(ValueError):
    """An input Erlang C cannot work with; ``field`` names it, as the API does."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Staffing:
    """What ``agents`` agents (``seats`` seats) give at ``traffic_erlangs`` of traffic.

    ``service_level`` is the share of tickets answered within the answer time;
    ``mean_wait_seconds`` is ``math.inf`` and ``occupancy`` 1.0 when the seats
    cannot keep up (``seats ≤ traffic_erlangs``): the line then grows without end.
    """

    agents: int
    service_level: float
    mean_wait_seconds: float
    occupancy: float
    seats: int
    traffic_erlangs: float
    probability_of_waiting: float


def _finite(field: str, value: float, *, minimum: float, strictly: bool = False) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise StaffingInputError(field, "Give a number.") from None
    if not math.isfinite(value):
        raise StaffingInputError(field, "Give a finite number.")
    if value < minimum or (strictly and value == minimum):
        bound = "above" if strictly else "at least"
        raise StaffingInputError(field, f"Give a number {bound} {minimum:g}.")
    return value


def seats_for(agents: int, capacity: float) -> int:
    """Seats brought by ``agents`` agents of mean ``capacity`` (whole seats only)."""
    # The small epsilon keeps 3 × (7/3) from landing on 6.999…
    return math.floor(agents * capacity + 1e-9)


def _wait_figures(seats: int, traffic: float, erlang_b: float, handle: float, answer: float):
    """(Pw, service level, mean wait, occupancy) for ``seats`` > ``traffic`` > 0."""
    waiting = seats * erlang_b / (seats - traffic * (1 - erlang_b))
    level = 1 - waiting * math.exp(-(seats - traffic) * answer / handle)
    mean_wait = waiting * handle / (seats - traffic)
    return waiting, max(0.0, min(1.0, level)), mean_wait, traffic / seats


def _figures(*, agents: int, seats: int, traffic: float, erlang_b: float, handle, answer):
    if traffic == 0:
        return Staffing(agents, 1.0, 0.0, 0.0, seats, 0.0, 0.0)
    if seats <= traffic:
        return Staffing(agents, 0.0, math.inf, 1.0, seats, traffic, 1.0)
    waiting, level, mean_wait, occupancy = _wait_figures(seats, traffic, erlang_b, handle, answer)
    return Staffing(agents, level, mean_wait, occupancy, seats, traffic, waiting)


def erlang_b(seats: int, traffic: float) -> float:
    """Erlang's loss formula ``B(seats, traffic)`` by its recursion (no overflow)."""
    blocking = 1.0
    for k in range(1, seats + 1):
        blocking = traffic * blocking / (k + traffic * blocking)
    return blocking


def erlang_c(
    arrivals_per_hour: float,
    handle_seconds: float,
    answer_seconds: float,
    agents: int | None = None,
    service_level: float | None = None,
    capacity: float = 1,
) -> Staffing:
    """Erlang C for tickets arriving at ``arrivals_per_hour``, each held ``handle_seconds``.

    Give ``agents`` to learn how that many agents would serve the queue, or
    ``service_level`` (a share, 0 < goal < 1) to learn the fewest agents whose
    seats answer at least that share within ``answer_seconds`` (never fewer
    than needed for a stable queue).  Exactly one of the two.  ``capacity`` is
    the mean number of tickets an agent holds at once (see the module's
    docstring for how it enters).

    Raises ``StaffingInputError`` (a ``ValueError`` with ``field``) for input
    out of range, and for a goal no pool of up to ``MAX_SEATS`` seats meets.
    """
    arrivals = _finite("arrivals_per_hour", arrivals_per_hour, minimum=0)
    handle = _finite("handle_seconds", handle_seconds, minimum=0, strictly=True)
    answer = _finite("answer_seconds", answer_seconds, minimum=0)
    capacity = _finite("capacity", capacity, minimum=1)
    traffic = arrivals / 3600 * handle
    if (agents is None) == (service_level is None):
        raise StaffingInputError("agents", "Give either agents or service_level, not both.")

    if agents is not None:
        if isinstance(agents, bool) or not isinstance(agents, int) or agents < 0:
            raise StaffingInputError("agents", "Give a whole number of agents, 0 or more.")
        seats = seats_for(agents, capacity)
        if seats > MAX_SEATS:
            raise StaffingInputError("agents", f"At most {MAX_SEATS} seats are modelled.")
        return _figures(
            agents=agents,
            seats=seats,
            traffic=traffic,
            erlang_b=erlang_b(seats, traffic),
            handle=handle,
            answer=answer,
        )

    goal = _finite("service_level", service_level, minimum=0, strictly=True)
    if goal >= 1:
        raise StaffingInputError(
            "service_level", "Give a share below 1: no finite pool answers every ticket in time."
        )
    if traffic == 0:
        return _figures(agents=0, seats=0, traffic=0.0, erlang_b=1.0, handle=handle, answer=answer)
    if traffic >= MAX_SEATS:
        raise StaffingInputError(
            "arrivals_per_hour",
            f"{traffic:.0f} erlangs of traffic need more than the {MAX_SEATS} seats modelled.",
        )
    # One pass up the recursion: B(k) for k = 1, 2, …; from the first stable k,
    # test the goal.  The service level grows with every seat added.
    blocking = 1.0
    for seats in range(1, MAX_SEATS + 1):
        blocking = traffic * blocking / (seats + traffic * blocking)
        if seats <= traffic:
            continue
        _, level, _, _ = _wait_figures(seats, traffic, blocking, handle, answer)
        if level >= goal:
            # Whole agents: their seats may pass the need (capacity 2, 13 seats
            # needed: 7 agents, 14 seats), and the figures are those of their seats.
            needed = math.ceil(seats / capacity - 1e-9)
            if seats_for(needed, capacity) < seats:
                needed += 1
            return erlang_c(arrivals, handle, answer, agents=needed, capacity=capacity)
    raise StaffingInputError(
        "service_level", f"No pool of up to {MAX_SEATS} seats answers this share in time."
    )
