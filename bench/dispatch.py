"""Dispatch benchmark on the production-like stack, all on loopback.

Starts the ASGI server (uvicorn, 2 worker processes), a dispatch worker, a
Celery worker and Celery beat against PostgreSQL and Redis, connects N agents
over real WebSockets, opens tickets through the HTTP API at a set rate (after
a few seconds of warm-up at that rate, not measured), has the agents accept
each offer over their socket, and prints:

- offers per second sustained, and p50/p95/p99 of the time from the ticket's
  creation request being sent to the ``offer.created`` frame arriving;
- assignments per second at saturation: every agent steps away, a backlog is
  opened, everyone comes back and the backlog drains;
- where an agent's cycle goes at saturation, the CPU each part used, and how
  many database connections each phase opened (a stack in service opens none).

By default the agents accept and do not resolve within a phase, so a phase
opens at most 20 tickets per agent.  With ``--hold S`` each agent resolves
each ticket of the steady phase through the API S seconds after accepting
it, as agents on a floor do: the steady phase can then run as long as wanted
(tables and the queue ETA's window fill as in service), and each ticket
costs a resolve request more.

Usage: ``make bench`` or ``python bench/dispatch.py --agents 200 --rate 100 --seconds 10``.
It uses its own database (``humanline_bench``) and Redis db 7, recreated each run.
"""

