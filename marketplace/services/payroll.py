"""Payroll: close a pay week (engaged-time floor, then freeze) and export it as CSV.

Closing is one transaction holding the period row's exclusive lock: entries
being written hold a share lock on it (``ledger.period_for_entry``), so the
close waits for them, and entries arriving after it see the period closed and
land in the next one.  A second close (repeated or racing) waits on the same
lock, finds the period closed and returns it unchanged.

The export is aggregated by the database (one GROUP BY over the period's
entries, read through a server-side cursor) and streamed in chunks; only one
chunk of rows is in memory at a time.  Its bytes depend on the ledger only
(rows ordered by agent and currency, no timestamps), so every export of a
closed period is byte-identical, and its SHA-256 is recorded in
``PayrollExport``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from agents.models import Agent, User
from config.errors import InvalidTransition
from marketplace.models import EntryKind, LedgerEntry, PayPeriod, PayPeriodStatus, PayrollExport
from marketplace.services.ledger import money

KINDS = [kind.value for kind in EntryKind]


# --- engaged time -----------------------------------------------------------------

# An agent's assignment intervals: from each ``assigned`` event of a ticket to
# that ticket's next event (resolved, requeued…), or open while none follows.
# Only tickets with an event since ``start`` or still assigned can overlap the
# week: any other ticket's last assignment ended before it.
_ASSIGNMENT_INTERVALS = """
SELECT agent_id, created_at, ended_at FROM (
    SELECT e.ticket_id, e.agent_id, e.to_status, e.created_at,
           LEAD(e.created_at) OVER (PARTITION BY e.ticket_id ORDER BY e.created_at, e.id)
               AS ended_at
    FROM tickets_ticketevent e
    WHERE e.ticket_id IN (
        SELECT ticket_id FROM tickets_ticketevent WHERE created_at >= %(start)s
        UNION
        SELECT id FROM tickets_ticket WHERE status = 'assigned'
    )
) intervals
WHERE to_status = 'assigned' AND agent_id IS NOT NULL AND created_at < %(end)s
  AND (ended_at IS NULL OR ended_at > %(start)s)
