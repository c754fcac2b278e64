"""Payroll benchmark: one million ledger entries over five thousand agents, close, export.

Run by ``make bench``.  Uses its own database, ``humanline_pay_bench`` (on the
server of DATABASE_URL), dropped and re-created and migrated on each run, so
it never touches the test or the other benchmarks' databases.  Prints the rows
per second aggregated into the CSV and the export's peak memory.

Targets: >= 200,000 entries/s aggregated into the CSV, < 150 MB peak.
The entries are staff adjustments (the one kind without a unique cause); the
export aggregates every kind with the same FILTERed sums whatever the mix.
"""

import io
import os
import random
import resource
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._fresh_db import django_on_fresh_database  # noqa: E402

AGENTS = int(os.environ.get("BENCH_AGENTS", 5_000))
ENTRIES = int(os.environ.get("BENCH_ENTRIES", 1_000_000))
DB_NAME = "humanline_pay_bench"
COPY_BATCH = 100_000


def main() -> None:
    django_on_fresh_database(DB_NAME)
    from datetime import UTC, datetime, timedelta

    from django.db import connection

    from agents.models import Agent, Role, User
    from marketplace.models import PayPeriod
    from marketplace.services import payroll
    from marketplace.services.ledger import period_bounds

    print(f"database {DB_NAME}: migrated")

    week = datetime(2030, 1, 7, tzinfo=UTC)
    start, end = period_bounds(week)
    staff = User.objects.create(email="ops@bench.example", name="Ops", role=Role.STAFF)
    users = User.objects.bulk_create(
        [
            User(email=f"agent{i}@bench.example", name=f"Agent {i}", role=Role.AGENT, password="!")
            for i in range(AGENTS)
        ],
        batch_size=2000,
    )
    cohorts = ["student", "rural", "power_user", "other"]
    agents = Agent.objects.bulk_create(
        [
            Agent(user=u, status="approved", cohort=cohorts[i % 4], country="PT", time_zone="UTC")
            for i, u in enumerate(users)
        ],
        batch_size=2000,
    )
    period = PayPeriod.objects.create(starts_at=start, ends_at=end)
    agent_ids = [a.pk for a in agents]

    rng = random.Random(6)
    started = time.perf_counter()
    columns = "(agent_id, kind, amount, currency, period_id, reason, created_at, created_by_id)"
    stamp = (start + timedelta(days=2)).isoformat()
    with connection.cursor() as cursor:
        raw = cursor.cursor
        written = 0
        while written < ENTRIES:
            n = min(COPY_BATCH, ENTRIES - written)
            buffer = io.StringIO()
            for _ in range(n):
                cents = rng.choice((-1, 1, 1, 1, 1)) * rng.randint(1, 500)
                buffer.write(
                    f"{rng.choice(agent_ids)}\tadjustment\t{cents / 100:.2f}\tEUR\t{period.pk}"
                    f"\tbench\t{stamp}\t{staff.pk}\n"
                )
            buffer.seek(0)
            raw.copy_expert(f"COPY marketplace_ledgerentry {columns} FROM STDIN", buffer)
            written += n
        cursor.execute("ANALYZE marketplace_ledgerentry")
    inserted = time.perf_counter() - started
    print(f"inserted {ENTRIES:,} entries over {AGENTS:,} agents in {inserted:.1f}s (COPY)")

    started = time.perf_counter()
    payroll.pay_period_close(period_id=period.pk, actor=staff, now=end + timedelta(hours=1))
    print(f"closed the period in {time.perf_counter() - started:.2f}s")

    # The export, timed without tracing, then measured for memory with tracemalloc.
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    size = 0
    first = b""
    for chunk in payroll.payroll_export(period_id=period.pk, actor=staff, channel="command"):
        size += len(chunk)
        first = first or chunk
    seconds = time.perf_counter() - started
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    tracemalloc.start()
    for _chunk in payroll.payroll_export(period_id=period.pk, actor=staff, channel="command"):
        pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    from marketplace.models import PayrollExport

    digests = set(PayrollExport.objects.filter(period=period).values_list("sha256", flat=True))
    rows = PayrollExport.objects.filter(period=period).first().row_count
    print(f"exported {rows:,} CSV rows ({size / 1e6:.2f} MB) in {seconds:.2f}s")
    print(f"aggregation rate: {ENTRIES / seconds:,.0f} entries/s into the CSV (target >= 200,000)")
    print(f"export peak memory (tracemalloc): {peak / 1e6:.1f} MB (target < 150 MB)")
    grew = (rss_after - rss_before) / 1024
    print(f"process max RSS: {rss_after / 1024:.0f} MB (grew {grew:.0f} MB during the export)")
    print(f"identical bytes on both exports: {len(digests) == 1}")
    connection.close()
    if ENTRIES / seconds < 200_000 or peak >= 150e6 or len(digests) != 1:
        sys.exit("payroll benchmark missed a target")


if __name__ == "__main__":
    main()