import argparse
import asyncio
import collections
import contextlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def bench_env(args, database_name: str = "humanline_bench", redis_db: int = 7) -> dict:
    """The stack's environment: its own database and Redis db on the servers of
    DATABASE_URL and REDIS_URL, and production settings."""
    database = urlparse(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/x"))
    redis = urlparse(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/1"))
    return {
        **os.environ,
        "DATABASE_URL": urlunparse(database._replace(path=f"/{database_name}")),
        "REDIS_URL": urlunparse(redis._replace(path=f"/{redis_db}")),
        "SECRET_KEY": "bench-secret-key-not-for-production-0123456789-abcdefghijklmnop",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE": "0",
        "LOG_LEVEL": "WARNING",
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "HUMANLINE_TESTING": "0",
        "OFFER_WINDOW_SECONDS": "30",
        # The scenarios open every ticket as one customer; the rate bench
        # spreads its tickets over CUSTOMERS and holds to three each anyway.
        "OPEN_TICKETS_PER_CUSTOMER": "1000000",
    }


def recreate_database(env: dict) -> None:
    """Drop, create and migrate the database of ``env["DATABASE_URL"]``; flush its Redis db."""
    import psycopg2
    import redis

    url = urlparse(env["DATABASE_URL"])
    name = url.path.lstrip("/")
    server = psycopg2.connect(
        host=url.hostname,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        dbname="postgres",
    )
    server.autocommit = True
    with server.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    server.close()
    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        check=True,
    )


# Customers opening the tickets: a saturation backlog of 3,000 at three open
# tickets each needs 1,000; the phases resolve their tickets in between.
CUSTOMERS = 2000

# Each agent's capacity: the most the product allows.  The agents accept and do
# not resolve within a phase, so a phase can hand out agents × CAPACITY at most.
CAPACITY = 20


def django_on(env: dict) -> None:
    """Recreate the environment's database, then set Django up on it in this process."""
    recreate_database(env)
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def seed(agents: int):
    """Agents online (``CAPACITY`` each) with a past (``history``), and the customers.

    Returns each agent's (one-time socket ticket, API token) and the customers' tokens.
    """
    from django.db import transaction
    from rest_framework.authtoken.models import Token

    from agents import presence
    from agents.models import Agent, AgentLanguage, AgentStatus, Role, Skill, User
    from agents.services import realtime_ticket_issue

    general = Skill.objects.get(slug="general")
    with transaction.atomic():
        users = User.objects.bulk_create(
            [
                User(
                    email=f"bench-agent-{i}@example.org",
                    name=f"Agent {i}",
                    role=Role.AGENT,
                    password="!",
                )
                for i in range(agents)
            ]
        )
        created = Agent.objects.bulk_create(
            [
                Agent(
                    user=user,
                    status=AgentStatus.APPROVED,
                    cohort="student",
                    country="PT",
                    time_zone="Europe/Lisbon",
                    capacity=CAPACITY,
                )
                for user in users
            ]
        )
        AgentLanguage.objects.bulk_create([AgentLanguage(agent=a, code="en") for a in created])
        Agent.skills.through.objects.bulk_create(
            [Agent.skills.through(agent_id=a.pk, skill_id=general.pk) for a in created]
        )
        # Customers as in service: each holds a few open tickets at most
        # (OPEN_TICKETS_PER_CUSTOMER), so the run's tickets are spread over many.
        customers = User.objects.bulk_create(
            [
                User(email=f"bench-customer-{i}@example.org", name=f"Customer {i}", password="!")
                for i in range(CUSTOMERS)
            ]
        )
        tokens = [Token(user=c, key=Token.generate_key()) for c in customers]
        Token.objects.bulk_create(tokens)
    history(created, customers)
    for agent in created:
        presence.agent_presence_set(agent_id=agent.pk, status="online")
    credentials = [
        (realtime_ticket_issue(user=agent.user)[0], Token.objects.create(user=agent.user).key)
        for agent in created
    ]
    return credentials, [t.key for t in tokens]


# Yesterday's work on the floor: tickets resolved, spread over the agents,
# each offered and accepted, every fourth passed on by another agent first.
HISTORY_TICKETS = 4000


def history(agents, customers) -> None:
    """A past for the floor: resolved tickets with their offers, as a floor in
    service has.  Planner statistics taken of empty tables would plan the
    rules' offer lookups as scans of nothing, and a prepared statement keeps
    that plan while the table fills; a live database has a past, and
    autovacuum's statistics of it."""
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from marketplace.models import Offer, OfferStatus
    from tickets.models import Ticket, TicketStatus

    day = timezone.now() - timedelta(days=1)
    tickets, plans = [], []
    for n in range(HISTORY_TICKETS):
        at = day + timedelta(seconds=n)
        agent = agents[n % len(agents)]
        tickets.append(
            Ticket(
                customer=customers[n % len(customers)],
                subject="Earlier question",
                body="Asked yesterday.",
                language="en",
                category="general",
                status=TicketStatus.RESOLVED,
                assigned_agent=agent,
                queued_at=at,
                assigned_at=at + timedelta(seconds=20),
                resolved_at=at + timedelta(minutes=8),
                created_at=at,
                status_changed_at=at + timedelta(minutes=8),
            )
        )
        passed_by = agents[(n + 1) % len(agents)] if n % 4 == 0 else None
        plans.append((at, agent, passed_by))
    Ticket.objects.bulk_create(tickets, batch_size=2000)

    def offer(ticket, agent, status, at):
        return Offer(
            ticket=ticket,
            agent=agent,
            status=status,
            base_amount=Decimal("2.00"),
            surge_multiplier=Decimal("1.00"),
            amount=Decimal("2.00"),
            currency="EUR",
            created_at=at,
            expires_at=at + timedelta(seconds=30),
            seen_at=at,
            answered_at=at + timedelta(seconds=5),
        )

    offers = []
    for ticket, (at, agent, passed_by) in zip(tickets, plans, strict=True):
        if passed_by is not None:
            offers.append(offer(ticket, passed_by, OfferStatus.DECLINED, at))
        offers.append(offer(ticket, agent, OfferStatus.ACCEPTED, at + timedelta(seconds=10)))
    Offer.objects.bulk_create(offers, batch_size=2000)


def web_server(args) -> list[str]:
    """The ASGI server: uvicorn with N worker processes (the default), or daphne."""
    bin_dir = Path(sys.executable).parent
    if args.server == "daphne":
        return [
            str(bin_dir / "daphne"),
            "-b",
            "127.0.0.1",
            "-p",
            str(args.port),
            "config.asgi:application",
        ]
    return [
        str(bin_dir / "uvicorn"),
        "config.asgi:application",
        "--host=127.0.0.1",
        f"--port={args.port}",
        f"--workers={args.web_workers}",
        "--loop=uvloop",
        "--http=httptools",
        "--ws=websockets-sansio",
        "--ws-per-message-deflate=false",
        "--no-access-log",
        "--timeout-graceful-shutdown=5",
        "--timeout-keep-alive=75",  # the load generator keeps its connections between phases
        "--log-level=warning",
    ]


# The stack's processes, in the order ``start_stack`` returns them (the Procfile's).
STACK_PARTS = ["ASGI server", "dispatch worker", "other worker", "webhooks worker", "beat"]


def start_stack(env: dict, args, workdir: str) -> list[subprocess.Popen]:
    """The ASGI server, a dispatch worker, a worker for everything else, the webhook
    deliveries' worker, and beat (``STACK_PARTS``)."""
    log = open(Path(workdir) / "stack.log", "w")  # noqa: SIM115
    level = os.environ.get("BENCH_WORKER_LOGLEVEL", "WARNING")
    celery = [sys.executable, "-m", "celery", "-A", "config"]
    worker_env = {**env, "DB_CONN_MAX_AGE": "600"}  # workers keep their connections

    def spawn(command: list[str], process_env: dict) -> subprocess.Popen:
        # Each in its own process group, so that stopping it stops its children
        # too (uvicorn's worker processes).
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=process_env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )

    def worker(queue: str, concurrency: int) -> subprocess.Popen:
        return spawn(
            [
                *celery,
                "worker",
                "--pool=threads",
                f"--concurrency={concurrency}",
                "-Q",
                queue,
                "-n",
                f"{queue}@%h",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                f"--loglevel={level}",
            ],
            worker_env,
        )

    # The web processes' interpreter settings, as the Procfile sets them
    # (config/settings.py says why); the environment may override them.
    web_env = {"GIL_SWITCH_INTERVAL_MS": "1", "GC_FREEZE_AT_START": "1", **env}
    return [
        spawn(web_server(args), web_env),
        worker("dispatch", 2),
        worker("celery", 4),
        worker("webhooks", 8),
        spawn([*celery, "beat", "--loglevel=WARNING", f"--schedule={workdir}/beat-schedule"], env),
    ]