ORDER BY agent_id, created_at
"""


def _as_datetime(value) -> datetime:
    # SQLite hands raw SQL timestamps back as text.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    return value


def engaged_seconds(*, start: datetime, end: datetime, now: datetime) -> dict[int, int]:
    """Seconds in ``[start, end)`` each agent had at least one assigned ticket.

    The union of the agent's assignment intervals, clipped to the week (and to
    ``now`` for an assignment still open): two tickets at once count once.
    """
    horizon = min(end, now)
    totals: dict[int, int] = {}
    current_agent, span_start, span_end = None, None, None

    def flush():
        if current_agent is not None and span_end > span_start:
            seconds = int((span_end - span_start).total_seconds())
            totals[current_agent] = totals.get(current_agent, 0) + seconds

    with connection.cursor() as cursor:
        adapt = connection.ops.adapt_datetimefield_value
        cursor.execute(_ASSIGNMENT_INTERVALS, {"start": adapt(start), "end": adapt(end)})
        for agent_id, began, ended in cursor:
            began = max(_as_datetime(began), start)
            ended = min(_as_datetime(ended), horizon) if ended is not None else horizon
            if ended <= began:
                continue
            if agent_id != current_agent or began > span_end:
                flush()
                current_agent, span_start, span_end = agent_id, began, ended
            else:
                span_end = max(span_end, ended)
        flush()
    return totals


def floor_rate() -> tuple[Decimal, str]:
    policy = settings.HUMANLINE
    return Decimal(policy["PAY_FLOOR_HOURLY_RATE"]), policy["PAY_FLOOR_CURRENCY"]


def floor_top_ups(*, period: PayPeriod, now: datetime) -> dict[int, Decimal]:
    """{agent_id: top-up} for agents whose week's earnings are below rate × engaged hours.

    Earnings are the period's entries in the floor currency, every kind but
    the floor itself.
    """
    rate, code = floor_rate()
    engaged = engaged_seconds(start=period.starts_at, end=period.ends_at, now=now)
    if not engaged or rate <= 0:
        return {}
    earned = dict(
        LedgerEntry.objects.filter(period=period, currency=code, agent_id__in=list(engaged))
        .exclude(kind=EntryKind.EARNINGS_FLOOR)
        .values("agent_id")
        .annotate(total=Sum("amount"))
        .values_list("agent_id", "total")
    )
    top_ups = {}
    for agent_id, seconds in engaged.items():
        floor = money(rate * Decimal(seconds) / 3600)
        missing = floor - (earned.get(agent_id) or Decimal(0))
        if missing > 0:
            top_ups[agent_id] = missing
    return top_ups


# --- closing ----------------------------------------------------------------------


def period_totals(period_id: int) -> tuple[int, dict[str, str]]:
    """The number of entries and the total per currency, as strings for JSON."""
    count = 0
    totals = {}
    for row in (
        LedgerEntry.objects.filter(period_id=period_id)
        .values("currency")
        .annotate(n=Count("id"), total=Sum("amount"))
        .order_by("currency")
    ):
        count += row["n"]
        totals[row["currency"]] = f"{row['total']:.2f}"
    return count, totals


@transaction.atomic
def pay_period_close(*, period_id: int, actor: User | None, now: datetime | None = None):
    """Add the floor top-ups, then freeze the period.  Safe to repeat and to race."""
    now = now or timezone.now()
    period = PayPeriod.objects.select_for_update().get(pk=period_id)
    if period.status == PayPeriodStatus.CLOSED:
        return period
    if now < period.ends_at:
        raise InvalidTransition(
            f"The pay period runs until {period.ends_at:%Y-%m-%d %H:%M} UTC; close it after.",
            code="period_not_ended",
        )
    rate, code = floor_rate()
    LedgerEntry.objects.bulk_create(
        [
            LedgerEntry(
                agent_id=agent_id,
                kind=EntryKind.EARNINGS_FLOOR,
                amount=amount,
                currency=code,
                period=period,
                reason=f"Engaged-time floor of {rate} {code} an hour for the week.",
                created_at=now,
                created_by=actor,
            )
            for agent_id, amount in sorted(floor_top_ups(period=period, now=now).items())
        ],
        batch_size=1000,
    )
    period.entry_count, period.totals = period_totals(period.pk)
    period.status, period.closed_at, period.closed_by = PayPeriodStatus.CLOSED, now, actor
    period.save(update_fields=["status", "closed_at", "closed_by", "entry_count", "totals"])
    return period


def pay_periods_close_due(*, now: datetime | None = None) -> int:
    """Close every open period that has ended (for a scheduled close; staff may close first)."""
    now = now or timezone.now()
    due = PayPeriod.objects.filter(status=PayPeriodStatus.OPEN, ends_at__lte=now)
    closed = 0
    for period_id in due.values_list("pk", flat=True):
        pay_period_close(period_id=period_id, actor=None, now=now)
        closed += 1
    return closed


# --- the CSV export -----------------------------------------------------------------

HEADER = [
    "agent_id",
    "email",
    "name",
    "cohort",
    "country",
    "currency",
    "task_count",
    *KINDS,
    "total",
]
# Cells a spreadsheet would evaluate as a formula (OWASP "CSV injection").
_DANGEROUS_START = ("=", "+", "-", "@", "\t", "\r")
_AMOUNT = re.compile(r"^-?\d+\.\d{2}$")
CHUNK_ROWS = 500
IDENTITY_BATCH = 1000


def safe_text(value) -> str:
    """A text cell that no spreadsheet evaluates: a leading apostrophe if it would be."""
    text = "" if value is None else str(value)
    # NFKC folds the full-width forms (＝ ＋ － ＠) that spreadsheets also evaluate.
    first = unicodedata.normalize("NFKC", text[:1])
    return "'" + text if first.startswith(_DANGEROUS_START) else text


def amount_cell(value) -> str:
    """A money cell stays a number.

    It is formatted here from a Decimal (never from user text) and checked to
    be a plain number such as ``-2.50``; a spreadsheet reads that as the
    number -2.5, not as a formula, so it needs no neutralising apostrophe
    (which would turn it into text and break the sums).
    """
    text = f"{Decimal(value or 0):.2f}"
    if not _AMOUNT.match(text):
        raise ValueError(f"not an amount: {text!r}")
    return text


def _aggregated_rows(period_id: int):
    sums = {kind: Sum("amount", filter=Q(kind=kind), default=Decimal(0)) for kind in KINDS}
    return (
        LedgerEntry.objects.filter(period_id=period_id)
        .values("agent_id", "currency")
        .annotate(
            task_count=Count("id", filter=Q(kind=EntryKind.TASK)), total=Sum("amount"), **sums
        )
        .order_by("agent_id", "currency")
        .iterator(chunk_size=2000)
    )


def _with_identities(rows: Iterable[dict]) -> Iterator[tuple[dict, dict]]:
    """Attach each row's agent identity, fetched for a batch of agents at a time."""
    batch: list[dict] = []

    def identities(items):
        ids = {row["agent_id"] for row in items}
        return {
            agent["id"]: agent
            for agent in Agent.objects.filter(pk__in=ids).values(
                "id", "cohort", "country", "user__email", "user__name"
            )
        }

    for row in rows:
        batch.append(row)
        if len(batch) >= IDENTITY_BATCH:
            known = identities(batch)
            yield from ((row, known[row["agent_id"]]) for row in batch)
            batch = []
    if batch:
        known = identities(batch)
        yield from ((row, known[row["agent_id"]]) for row in batch)


