"""Queue depth benchmark: what a request costs as the line grows, on the production-like stack.

An incident sends tens of thousands of customers to support at once; that is
when a request must cost what it costs on a quiet day.  With 0, 10,000 and
100,000 tickets waiting (seeded with ``bulk_create``, no agent online), it
runs the stack of ``make serve`` (uvicorn with two processes, the workers,
beat) on PostgreSQL and Redis and prints, for each depth (the seeded tickets
have waited for hours, so they stand on the escalation ladder's last rung, as
a backlog does once the sweep has climbed it):

- ticket creation (``POST /api/v1/tickets/``, 16 connections for ``--seconds``):
  throughput, p99, and PostgreSQL's CPU per ticket;
- the first page of a customer's list (a customer holding the whole queue)
  and of staff's list, a page 20 pages deep, a ticket's detail: p99 each;
- the statements each of those requests runs (counted in this process
  through Django's test client against the same database).

Targets: at 100,000 waiting, creation within 80 % of its empty-queue
throughput, list and detail p99 under 30 ms, and the statements per request
the same at every depth.

Usage: ``make bench`` or ``python bench/queue_depth.py --depths 0,10000,100000``.
It uses the benchmark database (``humanline_bench``) and Redis db 7, recreated.
"""

import argparse
import asyncio
import json
import signal
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dispatch import (  # the benchmarks' shared stack
    STACK_PARTS,
    CpuMeter,
    HttpPool,
    MachineMeter,
    bench_env,
    django_on,
    percentile,
    run_loop,
    start_stack,
    stop,
)

CREATORS = 500  # customers opening tickets during the creation phase
BATCH = 5000


def seed_people() -> dict:
    """Staff, the customer whose tickets make the queue, and the customers who open more."""
    from rest_framework.authtoken.models import Token

    from agents.models import Role, User

    staff = User.objects.create_user(
        email="bench-ops@example.org", name="Ops", role=Role.STAFF, is_staff=True
    )
    crowd = User.objects.create_user(email="bench-crowd@example.org", name="Crowd")
    creators = User.objects.bulk_create(
        [
            User(email=f"bench-opener-{i}@example.org", name=f"Opener {i}", password="!")
            for i in range(CREATORS)
        ]
    )
    tokens = Token.objects.bulk_create([Token(user=u, key=Token.generate_key()) for u in creators])
    return {
        "staff": Token.objects.create(user=staff).key,
        "crowd": Token.objects.create(user=crowd).key,
        "crowd_user": crowd,
        "creators": [t.key for t in tokens],
    }


def seed_waiting(customer, count: int) -> float:
    """``count`` more waiting tickets for ``customer``, oldest first; seconds it took."""
    from django.db import connection
    from django.utils import timezone

    from tickets.models import Rung, Ticket, TicketStatus

    started = time.perf_counter()
    now = timezone.now()
    for first in range(0, count, BATCH):
        Ticket.objects.bulk_create(
            [
                Ticket(
                    customer=customer,
                    subject=f"Queued {n}",
                    body="My card was charged twice.",
                    language="en",
                    category="general",
                    status=TicketStatus.QUEUED,
                    # As a backlog that has waited hours stands: every rung of the
                    # escalation ladder climbed (the sweep's work done long ago).
                    escalation=Rung.WIDER_POOL,
                    queued_at=now - timedelta(seconds=count - n),
                    created_at=now - timedelta(seconds=count - n),
                    status_changed_at=now - timedelta(seconds=count - n),
                )
                for n in range(first, min(first + BATCH, count))
            ]
        )
    with connection.cursor() as cursor:
        # As autovacuum keeps a live database, whose line grew over minutes: a
        # table just loaded in bulk would otherwise be vacuumed during the measure.
        cursor.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


