"""What resolving a ticket costs against opening one: CPU per request, and statements.

A floor that resolves as fast as tickets arrive spends as much on resolving as
on opening; resolving must stay within twice the cost of opening.  Each
request goes through the whole API in this process (Django's test client:
authentication, the view, the services, the JSON answer), on PostgreSQL.
Counted per request: this process's CPU, the CPU of its PostgreSQL backend
(read from /proc), and the statements run.  Opening is measured with no agent
online (nothing is offered in the request); resolving is the agent's answer
to an offer they accepted, with the pull that fills their freed seat.

Target: a resolve costs at most twice an open.

Usage: ``make bench`` or ``python bench/resolve_cost.py --tickets 300``.
It uses its own database, ``humanline_resolve_bench``, recreated each run.
"""

import argparse
import os
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._fresh_db import django_on_fresh_database  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
ONE = Decimal("1.00")  # no surge: the offer's price is the rate card's


def backend_cpu(pid: int) -> float:
    """Seconds of CPU a PostgreSQL backend has used (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tickets", type=int, default=300)
    args = parser.parse_args()

    os.environ.setdefault("OPEN_TICKETS_PER_CUSTOMER", "1000000")
    os.environ.setdefault("SECURE", "0")  # plain HTTP, as the test client speaks
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # Tasks are queued (in memory), as a web process hands them to the workers:
    # the agent's quality score is a worker's job, not the request's.
    os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "0")
    django_on_fresh_database("humanline_resolve_bench")
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    from agents import presence
    from agents.models import Agent, AgentLanguage, AgentStatus, Role, Skill, User
    from marketplace.services import dispatch

    customer = User.objects.create_user(email="bench-customer@example.org", name="Customer")
    agent_user = User.objects.create_user(
        email="bench-agent@example.org", name="Agent", role=Role.AGENT
    )
    agent = Agent.objects.create(
        user=agent_user,
        status=AgentStatus.APPROVED,
        cohort="student",
        country="PT",
        time_zone="UTC",
        capacity=5,
    )
    AgentLanguage.objects.create(agent=agent, code="en")
    agent.skills.set([Skill.objects.get(slug="general")])

    def client(user):
        api = APIClient(HTTP_HOST="127.0.0.1")
        api.force_authenticate(user)
        return api

    as_customer, as_agent = client(customer), client(agent_user)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone()

    def measured(call):
        cpu, db = time.process_time(), backend_cpu(backend)
        with CaptureQueriesContext(connection) as queries:
            response = call()
        return (
            response,
            (time.process_time() - cpu) * 1000,
            (backend_cpu(backend) - db) * 1000,
            len(queries),
        )

    opens, resolves = [], []
    for n in range(args.tickets):
        response, python_ms, db_ms, count = measured(
            lambda n=n: as_customer.post(
                "/api/v1/tickets/",
                {"subject": f"Bench {n}", "body": "Charged twice.", "category": "general"},
                format="json",
            )
        )
        assert response.status_code == 201, response.content
        opens.append((python_ms, db_ms, count))
        ticket_id = response.json()["id"]
        presence.agent_presence_set(agent_id=agent.pk, status="online")
        offer = dispatch.offer_make(ticket_id=ticket_id, agent_id=agent.pk, multiplier=ONE)
        assert as_agent.post(f"/api/v1/offers/{offer.pk}/accept/").status_code == 200
        response, python_ms, db_ms, count = measured(
            lambda ticket_id=ticket_id: as_agent.post(f"/api/v1/tickets/{ticket_id}/resolve/")
        )
        assert response.status_code == 200, response.content
        resolves.append((python_ms, db_ms, count))
        presence.agent_presence_set(agent_id=agent.pk, status="away")

    def summary(rows):
        warm = rows[len(rows) // 5 :]  # past the first fifth: statements prepared, caches warm
        python_ms = statistics.median(r[0] for r in warm)
        db_ms = statistics.mean(r[1] for r in warm)  # /proc counts in ticks: a mean, not a median
        return python_ms, db_ms, statistics.median(r[2] for r in warm)

    open_py, open_db, open_statements = summary(opens)
    resolve_py, resolve_db, resolve_statements = summary(resolves)
    ratio = (resolve_py + resolve_db) / (open_py + open_db)
    print(f"{args.tickets} tickets opened and resolved through the API, in process, on PostgreSQL")
    print("| request | Python CPU ms (median) | PostgreSQL CPU ms (mean) | statements |")
    print("|---|---|---|---|")
    print(f"| open | {open_py:.2f} | {open_db:.2f} | {open_statements:.0f} |")
    print(f"| resolve | {resolve_py:.2f} | {resolve_db:.2f} | {resolve_statements:.0f} |")
    print(f"a resolve costs {ratio:.2f} × an open (target ≤ 2)")
    connection.close()
    return 0 if ratio <= 2 else 1


if __name__ == "__main__":
    sys.exit(main())