def csv_line(row: dict, who: dict) -> list[str]:
    return [
        str(row["agent_id"]),
        safe_text(who["user__email"]),
        safe_text(who["user__name"]),
        safe_text(who["cohort"]),
        safe_text(who["country"]),
        safe_text(row["currency"]),
        str(row["task_count"]),
        *(amount_cell(row[kind]) for kind in KINDS),
        amount_cell(row["total"]),
    ]


@dataclass
class ExportResult:
    sha256: str = ""
    rows: int = 0
    bytes: int = 0


def export_chunks(period_id: int, result: ExportResult | None = None) -> Iterator[bytes]:
    """The period's CSV (RFC 4180: CRLF, minimal quoting, UTF-8) in chunks of bytes."""
    result = result if result is not None else ExportResult()
    digest = hashlib.sha256()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)

    def drain() -> bytes:
        data = buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
        digest.update(data)
        result.bytes += len(data)
        return data

    writer.writerow(HEADER)
    for n, (row, who) in enumerate(_with_identities(_aggregated_rows(period_id)), start=1):
        writer.writerow(csv_line(row, who))
        result.rows = n
        if n % CHUNK_ROWS == 0:
            yield drain()
    yield drain()
    result.sha256 = digest.hexdigest()


def closed_period(period_id: int) -> PayPeriod:
    period = PayPeriod.objects.get(pk=period_id)
    if period.status != PayPeriodStatus.CLOSED:
        raise InvalidTransition(
            "Only a closed pay period can be exported; close it first.", code="period_open"
        )
    return period


def payroll_export(*, period_id: int, actor: User | None, channel: str) -> Iterator[bytes]:
    """Stream a closed period's CSV; once fully written, record its SHA-256.

    Raises ``InvalidTransition`` (409) at once for an open period, before any
    byte is produced, so that callers can answer with an error body.
    """
    closed_period(period_id)

    def stream():
        result = ExportResult()
        yield from export_chunks(period_id, result)
        PayrollExport.objects.create(
            period_id=period_id,
            sha256=result.sha256,
            row_count=result.rows,
            byte_count=result.bytes,
            channel=channel,
            created_by=actor,
        )

    return stream()


def export_filename(period: PayPeriod) -> str:
    return f"payroll-{period.starts_at:%Y-%m-%d}-{period.pk}.csv"


def streaming_response(request, chunks: Iterator[bytes], filename: str):
    """A CSV download streamed chunk by chunk, under WSGI and ASGI alike.

    Under ASGI, Django would read a synchronous iterator to the end before
    sending a byte (it cannot iterate it in the event loop); an asynchronous
    one is streamed.  Each chunk is then produced in the thread of the request's
    database connection (``thread_sensitive``), one chunk at a time.
    """
    from asgiref.sync import sync_to_async
    from django.core.handlers.asgi import ASGIRequest
    from django.http import StreamingHttpResponse

    content = chunks
    if isinstance(getattr(request, "_request", request), ASGIRequest):
        done = object()
        step = sync_to_async(lambda: next(chunks, done), thread_sensitive=True)

        async def streamed():
            while (chunk := await step()) is not done:
                yield chunk

        content = streamed()
    response = StreamingHttpResponse(content, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response