def statements(people: dict) -> dict[str, int]:
    """Statements per request, counted through Django's test client on this database."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    def count(token: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        """The statements of the second of two like requests: the first pays what a
        process pays once (preparing statements, reading a lane's order)."""
        client = APIClient(HTTP_HOST="127.0.0.1")  # one of the stack's ALLOWED_HOSTS
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        getattr(client, method)(path, body, format="json")
        with CaptureQueriesContext(connection) as queries:
            response = getattr(client, method)(path, body, format="json")
        assert response.status_code in (200, 201), response.content
        return len(queries), response.json()

    opener = people["creators"][0]
    created, ticket = count(opener, "post", "/api/v1/tickets/", {**TICKET, "subject": "Counted"})
    detail, _ = count(opener, "get", f"/api/v1/tickets/{ticket['id']}/")  # at the back of the line
    listed, page = count(people["crowd"], "get", "/api/v1/tickets/")
    deep = deep_path(page, lambda path: count(people["crowd"], "get", path)[1])
    deep_count, _ = count(people["crowd"], "get", deep)
    staff, _ = count(people["staff"], "get", "/api/v1/tickets/")
    return {"create": created, "list": listed, "deep": deep_count, "detail": detail, "staff": staff}


TICKET = {"subject": "Charged twice", "body": "Where is my refund?", "category": "general"}


def deep_path(page: dict, fetch, pages: int = 20) -> str:
    """The path of the page ``pages`` pages after ``page``, following ``next``."""
    path = None
    for _ in range(pages):
        if not page.get("next"):
            break
        url = page["next"]
        path = url[url.index("/api/") :]
        page = fetch(path)
    return path or "/api/v1/tickets/"


async def creation(args, pool: HttpPool, people: dict) -> tuple[int, list[float], float, int]:
    """Tickets opened on 16 connections for ``args.seconds``: count, latencies, seconds, errors."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + args.seconds
    number = 0

    async def opener(lane: int) -> None:
        nonlocal errors, number
        while time.perf_counter() < deadline:
            number += 1
            token = people["creators"][(number * 16 + lane) % CREATORS]
            started = time.perf_counter()
            try:
                status, _ = await pool.post("/api/v1/tickets/", TICKET, token)
            except OSError:
                errors += 1
                continue
            if status == 201:
                latencies.append((time.perf_counter() - started) * 1000)
            else:
                errors += 1

    began = time.perf_counter()
    await asyncio.gather(*(opener(lane) for lane in range(args.connections)))
    return len(latencies), latencies, time.perf_counter() - began, errors


async def timed_gets(pool: HttpPool, path: str, token: str, count: int) -> list[float]:
    """``count`` GETs one after another (a person's pages, not a flood): milliseconds each."""
    spent = []
    for _ in range(count):
        started = time.perf_counter()
        status, _ = await pool.get(path, token)
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}")
        spent.append((time.perf_counter() - started) * 1000)
    return spent


async def measure(args, people: dict, cpu: CpuMeter) -> dict:
    pool = HttpPool("127.0.0.1", args.port, args.connections)
    await pool.open(args.connections)
    try:
        before = cpu.read()
        opened, latencies, seconds, errors = await creation(args, pool, people)
        spent = CpuMeter.between(before, cpu.read())
        _, first = await pool.get("/api/v1/tickets/", people["crowd"])
        first_page = json.loads(first)

        async def fetch(path):
            return json.loads((await pool.get(path, people["crowd"]))[1])

        page = first_page
        deep = "/api/v1/tickets/"
        for _ in range(20):
            if not page.get("next"):
                break
            deep = page["next"][page["next"].index("/api/") :]
            page = await fetch(deep)
        # The newest ticket of the queue's customer: at the back of the line.
        back = first_page["results"][0]["id"] if first_page["results"] else None
        result = {
            "cpu_per_create": {
                part: 1000 * used / max(opened, 1) for part, used in sorted(spent.items())
            },
            "created_per_s": opened / seconds,
            "create_p99": percentile(latencies, 99),
            "create_errors": errors,
            "pg_ms_per_create": 1000 * spent.get("postgresql", 0.0) / max(opened, 1),
            "list_p99": percentile(
                await timed_gets(pool, "/api/v1/tickets/", people["crowd"], args.gets), 99
            ),
            "staff_p99": percentile(
                await timed_gets(pool, "/api/v1/tickets/", people["staff"], args.gets), 99
            ),
            "deep_p99": percentile(await timed_gets(pool, deep, people["crowd"], args.gets), 99),
        }
        if back is not None:
            result["detail_p99"] = percentile(
                await timed_gets(pool, f"/api/v1/tickets/{back}/", people["crowd"], args.gets), 99
            )
        return result
    finally:
        pool.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--depths", default="0,10000,100000", help="tickets waiting, in turn")
    parser.add_argument("--seconds", type=int, default=20, help="of ticket creation per depth")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--gets", type=int, default=200, help="timed GETs per kind and depth")
    parser.add_argument("--port", type=int, default=8792)
    parser.add_argument("--server", default="uvicorn")
    parser.add_argument("--web-workers", type=int, default=2)
    args = parser.parse_args()
    depths = sorted(int(d) for d in args.depths.split(","))

    env = bench_env(args)
    speed_ms = MachineMeter.speed_ms()
    print(f"queue depth bench: {', '.join(f'{d:,}' for d in depths)} waiting", flush=True)
    django_on(env)
    from django.db import connections

    from tickets.models import Ticket, TicketStatus

    people = seed_people()
    workdir = tempfile.mkdtemp(prefix="humanline-bench-")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rows = []
    processes: list = []
    try:
        for depth in depths:
            waiting = Ticket.objects.filter(status=TicketStatus.QUEUED).count()
            seeded = seed_waiting(people["crowd_user"], max(depth - waiting, 0))
            counted = statements(people)
            connections.close_all()
            stop(processes)
            processes = start_stack(env, args, workdir)  # fresh processes: no warm caches
            wait_for_server(args.port, workdir)
            cpu = CpuMeter({p: proc.pid for p, proc in zip(STACK_PARTS, processes, strict=True)})
            machine = MachineMeter.read()
            result = run_loop(measure(args, people, cpu))
            load = MachineMeter.between(machine, MachineMeter.read())
            rows.append((depth, seeded, counted, result, load))
    finally:
        stop(processes)

    print(f"\nthis machine: sum(range(10**6)) in {speed_ms:.1f} ms")
    print(
        "| waiting | seeded in | create/s | create p99 | PG ms/create | list p99 | staff list p99"
        " | page 20 p99 | detail p99 | statements create/list/page 20/detail/staff | machine |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for depth, seeded, counted, r, machine in rows:
        print(
            f"| {depth:,} | {seeded:.1f} s | {r['created_per_s']:.0f} | {r['create_p99']:.1f} ms"
            f" | {r['pg_ms_per_create']:.2f} | {r['list_p99']:.1f} ms | {r['staff_p99']:.1f} ms"
            f" | {r['deep_p99']:.1f} ms | {r.get('detail_p99', float('nan')):.1f} ms"
            f" | {counted['create']}/{counted['list']}/{counted['deep']}/{counted['detail']}"
            f"/{counted['staff']} | {machine} |"
        )
    print("\nCPU ms per ticket created, by part of the stack:")
    for depth, _, _, r, _ in rows:
        parts = ", ".join(f"{part} {ms:.2f}" for part, ms in r["cpu_per_create"].items())
        print(f"  {depth:,} waiting: {parts}")
    empty, deepest = rows[0][3], rows[-1][3]
    kept = deepest["created_per_s"] / max(empty["created_per_s"], 1e-9)
    # An empty queue's lists are empty pages: compare the depths with tickets.
    filled = [c for depth, _, c, _, _ in rows if depth > 0] or [c for _, _, c, _, _ in rows]
    flat = len({tuple(sorted(c.items())) for c in filled}) == 1
    slowest = max(
        max(r["list_p99"], r["staff_p99"], r["deep_p99"], r.get("detail_p99", 0.0))
        for _, _, _, r, _ in rows
    )
    print(
        f"\ncreation at {rows[-1][0]:,} waiting keeps {kept:.0%} of the empty queue's"
        f" (target ≥ 80 %); slowest list/detail p99 {slowest:.1f} ms (target < 30 ms);"
        f" statements per request {'the same at every depth' if flat else 'GROW with the queue'}"
    )
    errors = sum(r["create_errors"] for _, _, _, r, _ in rows)
    if errors:
        print(f"{errors} creation requests failed", file=sys.stderr)
    return 0


def wait_for_server(port: int, workdir: str) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the ASGI server did not start; see {workdir}")
        time.sleep(0.2)  # polling the server until it answers
    time.sleep(2)  # the workers and beat connect to the broker


if __name__ == "__main__":
    sys.exit(main())
