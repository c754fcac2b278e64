"""Queue ETA benchmark: what reading a lane's service rate costs as the window fills.

Run by ``make bench``.  Uses its own database, ``humanline_eta_bench`` (on the
server of DATABASE_URL), dropped, re-created and migrated on each run.  The
tables are analysed while empty, as on a new deployment, then filled by COPY
with tickets assigned over the ETA window in a few lanes: most in the busy
lane, a few in a quiet one.  At each size it times
``selectors.seconds_per_ticket`` (the count every web process runs for a lane
every ``QUEUE_ETA_CACHE_SECONDS``) for both lanes, and prints the median and
the worst of the rounds.

A sustained 100 tickets/s fills a 30-minute window with 180,000 assignments.
Target: a rate read under 5 ms at every size, so that it never shows in a
creation request's tail.
"""

import io
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._fresh_db import django_on_fresh_database  # noqa: E402

DB_NAME = "humanline_eta_bench"
SIZES = [int(n) for n in os.environ.get("BENCH_ETA_SIZES", "2000,20000,180000").split(",")]
ROUNDS = 15
TARGET_MS = 5.0
# (language, category, share of the assignments)
LANES = [("en", "general", 0.90), ("pt", "general", 0.08), ("de", "billing", 0.02)]


def _lane_of(i: int) -> tuple[str, str]:
    """The lane of the i-th ticket: the lanes take their shares of every hundred."""
    bound = 0.0
    for language, category, share in LANES:
        bound += share * 100
        if i % 100 < bound:
            return language, category
    return LANES[-1][:2]


def _fill(cursor, *, count: int, customer_id: int, agent_id: int, now, window) -> None:
    """``count`` resolved tickets, each assigned once inside the window, with its event rows."""
    from tickets.models import Ticket, TicketEvent

    tickets, events = Ticket._meta.db_table, TicketEvent._meta.db_table
    step = window.total_seconds() / max(count, 1)
    buffer = io.StringIO()
    for i in range(count):
        lane = _lane_of(i)
        assigned = (now - window + timedelta(seconds=(i + 0.5) * step)).isoformat()
        buffer.write(
            f"{customer_id}\tBench\tbench\t{lane[0]}\t{lane[1]}\tnormal\tresolved\t[]\t\t\t"
            f"{agent_id}\t{assigned}\t{assigned}\t{assigned}\t0\t{assigned}\t{assigned}\n"
        )
    buffer.seek(0)
    cursor.cursor.copy_expert(
        f"COPY {tickets} (customer_id, subject, body, language, category, priority, status,"
        " handoff_transcript, handoff_summary, handoff_intent, assigned_agent_id, assigned_at,"
        " queued_at, resolved_at, reopen_count, created_at, status_changed_at) FROM STDIN",
        buffer,
    )
    # Each ticket's assignment row (what an earlier ETA count read),
    # then its resolution.
    cursor.execute(
        f"INSERT INTO {events} (ticket_id, agent_id, from_status, to_status, reason, created_at)"
        f" SELECT id, assigned_agent_id, 'offered', 'assigned', '', assigned_at FROM {tickets}"
        f" WHERE id > coalesce((SELECT max(ticket_id) FROM {events}), 0)"
        f" UNION ALL SELECT id, assigned_agent_id, 'assigned', 'resolved', '', assigned_at"
        f" FROM {tickets} WHERE id > coalesce((SELECT max(ticket_id) FROM {events}), 0)"
    )


def main() -> None:
    django_on_fresh_database(DB_NAME)
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from agents.models import Agent, Role, User
    from tickets import selectors
    from tickets.models import Ticket, TicketEvent

    customer = User.objects.create(email="c@bench.example", name="C", role=Role.CUSTOMER)
    worker = User.objects.create(email="a@bench.example", name="A", role=Role.AGENT)
    agent = Agent.objects.create(user=worker, status="approved", country="PT", time_zone="UTC")
    with connection.cursor() as cursor:  # statistics of empty tables: a new deployment
        cursor.execute(f"ANALYZE {Ticket._meta.db_table}, {TicketEvent._meta.db_table}")

    window = timedelta(minutes=settings.HUMANLINE["QUEUE_ETA_WINDOW_MINUTES"])
    print(f"database {DB_NAME}: migrated, analysed empty; window {window}, {ROUNDS} rounds each")
    worst = 0.0
    filled = 0
    now = timezone.now()
    for size in SIZES:
        with connection.cursor() as cursor:
            _fill(
                cursor,
                count=size - filled,
                customer_id=customer.pk,
                agent_id=agent.pk,
                now=now,
                window=window,
            )
        filled = size
        for language, category, _share in (LANES[0], LANES[-1]):
            timings = []
            for _ in range(ROUNDS):
                started = time.perf_counter()
                rate = selectors.seconds_per_ticket(
                    language=language, category=category, now=now + timedelta(seconds=1)
                )
                timings.append((time.perf_counter() - started) * 1000)
            worst = max(worst, max(timings))
            print(
                f"  {size:>7,} assignments in the window, lane {language}/{category}:"
                f" rate read in {statistics.median(timings):.2f} ms median,"
                f" {max(timings):.2f} ms worst; {rate:.3f} s per ticket"
            )
    connection.close()
    print(f"slowest rate read: {worst:.2f} ms (target < {TARGET_MS:.0f} ms)")
    if worst >= TARGET_MS:
        sys.exit("queue ETA benchmark missed its target")


if __name__ == "__main__":
    main()