class Run:
    def __init__(self):
        self.sent: dict[int, float] = {}  # ticket id -> creation request sent
        self.created: dict[int, float] = {}  # ticket id -> 201 received
        self.offered: dict[int, float] = {}  # ticket id -> offer frame received
        self.accepted: dict[int, float] = {}  # offer id -> acceptance confirmed
        self.answer_ms: list[float] = []  # offer frame -> acceptance confirmed
        # (acceptance confirmed, ms until the same agent's next offer frame)
        self.gaps: list[tuple[float, float]] = []
        self.delivery_ms: list[float] = []  # offer row written (its created_at) -> offer frame
        self.connected = 0
        self.resolving = False  # agents resolve what they accepted (--hold), steady phase only
        self.resolved = 0
        self.errors = 0
        self.error_kinds: dict[str, int] = {}
        self.done = asyncio.Event()

    def error(self, kind: str) -> None:
        self.errors += 1
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1


class MachineMeter:
    """The whole machine's time from /proc/stat (Linux): how busy its cores were,
    and how much of it the hypervisor took for other guests (``steal``).

    The same code's figures move with the machine: runs minutes apart differed
    by a third in CPU per ticket.  Printed with each phase so a figure can be
    read against the machine it was taken on.
    """

    @staticmethod
    def read() -> list[int]:
        try:
            with open("/proc/stat") as stat:
                return [int(n) for n in stat.readline().split()[1:]]
        except (OSError, ValueError):
            return []

    @staticmethod
    def between(before: list[int], after: list[int]) -> str:
        if not before or not after:
            return "machine load unknown"
        spent = [b - a for a, b in zip(before, after, strict=True)]
        total = max(sum(spent), 1)
        idle = spent[3] + (spent[4] if len(spent) > 4 else 0)  # idle, iowait
        steal = spent[7] if len(spent) > 7 else 0
        busy = 100 * (total - idle - steal) / total
        return f"cores {busy:.0f}% busy, {100 * steal / total:.1f}% stolen"

    @staticmethod
    def speed_ms() -> float:
        """``python3 -m timeit -n 20 "sum(range(10**6))"``: best of 5, ms per loop."""
        import timeit

        return min(timeit.repeat("sum(range(10**6))", number=20, repeat=5)) / 20 * 1000


class CpuMeter:
    """CPU seconds used by each part of the stack, read from /proc (Linux).

    Parts: the ASGI server, the dispatch worker, the other worker, the webhooks worker, beat (each a
    process group the benchmark started), PostgreSQL's and Redis's processes,
    and this load generator.
    """

    TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def __init__(self, groups: dict[str, int]):
        self.groups = {pgid: name for name, pgid in groups.items()}

    def read(self) -> dict[int, tuple[str, float]]:
        """Each process of the stack: its part and the CPU seconds it has used so far."""
        used: dict[int, tuple[str, float]] = {}
        me = os.getpid()
        for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            name, fields = (
                stat[stat.index("(") + 1 : stat.rindex(")")],
                stat.rsplit(")", 1)[1].split(),
            )
            pgid, seconds = int(fields[2]), (int(fields[11]) + int(fields[12])) / self.TICK
            if int(entry.name) == me:
                part = "load generator"
            elif pgid in self.groups:
                part = self.groups[pgid]
            elif name.startswith("postgres"):
                part = "postgresql"
            elif name.startswith("redis-server"):
                part = "redis"
            else:
                continue
            used[int(entry.name)] = (part, seconds)
        return used

    @staticmethod
    def ended(
        before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], part: str
    ) -> int:
        """How many of a part's processes ended between two reads."""
        return sum(1 for pid, (name, _) in before.items() if name == part and pid not in after)

    @staticmethod
    def between(
        before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]
    ) -> dict[str, float]:
        """CPU seconds per part between two reads.  A process that ended in between
        is lost (PostgreSQL's backends come and go): an undercount, never negative."""
        spent: dict[str, float] = {}
        for pid, (part, seconds) in after.items():
            start = before[pid][1] if pid in before else 0.0
            spent[part] = spent.get(part, 0.0) + seconds - start
        return spent


