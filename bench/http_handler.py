"""HTTP under the ASGI server: Django's own ASGI handler against the pooled one.

``config/asgi_http.py`` serves HTTP through Django's WSGI application on a
fixed pool of threads; Django's ASGI handler (``HTTP_HANDLER=django``) runs
each request on a thread made for it.  This starts the web server (uvicorn,
2 worker processes) on PostgreSQL and Redis once per handler, in turns, and
has a number of keep-alive clients read one ticket
(``GET /api/v1/tickets/{id}/``: authentication, the database, the JSON
answer) as fast as the server answers.  Django's handler runs with
``CONN_MAX_AGE`` 0, as Django advises under ASGI: with connections kept, each
request's new thread left one open and PostgreSQL soon refused more.

It prints, per handler and turn: requests per second, p50 and p99 latency,
the web processes' and PostgreSQL's CPU per request, and the database
connections opened while measuring (a server in service opens none).

Usage: ``make bench`` or ``python bench/http_handler.py --seconds 10``.
It uses its own database (``humanline_http_bench``) and Redis db 9, recreated
each run.
"""

import argparse
import asyncio
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.dispatch import (  # noqa: E402
    CpuMeter,
    HttpPool,
    SessionMeter,
    bench_env,
    django_on,
    percentile,
    run_loop,
    stop,
    web_server,
)

HANDLERS = ("django", "pooled")


def seed() -> tuple[str, int]:
    """A customer's API token and a ticket of theirs."""
    from rest_framework.authtoken.models import Token

    from agents.models import User
    from tickets.services import NewTicket, ticket_open

    customer = User.objects.create_user(email="bench-http@example.org", name="Customer")
    opened = ticket_open(
        caller=customer,
        new=NewTicket(subject="Charged twice", body="My card was charged twice."),
    )
    return Token.objects.create(user=customer).key, opened.ticket.pk


def start_web(env: dict, args, handler: str, log) -> subprocess.Popen:
    web_env = {"GIL_SWITCH_INTERVAL_MS": "1", "GC_FREEZE_AT_START": "1", **env}
    web_env["HTTP_HANDLER"] = handler
    if handler == "django":
        # Django's advice under ASGI: a connection kept by a thread made for one
        # request is never used again, and they pile up until PostgreSQL refuses.
        web_env["DB_CONN_MAX_AGE"] = "0"
    return subprocess.Popen(
        web_server(args),
        cwd=ROOT,
        env=web_env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,
    )


async def measure(args, token: str, ticket_id: int, cpu: CpuMeter, sessions: SessionMeter):
    client = HttpPool("127.0.0.1", args.port, size=args.connections)
    path = f"/api/v1/tickets/{ticket_id}/"
    deadline = time.monotonic() + 60
    while True:  # until the server answers
        try:
            status, _ = await client.get(path, token)
            if status == 200:
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the web server did not start")
        await asyncio.sleep(0.2)
    await client.open(args.connections)
    latencies: list[float] = []
    errors: dict[int, int] = {}

    async def reader(until: float, record: bool) -> None:
        while time.monotonic() < until:
            began = time.perf_counter()
            status, _ = await client.get(path, token)
            if status != 200:
                errors[status] = errors.get(status, 0) + 1
            elif record:
                latencies.append((time.perf_counter() - began) * 1000)

    # Warm-up: each thread opens its connection and fills its caches, as in service.
    warm = time.monotonic() + args.warmup
    await asyncio.gather(*(reader(warm, False) for _ in range(args.connections)))
    before, opened = cpu.read(), sessions.read()
    began = time.monotonic()
    until = began + args.seconds
    await asyncio.gather(*(reader(until, True) for _ in range(args.connections)))
    elapsed = time.monotonic() - began
    spent, opened = CpuMeter.between(before, cpu.read()), sessions.read() - opened
    client.close()
    count = len(latencies)
    return {
        "rate": count / elapsed,
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "web_ms": spent.get("web", 0.0) * 1000 / max(count, 1),
        "postgres_ms": spent.get("postgresql", 0.0) * 1000 / max(count, 1),
        "opened": opened,
        "errors": errors,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--connections", type=int, default=16, help="concurrent clients")
    parser.add_argument("--rounds", type=int, default=2, help="turns of each handler")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8031)
    args = parser.parse_args()
    args.server = "uvicorn"

    env = bench_env(args, database_name="humanline_http_bench", redis_db=9)
    django_on(env)
    from django.db import connections

    token, ticket_id = seed()
    connections.close_all()

    workdir = tempfile.mkdtemp(prefix="humanline-http-bench-")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rows = []
    with open(Path(workdir) / "web.log", "w") as log:
        for turn in range(args.rounds):
            for handler in HANDLERS:
                web = start_web(env, args, handler, log)
                sessions = SessionMeter(env["DATABASE_URL"])
                try:
                    result = run_loop(
                        measure(args, token, ticket_id, CpuMeter({"web": web.pid}), sessions)
                    )
                finally:
                    sessions.close()
                    stop([web])
                rows.append((turn + 1, handler, result))

    print(
        f"HTTP handlers: GET one ticket, {args.connections} keep-alive clients,"
        f" {args.seconds:.0f} s per turn, uvicorn x{args.web_workers}"
    )
    print(
        "| turn | handler | requests/s | p50 ms | p99 ms | web CPU ms/request"
        " | PostgreSQL CPU ms/request | database connections opened | errors |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for turn, handler, r in rows:
        print(
            f"| {turn} | {handler} | {r['rate']:.0f} | {r['p50']:.1f} | {r['p99']:.1f}"
            f" | {r['web_ms']:.2f} | {r['postgres_ms']:.2f} | {r['opened']} | {r['errors'] or 0} |"
        )
    return 0 if not any(r["errors"] for _, _, r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
