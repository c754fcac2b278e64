"""Payroll work in the background: close a pay period or prepare its CSV, with progress.

``payroll_job_start`` runs in the request: it checks the period now (so the
page can say at once why not, as a 409), creates the job row (or joins the one
already under way) and enqueues ``marketplace.tasks.run_payroll_job`` after
commit.  ``payroll_job_run`` runs in a Celery worker (in-process, eagerly, in
the embedded default and in tests): it claims the job with a compare-and-swap
(``queued`` → ``running``, so a redelivered task does nothing), does the work
through ``marketplace.services.payroll`` and records how it ended.  A job
whose task was lost (still queued after ``REQUEUE_AFTER``) is handed to a
worker again by the beat's ``requeue_payroll_jobs``.

Progress is written outside any transaction, so the floor's poll sees it as
it happens: a close is one transaction and reports its state (queued, running
since, done with the entry count); an export counts the CSV rows it has
written (``rows_done`` of ``rows_total``).  The CSV is the one
``payroll.export_chunks`` produces, byte for byte, written to private storage
and recorded in a ``PayrollExport`` row like every other export.
"""

from __future__ import annotations

import logging
import os
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.db import transaction
from django.utils import timezone

from agents.models import User
from config import effects
from config.errors import DomainError, InvalidInput, InvalidTransition
from marketplace.models import (
    ACTIVE_JOB,
    LedgerEntry,
    PayPeriod,
    PayPeriodStatus,
    PayrollExport,
    PayrollJob,
    PayrollJobKind,
    PayrollJobStatus,
)
from marketplace.services import payroll

log = logging.getLogger(__name__)


def stale_after() -> timedelta:
    """A job with no news for this long lost its worker (a crash, a deploy): the
    next request for the same work marks it failed and starts again.  It is the
    longest a task may run (``CELERY_TASK_TIME_LIMIT``; a close is one
    transaction, so a very large one must finish within it), so a job still
    running is never taken for lost.  Closing and exporting are both safe to repeat.
    """
    return timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)


# A job still queued this long after it was created lost its task (the broker
# refused it while Redis was down, or Redis restarted before a worker took
# it): the beat's sweep (``payroll_jobs_requeue``) hands it to a worker again.
# The claim makes any second copy of the task do nothing.
REQUEUE_AFTER = timedelta(seconds=60)
EXPORT_CHANNEL = "ops"


def export_storage() -> FileSystemStorage:
    """Prepared payroll files: private, next to the identity documents."""
    return FileSystemStorage(location=settings.PRIVATE_MEDIA_ROOT / "payroll", base_url=None)


def inline_export_max_entries() -> int:
    """Periods up to this many entries download at once; larger ones are prepared first."""
    return int(settings.HUMANLINE["PAYROLL_EXPORT_INLINE_MAX_ENTRIES"])


def _check(period: PayPeriod, kind: str, now: datetime) -> None:
    if kind == PayrollJobKind.CLOSE:
        if period.status == PayPeriodStatus.CLOSED:
            raise InvalidTransition("This pay period is already closed.", code="period_closed")
        if now < period.ends_at:
            raise InvalidTransition(
                f"The pay period runs until {period.ends_at:%a %-d %b %H:%M} UTC; close it after.",
                code="period_not_ended",
            )
    elif kind == PayrollJobKind.EXPORT:
        payroll.closed_period(period.pk)
    else:
        raise InvalidInput(f"Unknown payroll job {kind!r}.", code="invalid_kind")


def _finish(job_id: int, *, status: str, now: datetime | None = None, **fields) -> int:
    """Set the end state of a job that is still active; 0 when it had already ended."""
    return PayrollJob.objects.filter(pk=job_id, status__in=ACTIVE_JOB).update(
        status=status, finished_at=now or timezone.now(), **fields
    )


@transaction.atomic
def payroll_job_start(
    *, period_id: int, kind: str, actor: User | None, now: datetime | None = None
) -> PayrollJob:
    """Start closing or exporting a period in the background; join the job already running.

    ``PayPeriod.DoesNotExist`` for an unknown period; ``InvalidTransition`` (409)
    when the period's state does not allow the work.
    """
    now = now or timezone.now()
    # The period row lock orders concurrent starts: the second finds the first's job.
    period = PayPeriod.objects.select_for_update().get(pk=period_id)
    _check(period, kind, now)
    active = PayrollJob.objects.filter(period=period, kind=kind, status__in=ACTIVE_JOB).first()
    if active is not None:
        if (active.heartbeat_at or active.created_at) > now - stale_after():
            return active
        _finish(
            active.pk,
            status=PayrollJobStatus.FAILED,
            now=now,
            error_code="stalled",
            error_message="The worker stopped answering; the work was started again.",
        )
    job = PayrollJob.objects.create(period=period, kind=kind, created_by=actor, created_at=now)

    def enqueue(job_id: int = job.pk) -> None:
        from marketplace import tasks

        tasks.run_payroll_job.delay(job_id)

    effects.after_commit(enqueue)
    return job