class SessionMeter:
    """Connections PostgreSQL accepted to the benchmark's database so far.

    Each one is a backend process started, a handshake, and its prepared
    statements parsed and planned again: a stack in service opens none, its
    processes keep theirs (``CONN_MAX_AGE``, one per thread).  Read from ``pg_stat_database``,
    which a backend updates at the end of its first transaction.
    """

    def __init__(self, url: str):
        import psycopg2

        parts = urlparse(url)
        self.connection = psycopg2.connect(
            host=parts.hostname,
            port=parts.port or 5432,
            user=parts.username,
            password=parts.password,
            dbname=parts.path.lstrip("/"),
        )
        self.connection.autocommit = True  # each read sees the statistics as they are now

    def read(self) -> int:
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
            )
            return cursor.fetchone()[0]

    def close(self) -> None:
        self.connection.close()


CONNECT_AT_ONCE = 10  # agents log in a few at a time, as people do
CONNECTING = asyncio.Semaphore(CONNECT_AT_ONCE)


async def agent_loop(
    url: str,
    origin: str,
    run: Run,
    ready: asyncio.Event,
    total: int,
    resolve=None,
    *,
    ping_seconds: float = 20,
    protocol_pings: bool = True,
):
    """One agent: accept every offer at once over the socket; ping as the console does.

    ``resolve(ticket_id)``, when given, is scheduled for each ticket accepted
    while ``run.resolving`` (``--hold``).  The console sends a ``ping`` every
    ``ping_seconds``; ``protocol_pings`` keeps the client library's own ping
    frames (every 20 s) as well, which a browser does not send (it answers
    the server's).
    """
    import websockets

    async with CONNECTING:
        ws = await websockets.connect(
            url,
            additional_headers={"Origin": origin},
            max_queue=None,
            **({} if protocol_pings else {"ping_interval": None}),
        )

    async def keep_alive():
        # Every ping_seconds from the agent's own start: real agents sign in at
        # different times, so their pings are spread out, not sent by everyone at once.
        await asyncio.sleep(random.uniform(0, ping_seconds))
        while True:
            await ws.send(json.dumps({"type": "ping"}))
            await asyncio.sleep(ping_seconds)

    pinger = asyncio.create_task(keep_alive())
    run.connected += 1
    if run.connected == total:
        ready.set()
    offered_at: dict[int, float] = {}
    ticket_of: dict[int, int] = {}  # offer id -> ticket id
    last_accepted = None
    try:
        async for raw in ws:
            now = time.perf_counter()
            message = json.loads(raw)
            kind = message.get("type")
            if kind == "offer.created":
                run.offered.setdefault(message["offer"]["ticket"]["id"], now)
                ticket_of[message["offer"]["id"]] = message["offer"]["ticket"]["id"]
                offered_at[message["offer"]["id"]] = now
                made = datetime.fromisoformat(message["offer"]["created_at"]).timestamp()
                run.delivery_ms.append((time.time() - made) * 1000)
                if last_accepted is not None:
                    run.gaps.append((last_accepted, (now - last_accepted) * 1000))
                    last_accepted = None
                await ws.send(
                    json.dumps({"type": "offer.accept", "offer_id": message["offer"]["id"]})
                )
            elif kind == "offer.answered" and message.get("status") == "accepted":
                run.accepted[message["offer_id"]] = now
                if message["offer_id"] in offered_at:
                    run.answer_ms.append((now - offered_at.pop(message["offer_id"])) * 1000)
                last_accepted = now
                ticket_id = ticket_of.pop(message["offer_id"], None)
                if resolve is not None and run.resolving and ticket_id is not None:
                    resolve(ticket_id)
            elif kind == "error":
                run.error(f"socket:{message['error']['code']}")
    except websockets.ConnectionClosed as closed:
        if not run.done.is_set():
            run.error(f"socket closed {closed.rcvd.code if closed.rcvd else '?'}")
    finally:
        pinger.cancel()


