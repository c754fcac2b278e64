"""Celery's hooks for operations, connected where the Celery app is made (``config.celery``).

- Logging: workers and beat log through Django's ``LOGGING`` (JSON with
  ``LOG_FORMAT=json``, the request id on every record) instead of Celery's own
  handlers.  Connecting ``setup_logging`` is Celery's documented way to keep
  it from configuring logging; the command line's ``--loglevel`` still sets
  the level.
- Beat's heartbeat: in the beat process, each heartbeat task it sends
  records that beat is alive (``/readyz``, ``operations.health``).
- The request id travels with each task (``operations.requestid``).
- Database connections: a worker keeps its own between tasks, dropped when
  too old or broken, as a web thread does (``CELERY_DB_REUSE_MAX``).
"""

from __future__ import annotations

import logging
import logging.config

from celery import signals
from django.db import close_old_connections

from operations import requestid  # noqa: F401 (connects the request id's signals)
from operations.tasks import HEARTBEAT

logger = logging.getLogger(__name__)


@signals.task_prerun.connect(weak=False)
def _database_connections_checked(sender=None, **kwargs) -> None:
    """Before a task on a worker, what Django does before a request: drop a
    connection past ``CONN_MAX_AGE`` or broken (``CELERY_DB_REUSE_MAX`` keeps the
    rest)."""
    if not getattr(getattr(sender, "request", None), "is_eager", False):
        close_old_connections()


@signals.setup_logging.connect(weak=False)
def _logging_from_django(loglevel=None, **kwargs) -> None:
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
    if loglevel:
        logging.getLogger().setLevel(loglevel)


def beat_sent(sender=None, **kwargs) -> None:
    if sender != HEARTBEAT:
        return
    from operations.health import heartbeat_write

    try:
        heartbeat_write("beat")
    except Exception:
        # Sending the task fails the same way; beat logs that.
        logger.warning("could not record beat's heartbeat", exc_info=True)


@signals.beat_init.connect(weak=False)
def _beat_started(sender=None, **kwargs) -> None:
    signals.before_task_publish.connect(beat_sent, weak=False)