def payroll_jobs_requeue(*, now: datetime | None = None) -> int:
    """Beat: enqueue again each job still queued past ``REQUEUE_AFTER``; how many."""
    from marketplace import tasks

    now = now or timezone.now()
    lost = PayrollJob.objects.filter(
        status=PayrollJobStatus.QUEUED, created_at__lte=now - REQUEUE_AFTER
    )
    ids = list(lost.order_by("created_at").values_list("pk", flat=True)[:100])
    for job_id in ids:
        tasks.run_payroll_job.delay(job_id)
    return len(ids)


def payroll_job_run(*, job_id: int) -> PayrollJob | None:
    """Do a queued job's work (the Celery task calls this); None if it was not queued."""
    now = timezone.now()
    claimed = PayrollJob.objects.filter(pk=job_id, status=PayrollJobStatus.QUEUED).update(
        status=PayrollJobStatus.RUNNING, started_at=now, heartbeat_at=now
    )
    if not claimed:
        return None
    job = PayrollJob.objects.select_related("created_by").get(pk=job_id)
    try:
        if job.kind == PayrollJobKind.CLOSE:
            _run_close(job)
        else:
            _run_export(job)
    except DomainError as exc:
        _finish(
            job.pk,
            status=PayrollJobStatus.FAILED,
            error_code=exc.code,
            error_message=exc.message[:500],
        )
    except Exception:
        # Recorded for the page; logged with its traceback for the operators.
        log.exception("payroll job %s failed", job_id)
        _finish(
            job.pk,
            status=PayrollJobStatus.FAILED,
            error_code="error",
            error_message="Something went wrong on our side; try again.",
        )
    return PayrollJob.objects.get(pk=job_id)


def _run_close(job: PayrollJob) -> None:
    period = payroll.pay_period_close(period_id=job.period_id, actor=job.created_by)
    count = period.entry_count or 0
    _finish(job.pk, status=PayrollJobStatus.DONE, rows_total=count, rows_done=count)


def _csv_rows(period_id: int) -> int:
    """How many rows the CSV will have: one per agent and currency."""
    return (
        LedgerEntry.objects.filter(period_id=period_id)
        .values("agent_id", "currency")
        .distinct()
        .count()
    )


def _run_export(job: PayrollJob) -> None:
    payroll.closed_period(job.period_id)
    total = _csv_rows(job.period_id)
    PayrollJob.objects.filter(pk=job.pk).update(rows_total=total)
    storage = export_storage()
    os.makedirs(storage.location, exist_ok=True)
    name = f"{job.pk}-{uuid.uuid4().hex}.csv"
    partial = storage.path(name + ".part")
    result = payroll.ExportResult()
    try:
        with open(partial, "wb") as out:
            for chunk in payroll.export_chunks(job.period_id, result):
                out.write(chunk)
                PayrollJob.objects.filter(pk=job.pk).update(
                    rows_done=min(result.rows, total), heartbeat_at=timezone.now()
                )
        os.replace(partial, storage.path(name))
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    with transaction.atomic():
        export = PayrollExport.objects.create(
            period_id=job.period_id,
            sha256=result.sha256,
            row_count=result.rows,
            byte_count=result.bytes,
            channel=EXPORT_CHANNEL,
            created_by=job.created_by,
        )
        done = _finish(
            job.pk,
            status=PayrollJobStatus.DONE,
            rows_done=min(result.rows, total),
            file_name=name,
            export=export,
        )
        if not done:  # marked stalled meanwhile: keep the audit row, drop the orphan file
            effects.after_commit(lambda: storage.delete(name))
            return
        _forget_older_files(job, storage)


def _forget_older_files(job: PayrollJob, storage: FileSystemStorage) -> None:
    """Keep the newest prepared file of a period; the audit rows stay."""
    older = (
        PayrollJob.objects.filter(
            period_id=job.period_id, kind=PayrollJobKind.EXPORT, status=PayrollJobStatus.DONE
        )
        .exclude(pk=job.pk)
        .exclude(file_name="")
    )
    names = list(older.values_list("file_name", flat=True))
    older.update(file_name="")
    effects.after_commit(lambda: [storage.delete(n) for n in names])


def payroll_job_file(*, job: PayrollJob):
    """The prepared CSV, opened for reading; ``InvalidTransition`` while it is not ready."""
    if job.kind != PayrollJobKind.EXPORT or job.status != PayrollJobStatus.DONE:
        raise InvalidTransition("The payroll file is not ready yet.", code="not_ready")
    if not job.file_name:
        raise InvalidTransition(
            "A newer file replaced this one; prepare the CSV again.", code="file_replaced"
        )
    return export_storage().open(job.file_name, "rb")


# --- how the page describes a job -------------------------------------------------------


def job_status_text(job: PayrollJob) -> str:
    if job.status == PayrollJobStatus.FAILED:
        return job.error_message or "Failed."
    if job.status == PayrollJobStatus.QUEUED:
        return "Waiting for a worker…"
    if job.kind == PayrollJobKind.CLOSE:
        if job.status == PayrollJobStatus.RUNNING:
            return "Closing: adding engaged-time floor top-ups and freezing the week…"
        return f"Closed: {job.rows_done:,} entries frozen."
    if job.status == PayrollJobStatus.RUNNING:
        if job.rows_total is None:
            return "Adding up the ledger…"
        return f"Writing rows: {job.rows_done:,} of {job.rows_total:,}"
    return f"CSV ready: {job.rows_done:,} row{'s' if job.rows_done != 1 else ''}."
