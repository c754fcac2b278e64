"""The embedded default's background loop: the periodic sweeps, in-process.

In production Celery beat schedules these (config/celery.py).  With no Redis
there is no beat, so the ASGI process runs the same services from daemon
threads: one for the sweeps (dispatch's every second, presence every 15 s, mail
whose send failed and payroll jobs left queued every 30 s, shift attendance
every minute, the reopen window every ten minutes, the agents' kept quality
scores every hour), and one of their own for webhook deliveries, every second:
a delivery waits on someone else's server, and a slow receiver must not hold up
dispatch's sweep, as the ``webhooks`` queue keeps it off dispatch's workers in
production.
"""

import logging
import os
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import close_old_connections

logger = logging.getLogger(__name__)

_started = threading.Event()


Job = tuple[float, Callable[[], object]]


def loops() -> dict[str, list[Job]]:
    """Each background thread's name and its jobs (every so many seconds, what)."""
    from agents.presence import presence_sweep
    from marketplace.services.dispatch import sweep
    from marketplace.services.payroll_jobs import payroll_jobs_requeue
    from marketplace.services.shifts import shift_attendance_settle
    from outbox.services import outbox_sweep
    from tickets.services import agents_quality_store, tickets_close_after_reopen_window
    from webhooks.services import deliver_due

    return {
        "humanline-sweeper": [
            (settings.HUMANLINE["DISPATCH_SWEEP_SECONDS"], sweep),
            (15.0, presence_sweep),
            (30.0, outbox_sweep),
            (30.0, payroll_jobs_requeue),
            (60.0, shift_attendance_settle),
            (600.0, tickets_close_after_reopen_window),
            (3600.0, agents_quality_store),
        ],
        "humanline-webhooks": [(1.0, deliver_due)],
    }


def _loop(stop: threading.Event, jobs: list[Job]) -> None:
    due = [0.0] * len(jobs)
    while not stop.is_set():
        now = time.monotonic()
        for index, (every, job) in enumerate(jobs):
            if now >= due[index]:
                due[index] = now + every
                try:
                    job()
                except Exception:
                    logger.exception("embedded sweep %s failed", job.__name__)
                finally:
                    close_old_connections()
        stop.wait(0.25)


def run_loops(threads: dict[str, list[Job]]) -> tuple[threading.Event, list[threading.Thread]]:
    """Start a daemon thread per entry; set the event to stop them all."""
    stop = threading.Event()
    started = []
    for name, jobs in threads.items():
        thread = threading.Thread(target=_loop, args=(stop, jobs), name=name, daemon=True)
        thread.start()
        started.append(thread)
    return stop, started


def start_background_loop() -> threading.Event | None:
    """Start the loops once per process, in the embedded default only."""
    if not settings.EMBEDDED or settings.TESTING or os.environ.get("HUMANLINE_SWEEPER") == "off":
        return None
    if _started.is_set():
        return None
    _started.set()
    stop, _ = run_loops(loops())
    logger.info("embedded background loops started")
    return stop
