"""Events with no row in the database, counted in the process where they happen.

A failed push leaves no fact behind (that is what makes it a failure), and a
sweep's repairs are the sweep's own tally, so these two are counted in
process with prometheus-client.  With ``PROMETHEUS_MULTIPROC_DIR`` set (the
production processes, ``Procfile``), every process of a host writes its
counts there and ``/metrics`` adds them up, whichever process serves the
scrape (prometheus-client's multiprocess mode).  Everything else the metrics
show is read from the database at scrape time (``operations.metrics``).

This module is imported by ``config.channel_send`` and dispatch: it holds no
Django import.
"""

from __future__ import annotations

from prometheus_client import Counter

PUSHES_FAILED = Counter(
    "humanline_pushes_failed",
    "Pushes to sockets that were not delivered: the channel layer failed to send them"
    " (error). Clients resync from the database.",
    ["reason"],
)
SWEEPER_REPAIRS = Counter(
    "humanline_sweeper_repairs",
    "What the dispatch sweep repaired, by kind: offers it expired, assigned tickets it took"
    " back from a disconnected or silent agent, tickets it escalated, offers its pass made.",
    ["kind"],
)


SIDE_EFFECTS_FAILED = Counter(
    "humanline_side_effects_failed",
    "Side effects of committed writes that failed (a push, a task enqueue, a cache touch),"
    " by hook, and rate limits left unchecked (rate_limit:<scope>) while the cache did not"
    " answer; the write stands, and the sweeps recover what must still happen.",
    ["hook"],
)


def side_effect_failed(hook: str) -> None:
    """``config.effects.FAILED_HOOKS``: one guarded side effect raised."""
    SIDE_EFFECTS_FAILED.labels(hook=hook).inc()


def pushes_failed(count: int, *, reason: str) -> None:
    if count > 0:
        PUSHES_FAILED.labels(reason=reason).inc(count)


def sweep_counted(result: dict[str, int]) -> None:
    """``marketplace.services.dispatch.SWEPT_HOOKS``: one sweep's result, by kind."""
    for kind, count in result.items():
        SWEEPER_REPAIRS.labels(kind=kind).inc(max(0, int(count)))