class HttpPool:
    """A small HTTP/1.1 client for the load generator: keep-alive connections, JSON bodies.

    httpx cost the load generator about 8 ms of CPU per ticket, on the same two
    cores as the stack it measures; writing the request and reading the
    response by hand costs a fraction of that.  It knows only what this
    benchmarks need: a GET, or a POST with a JSON body, and a response with
    Content-Length.

    Idle connections are reused oldest first, in turn, as requests from many
    customers arrive on many connections: reusing the last one sent nearly
    every request to the one server process that had accepted it.
    """

    def __init__(self, host: str, port: int, size: int, reuse: str = "oldest"):
        self.host, self.port = host, port
        self.newest_first = reuse == "newest"
        self.idle: collections.deque[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            collections.deque()
        )
        self.slots = asyncio.Semaphore(size)

    async def open(self, count: int) -> None:
        """Open ``count`` connections ahead of the load."""
        for _ in range(count):
            self.idle.append(await asyncio.open_connection(self.host, self.port))

    async def post(self, path: str, body: dict, token: str) -> tuple[int, bytes]:
        return await self.request("POST", path, token, body)

    async def get(self, path: str, token: str) -> tuple[int, bytes]:
        return await self.request("GET", path, token)

    async def request(
        self, method: str, path: str, token: str, body: dict | None = None
    ) -> tuple[int, bytes]:
        payload = b"" if body is None else json.dumps(body).encode()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Token {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        ).encode()
        async with self.slots, asyncio.timeout(30):  # TimeoutError is an OSError
            while True:
                reused = bool(self.idle)
                if reused:
                    reader, writer = self.idle.pop() if self.newest_first else self.idle.popleft()
                else:
                    reader, writer = await asyncio.open_connection(self.host, self.port)
                try:
                    writer.write(head + payload)
                    status_line, _, headers = (await reader.readuntil(b"\r\n\r\n")).partition(
                        b"\r\n"
                    )
                    length = 0
                    for line in headers.split(b"\r\n"):
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"content-length":
                            length = int(value)
                    content = await reader.readexactly(length) if length else b""
                except asyncio.IncompleteReadError as exc:
                    writer.close()
                    if reused and not exc.partial:
                        continue  # the server had closed this idle connection: a new one
                    raise
                except BaseException:
                    writer.close()
                    raise
                self.idle.append((reader, writer))
                return int(status_line.split()[1]), content

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


async def open_ticket(client: HttpPool, customers: list[str], run: Run, number: int) -> None:
    token = customers[number % len(customers)]  # ticket n by customer n mod CUSTOMERS
    started = time.perf_counter()
    try:
        status, content = await client.post(
            "/api/v1/tickets/",
            {
                "subject": f"Bench ticket {number}",
                "body": "Where is my refund?",
                "category": "general",
            },
            token,
        )
    except (OSError, asyncio.IncompleteReadError) as exc:
        run.error(f"http:{type(exc).__name__}")
        return
    if status != 201:
        run.error(f"http:{status}")
        return
    ticket_id = json.loads(content)["id"]
    run.sent[ticket_id] = started
    run.created[ticket_id] = time.perf_counter()


async def set_presence(client: HttpPool, token: str, status: str, run: Run) -> None:
    code, _ = await client.post("/api/v1/agents/me/presence/", {"status": status}, token)
    if code != 200:
        run.error(f"presence:{code}")


async def paced(
    client: HttpPool, customers: list[str], run: Run, rate: float, first: int, count: int
) -> set[int]:
    """Open ``count`` tickets, numbered from ``first``, at ``rate`` a second; their ids."""
    before, begin, pending = set(run.sent), time.perf_counter(), []
    for n in range(count):
        delay = begin + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        pending.append(
            asyncio.create_task(open_ticket(client, customers=customers, run=run, number=first + n))
        )
    await asyncio.gather(*pending)
    return set(run.sent) - before


