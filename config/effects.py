"""Side effects of a write: pushes, task enqueues, cache touches, after the commit.

PostgreSQL holds the facts; Redis carries the news, and may be down.  A write
that committed is what its client is told, whatever becomes of its side
effects: ``after_commit`` runs each one once the transaction commits (at once
outside one), guarded.  A failure is logged, with the hook's name, and
counted (``failures``), and the hooks after it still run.  Work that must
happen is recoverable from the database, not from the lost message: the
dispatch sweeper offers whatever waits, the outbox (``outbox``) sends
mail that a broker refused.  A request's own touch of the cache (a rate
limit, ``config.throttles``) is given up the same way: ``failed`` counts it.

Django's own ``on_commit(robust=True)`` also logs and goes on; this wraps it
to count, for the operators' metrics (``humanline_side_effects_failed``, by
``FAILED_HOOKS``), and so that the suite can fail a test whose side effects
failed unnoticed (``tests/conftest.py``).
"""

import logging
import threading
from collections import Counter
from collections.abc import Callable

from django.db import transaction

logger = logging.getLogger("humanline.effects")

_failures: Counter[str] = Counter()
# Called with a failed side effect's name: the operators' metrics count it.
FAILED_HOOKS: list[Callable[[str], None]] = []
_lock = threading.Lock()


def after_commit(func: Callable[[], object]) -> None:
    """Run ``func`` after the current transaction commits, never failing it."""
    transaction.on_commit(lambda: run_guarded(func))


def run_guarded(func: Callable[[], object]) -> bool:
    """Run a side effect; False, logged and counted, when it raised."""
    try:
        func()
    except Exception:
        name = getattr(func, "__qualname__", repr(func))
        logger.exception("Side effect %s failed; the committed write stands.", name)
        failed(name)
        return False
    return True


def failed(name: str) -> None:
    """Count one failed side effect or cache touch named ``name`` (the caller logs it)."""
    with _lock:
        _failures[name] += 1
    for hook in FAILED_HOOKS:
        hook(name)


def failures() -> dict[str, int]:
    """Side effects that failed in this process since it started, by hook."""
    with _lock:
        return dict(_failures)
