"""The Celery app.  Tasks are thin wrappers around services (see STYLE.md)."""

import os

from celery import Celery
from django.conf import settings

# Logging through Django's LOGGING, the request id carried into tasks, beat's
# heartbeat (operations/celery_signals.py).
from operations import celery_signals  # noqa: F401
from operations.health import heartbeat_queues

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("humanline")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The beat schedule: periodic sweeps that repair what a lost message or a dead
# worker left behind.  Each entry is a thin task calling one service.
app.conf.beat_schedule = {
    "agents-expire-realtime-tickets": {
        "task": "agents.tasks.purge_realtime_tickets",
        "schedule": 300.0,
    },
    # Dispatch's safety net: expire overdue offers, reclaim stranded tickets,
    # offer whatever waits.  The brief asks for at most every 2 seconds.
    "marketplace-dispatch-sweep": {
        "task": "marketplace.tasks.dispatch_sweep",
        "schedule": 1.0,
        "options": {"expires": 5},
    },
    # Webhook deliveries due: retries, and new ones whose task was lost.
    "webhooks-sweep": {
        "task": "webhooks.tasks.sweep_webhooks",
        "schedule": 10.0,
        "options": {"expires": 30},
    },
    # Payroll jobs still queued a minute after they were made: their task was lost.
    "marketplace-requeue-payroll-jobs": {
        "task": "marketplace.tasks.requeue_payroll_jobs",
        "schedule": 30.0,
        "options": {"expires": 30},
    },
    # Mail whose send task a broker refused or a dead worker lost.
    "outbox-sweep": {
        "task": "outbox.tasks.sweep_outbox",
        "schedule": 30.0,
    },
    "agents-sweep-presence": {
        "task": "agents.tasks.sweep_presence",
        "schedule": 15.0,
    },
    "marketplace-settle-shift-attendance": {
        "task": "marketplace.tasks.settle_shift_attendance",
        "schedule": 60.0,
    },
    "tickets-close-after-reopen-window": {
        "task": "tickets.tasks.close_resolved_tickets",
        "schedule": 600.0,
    },
    "marketplace-ensure-pay-period": {
        "task": "marketplace.tasks.ensure_pay_period",
        "schedule": 3600.0,
    },
    # The agents' kept quality scores (dispatch rule R5) as the window slides.
    "tickets-store-quality-scores": {
        "task": "tickets.tasks.store_quality_scores",
        "schedule": 3600.0,
    },
    "tickets-purge-idempotency-keys": {
        "task": "tickets.tasks.purge_idempotency_keys",
        "schedule": 3600.0,
    },
}


@app.on_after_configure.connect
def heartbeats(sender, **kwargs):
    """Liveness for /readyz: beat records each send of these, and the worker that
    runs one records that its queue is served (operations/health.py).

    Added once the app is configured, not at import: the queues and the period
    are settings, and a process may import this package without Django's
    settings loaded (``python -m config.preflight``)."""
    every = settings.OPERATIONS["HEARTBEAT_SECONDS"]
    for queue in heartbeat_queues():
        sender.conf.beat_schedule[f"operations-heartbeat-{queue}"] = {
            "task": "operations.tasks.heartbeat",
            "schedule": every,
            "args": (queue,),
            "options": {"queue": queue, "expires": every},
        }