async def wait_until(condition, timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline and not condition():
        await asyncio.sleep(0.02)


def dump_timings(path: str, run: "Run", ids: set[int], start: float) -> None:
    """Each steady ticket, in the order sent: id, ms from the phase's start, ms to
    its offer frame, ms to its 201.  Shows whether slow tickets come together."""
    started_at = time.time() - (time.perf_counter() - start)
    with open(path, "w") as out:
        out.write(f"# phase start {datetime.fromtimestamp(started_at, UTC).isoformat()}\n")
        out.write("ticket sent_ms offer_ms response_ms\n")
        for ticket_id in sorted(ids, key=run.sent.__getitem__):
            if ticket_id in run.offered:
                sent = run.sent[ticket_id]
                out.write(
                    f"{ticket_id} {(sent - start) * 1000:.1f}"
                    f" {(run.offered[ticket_id] - sent) * 1000:.1f}"
                    f" {(run.created[ticket_id] - sent) * 1000:.1f}\n"
                )


async def load(
    args, agents: list[tuple[str, str]], customer: str, cpu: CpuMeter, sessions: SessionMeter
) -> dict:
    base = f"http://127.0.0.1:{args.port}"
    run, ready = Run(), asyncio.Event()
    ws_base = f"ws://127.0.0.1:{args.port}/ws/agent/?ticket="
    desk = HttpPool("127.0.0.1", args.port, size=16, reuse=args.reuse) if args.hold else None
    loop = asyncio.get_running_loop()
    resolves: set[asyncio.Task] = set()

    def resolver(token: str):
        """Each accepted ticket resolved ``--hold`` seconds later, by its agent, over HTTP."""

        async def resolve(ticket_id: int) -> None:
            try:
                status, _ = await desk.post(f"/api/v1/tickets/{ticket_id}/resolve/", {}, token)
            except (OSError, asyncio.IncompleteReadError) as exc:
                run.error(f"resolve:{type(exc).__name__}")
                return
            if status == 200:
                run.resolved += 1
            else:
                run.error(f"resolve:{status}")

        def later(ticket_id: int) -> None:
            def start():
                if not run.resolving:
                    return  # the steady phase is over: clear_desks resolves the rest
                task = asyncio.create_task(resolve(ticket_id))
                resolves.add(task)
                task.add_done_callback(resolves.discard)

            loop.call_later(args.hold, start)

        return later if args.hold else None

    sockets = [
        asyncio.create_task(
            agent_loop(ws_base + realtime, base, run, ready, len(agents), resolver(token))
        )
        for realtime, token in agents
    ]
    await asyncio.wait_for(ready.wait(), timeout=60)
    client = HttpPool("127.0.0.1", args.port, size=64, reuse=args.reuse)
    await client.open(args.connections)
    try:
        # Warm-up at the same rate, not measured: each process opens its
        # connections and fills its caches, as a server in service has done.
        warm_ids = await paced(client, customer, run, args.rate, 0, args.rate * args.warmup)
        await wait_until(lambda: warm_ids <= run.offered.keys(), timeout=30)
        await wait_until(lambda: len(run.accepted) >= len(warm_ids), timeout=30)

        # Phase 1: a steady rate, every ticket into a pool of free agents.
        count = args.rate * (args.warmup + args.seconds)
        run.resolving = bool(args.hold)
        start, cpu_start, sessions_start = time.perf_counter(), cpu.read(), sessions.read()
        machine_start = MachineMeter.read()
        first_read = cpu_start
        steady_ids = await paced(
            client, customer, run, args.rate, args.rate * args.warmup, args.rate * args.seconds
        )
        await wait_until(lambda: steady_ids <= run.offered.keys(), timeout=30)
        steady_end = max((run.offered[t] for t in steady_ids if t in run.offered), default=start)
        latencies = [(run.offered[t] - run.sent[t]) * 1000 for t in steady_ids if t in run.offered]
        responses = [(run.created[t] - run.sent[t]) * 1000 for t in steady_ids]
        steady_cpu = CpuMeter.between(cpu_start, cpu.read())
        steady_machine = MachineMeter.between(machine_start, MachineMeter.read())
        steady_sessions = sessions.read() - sessions_start
        if args.dump:
            dump_timings(args.dump, run, steady_ids, start)
        steady = {
            "cpu": steady_cpu,
            "machine": steady_machine,
            "sessions": steady_sessions,
            "tickets": len(steady_ids),
            "offers": len(latencies),
            "offers_per_second": len(latencies) / max(steady_end - start, 1e-9),
            "p50_ms": percentile(latencies, 50),
            "p95_ms": percentile(latencies, 95),
            "p99_ms": percentile(latencies, 99),
            "max_ms": max(latencies, default=float("nan")),
            "mean_ms": statistics.fmean(latencies) if latencies else float("nan"),
            "http_p50_ms": percentile(responses, 50),
            "http_p99_ms": percentile(responses, 99),
        }
        await wait_until(lambda: len(run.accepted) >= len(warm_ids) + len(latencies), timeout=30)
        steady["resolved"] = run.resolved
        run.resolving = False  # what is still held is cleared below, not measured
        await wait_until(lambda: not resolves, timeout=30)  # those under way finish first

        await asyncio.to_thread(clear_desks)

        # Phase 2: saturation.  Every agent steps away, a backlog builds up
        # through the API, then every agent comes back at once: dispatch and
        # the agents' accepts drain the backlog as fast as the stack allows.
        await asyncio.gather(*(set_presence(client, token, "away", run) for _, token in agents))
        backlog_start = time.perf_counter()
        semaphore = asyncio.Semaphore(64)

        async def bounded(number):
            async with semaphore:
                await open_ticket(client, customers=customer, run=run, number=number)

        await asyncio.gather(*(bounded(count + n) for n in range(args.saturation)))
        backlog_seconds = time.perf_counter() - backlog_start
        backlog = set(run.sent) - steady_ids - warm_ids
        accepted_before = len(run.accepted)
        sat_start, cpu_start, sessions_start = time.perf_counter(), cpu.read(), sessions.read()
        machine_start = MachineMeter.read()
        answers_before = len(run.answer_ms)
        deliveries_before = len(run.delivery_ms)
        await asyncio.gather(*(set_presence(client, token, "online", run) for _, token in agents))
        await wait_until(
            lambda: len(run.accepted) - accepted_before >= len(backlog), timeout=args.drain_timeout
        )
        drained = sorted(run.accepted.values())[accepted_before:]
        sat_end = drained[-1] if drained else sat_start
        last_read = cpu.read()
        saturation_machine = MachineMeter.between(machine_start, MachineMeter.read())
        saturation_sessions = sessions.read() - sessions_start
        # uvicorn kills and replaces a worker that misses its health check (5 s),
        # dropping that worker's sockets: say so rather than leave it to be guessed.
        for _ in range(CpuMeter.ended(first_read, last_read, "ASGI server")):
            run.error("web worker replaced")
        saturation = {
            "cpu": CpuMeter.between(cpu_start, last_read),
            "machine": saturation_machine,
            "sessions": saturation_sessions,
            "tickets": len(backlog),
            "created_per_second": len(backlog) / max(backlog_seconds, 1e-9),
            "assignments": len(drained),
            "seconds": sat_end - sat_start,
            "assignments_per_second": len(drained) / max(sat_end - sat_start, 1e-9),
            # Where an agent's cycle goes while the backlog drains.
            "answer_p50_ms": percentile(run.answer_ms[answers_before:], 50),
            "gap_p50_ms": percentile([ms for at, ms in run.gaps if at >= sat_start], 50),
            "gap_p95_ms": percentile([ms for at, ms in run.gaps if at >= sat_start], 95),
            "delivery_p50_ms": percentile(run.delivery_ms[deliveries_before:], 50),
            "delivery_p95_ms": percentile(run.delivery_ms[deliveries_before:], 95),
        }
    finally:
        client.close()
        if desk is not None:
            desk.close()
    run.done.set()
    for socket in sockets:
        socket.cancel()
    await asyncio.gather(*sockets, return_exceptions=True)
    return {
        "steady": steady,
        "saturation": saturation,
        "errors": run.errors,
        "error_kinds": run.error_kinds,
    }


def clear_desks() -> int:
    """Between phases, not measured: the agents resolve what they were given.

    200 agents hold 4,000 tickets at most (capacity 20 each); without this the
    seats the steady phase filled would cut the saturation phase short.  Each
    ticket goes through the service an agent's "resolve" does (audit row, seat
    freed, pay credited, pushes after commit).
    """
    from django.db import connections

    from agents.models import User
    from tickets import services
    from tickets.models import Ticket, TicketStatus

    try:
        assigned = Ticket.objects.filter(status=TicketStatus.ASSIGNED).values_list(
            "pk", "assigned_agent__user"
        )
        users = {}
        for ticket_id, user_id in assigned:
            if user_id not in users:
                users[user_id] = User.objects.get(pk=user_id)
            services.ticket_resolve(ticket_id=ticket_id, caller=users[user_id])
        return len(assigned)
    finally:
        connections.close_all()


def stop(processes: list[subprocess.Popen]) -> None:
    """SIGTERM each process group, then SIGKILL whatever is left after a grace period."""
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def run_loop(coroutine):
    """The load generator on uvloop when it is there: less of the machine for the client."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--rate", type=int, default=100, help="tickets per second")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument(
        "--warmup", type=int, default=3, help="seconds at the same rate before measuring"
    )
    parser.add_argument("--saturation", type=int, default=3000, help="backlog for saturation")
    parser.add_argument("--drain-timeout", type=float, default=120.0)
    parser.add_argument("--server", choices=["uvicorn", "daphne"], default="uvicorn")
    parser.add_argument("--web-workers", type=int, default=2, help="ASGI server processes")
    parser.add_argument(
        "--reuse",
        choices=["oldest", "newest"],
        default="oldest",
        help="which idle connection a request takes: oldest (in turn) or newest",
    )
    parser.add_argument("--dump", help="write each steady ticket's timings to this file")
    parser.add_argument(
        "--connections", type=int, default=16, help="HTTP connections the customers share"
    )
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument(
        "--hold",
        type=float,
        default=0,
        help="seconds after accepting at which each agent resolves a steady ticket (0: never)",
    )
    args = parser.parse_args()
    desks = args.agents * CAPACITY
    if args.hold < 0:
        parser.error("--hold is seconds, 0 or more")
    if args.hold and args.rate * (args.warmup + args.hold + 2) > desks:
        parser.error(
            f"--rate {args.rate} with --hold {args.hold:g} keeps more tickets held than"
            f" {args.agents} agents can hold ({desks}, {CAPACITY} each):"
            " lower one, or raise --agents"
        )
    if not args.hold and args.rate * (args.warmup + args.seconds) > desks:
        parser.error(
            f"--rate {args.rate} for {args.warmup} + {args.seconds} s opens more tickets than"
            f" {args.agents} agents can hold ({desks}, {CAPACITY} each; they do not resolve"
            " within a phase): lower --seconds or --rate, raise --agents, or --hold"
        )
    if args.saturation > desks:
        parser.error(f"--saturation {args.saturation} is more than {args.agents} agents hold")

    env = bench_env(args)
    speed_ms = MachineMeter.speed_ms()  # before anything of the stack runs
    print(
        f"dispatch bench: {args.agents} agents, {args.rate} tickets/s for {args.seconds} s "
        f"(after {args.warmup} s of warm-up), then {args.saturation} at saturation",
        flush=True,
    )
    django_on(env)
    credentials, token = seed(args.agents)
    from django.db import connection, connections

    with connection.cursor() as cursor:
        # Planner statistics for the seeded tables and their past, as
        # autovacuum keeps them in a live database.
        cursor.execute("ANALYZE")
    connections.close_all()

    workdir = tempfile.mkdtemp(prefix="humanline-bench-")
    # A SIGTERM (timeout, CI) unwinds through ``finally`` and stops the stack too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    processes = start_stack(env, args, workdir)
    try:
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{args.port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                print("the ASGI server did not start; see", workdir, file=sys.stderr)
                return 1
            time.sleep(0.2)  # polling the server's health endpoint until it answers
        time.sleep(2)  # let the worker and beat connect to the broker
        cpu = CpuMeter(
            {part: process.pid for part, process in zip(STACK_PARTS, processes, strict=True)}
        )
        sessions = SessionMeter(env["DATABASE_URL"])
        try:
            result = run_loop(load(args, credentials, token, cpu, sessions))
        finally:
            sessions.close()
    finally:
        stop(processes)
    steady, saturation = result["steady"], result["saturation"]
    print(f"  agents connected over WebSockets : {args.agents} ({args.server} x{args.web_workers})")
    print(
        f"  machine speed: sum(range(10**6)) in {speed_ms:.1f} ms before the run"
        ' (best of 5, as python3 -m timeit -n 20 "sum(range(10**6))")'
    )
    print(
        f"  steady: {steady['offers']}/{steady['tickets']} tickets offered, "
        f"{steady['offers_per_second']:.1f} offers/s sustained"
        + (
            f"; agents resolve {args.hold:g} s after accepting: {steady['resolved']} resolved"
            if args.hold
            else ""
        )
    )
    print(
        f"  creation request -> offer frame  : p50 {steady['p50_ms']:.1f} ms, "
        f"p95 {steady['p95_ms']:.1f} ms, p99 {steady['p99_ms']:.1f} ms "
        f"(mean {steady['mean_ms']:.1f}, max {steady['max_ms']:.1f})"
    )
    print(
        f"  creation request -> 201 response : p50 {steady['http_p50_ms']:.1f} ms, "
        f"p99 {steady['http_p99_ms']:.1f} ms"
    )
    print(
        f"  saturation: backlog of {saturation['tickets']} opened at "
        f"{saturation['created_per_second']:.0f}/s with every agent away; all back online: "
        f"{saturation['assignments']} assigned in {saturation['seconds']:.2f} s = "
        f"{saturation['assignments_per_second']:.1f} assignments/s"
    )
    print(
        "  saturation cycle: offer frame -> accept confirmed p50"
        f" {saturation['answer_p50_ms']:.1f} ms;"
        f" accept confirmed -> next offer p50 {saturation['gap_p50_ms']:.1f} ms,"
        f" p95 {saturation['gap_p95_ms']:.1f} ms; offer written -> frame p50"
        f" {saturation['delivery_p50_ms']:.1f} ms, p95 {saturation['delivery_p95_ms']:.1f} ms"
    )
    for phase, figures, count in (
        ("steady", steady, steady["offers"]),
        ("saturation", saturation, saturation["assignments"]),
    ):
        shares = ", ".join(
            f"{part} {seconds:.1f} s" for part, seconds in sorted(figures["cpu"].items()) if seconds
        )
        total = sum(figures["cpu"].values())
        print(
            f"  CPU, {phase}: {shares}; {total * 1000 / max(count, 1):.1f} ms per ticket in all;"
            f" {figures['sessions']} database connections opened; {figures['machine']}"
        )
    print(f"  errors: {result['errors']} {result['error_kinds']}   (logs: {workdir}/stack.log)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
