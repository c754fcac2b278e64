"""The embedded default's background loop: the periodic sweeps, in-process.

In production Celery beat schedules these (config/celery.py).  With no Redis
there is no beat, so the ASGI process runs the same services from one daemon
thread: dispatch's sweep and webhook deliveries every second, presence every
15 s, mail whose send failed and payroll jobs left queued every 30 s, shift
attendance every minute, the reopen window every ten minutes, the agents'
kept quality scores every hour.
"""

import logging
import os
import threading
import time

from django.conf import settings
from django.db import close_old_connections

logger = logging.getLogger(__name__)

_started = threading.Event()


def _jobs():
    from agents.presence import presence_sweep
    from marketplace.services.dispatch import sweep
    from marketplace.services.payroll_jobs import payroll_jobs_requeue
    from marketplace.services.shifts import shift_attendance_settle
    from outbox.services import outbox_sweep
    from tickets.services import agents_quality_store, tickets_close_after_reopen_window
    from webhooks.services import deliver_due

    return [
        (settings.HUMANLINE["DISPATCH_SWEEP_SECONDS"], sweep),
        (1.0, deliver_due),
        (15.0, presence_sweep),
        (30.0, outbox_sweep),
        (30.0, payroll_jobs_requeue),
        (60.0, shift_attendance_settle),
        (600.0, tickets_close_after_reopen_window),
        (3600.0, agents_quality_store),
    ]


def _loop(stop: threading.Event) -> None:
    jobs = _jobs()
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


def start_background_loop() -> threading.Event | None:
    """Start the loop once per process, in the embedded default only."""
    if not settings.EMBEDDED or settings.TESTING or os.environ.get("HUMANLINE_SWEEPER") == "off":
        return None
    if _started.is_set():
        return None
    _started.set()
    stop = threading.Event()
    threading.Thread(target=_loop, args=(stop,), name="humanline-sweeper", daemon=True).start()
    logger.info("embedded background loop started")
    return stop
