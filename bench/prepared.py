"""Prepared statements against the same statements unprepared (``config/prepared.py``).

Runs the two dispatch statements every ticket runs, in this process on
PostgreSQL, with 200 agents online and 500 tickets waiting: the ranking of a
new ticket's agents (``rules.agents_for``) and a freed agent's pull
(``rules.tickets_for``).  Each runs prepared (``PREPARED_STATEMENTS`` on, the
default) and unprepared (off, as behind a pooler in transaction mode), in
turns, and the table gives the CPU of PostgreSQL's backend and of this
process per call.

Usage: ``make bench`` or ``python bench/prepared.py --calls 400``.
It uses its own database, ``humanline_prepared_bench``, recreated each run.
"""

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._fresh_db import django_on_fresh_database  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
AGENTS = 200
WAITING = 500


def backend_cpu(pid: int) -> float:
    """Seconds of CPU a PostgreSQL backend has used (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def seed() -> int:
    """Agents online (``bench/dispatch.py``'s), tickets waiting; an agent who may take them."""
    from agents.models import Agent, User
    from bench.dispatch import seed as agents_online
    from tickets.services import NewTicket, ticket_open

    agents_online(AGENTS)
    customer = User.objects.create_user(email="prep-customer@example.org", name="Customer")
    for n in range(WAITING):
        ticket_open(caller=customer, new=NewTicket(subject=f"Waiting {n}", body="Help."))
    return Agent.objects.order_by("pk").values_list("pk", flat=True)[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=400, help="calls per statement, mode and turn")
    parser.add_argument("--turns", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("OPEN_TICKETS_PER_CUSTOMER", "1000000")
    os.environ.setdefault("SECURE", "0")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "0")
    os.environ["DISPATCH_INLINE"] = "false"  # the tickets wait; nothing is offered
    django_on_fresh_database("humanline_prepared_bench")

    from django.db import connection
    from django.test.utils import override_settings
    from django.utils import timezone

    from marketplace.dispatch import rules

    agent_id = seed()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone()
    now = timezone.now()
    target = rules.Target(language="en", category="general")
    calls = {
        "ranking (agents_for)": lambda: rules.agents_for(target, now, limit=16),
        "pull (tickets_for)": lambda: rules.tickets_for(agent_id, now, settled=now, limit=4),
    }
    spent: dict[tuple[str, bool], list[float]] = {}
    for _ in range(args.turns):
        for prepared in (True, False):
            with override_settings(PREPARED_STATEMENTS=prepared):
                for name, call in calls.items():
                    assert call(), f"{name} found nothing"
                    python, database = time.process_time(), backend_cpu(backend)
                    for _ in range(args.calls):
                        call()
                    totals = spent.setdefault((name, prepared), [0.0, 0.0, 0])
                    totals[0] += time.process_time() - python
                    totals[1] += backend_cpu(backend) - database
                    totals[2] += args.calls
    print(
        f"prepared statements: {AGENTS} agents online, {WAITING} tickets waiting;"
        f" {args.calls} calls per statement, mode and turn, {args.turns} turns"
    )
    print("| statement | prepared | PostgreSQL CPU ms/call | Python CPU ms/call |")
    print("|---|---|---|---|")
    for (name, prepared), (python, database, count) in spent.items():
        print(
            f"| {name} | {'yes' if prepared else 'no'} | {1000 * database / count:.3f}"
            f" | {1000 * python / count:.3f} |"
        )
    connection.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
