"""One chaos run: seed, start the stack, load it, inject faults, stop, wait, check, report.

``run(options)`` is shared by ``make chaos`` (``python -m chaos``, the full
run on a database of its own) and the short version in the test suite
(``tests/test_chaos_short.py``, on the test database).  Django must already
be set up in this process, pointed at the database the stack will use: the
harness seeds and checks through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx

from chaos import checks, stack
from chaos.load import Failure, Load

# Faults whose documented effect on clients is errors until the component is
# back (README, "When a component fails"): a web process gone, PostgreSQL down.
# Redis and a worker dying must cost clients no 5xx at all; a socket that
# cannot be opened while Redis is down is expected (live pushes pause).
ERRORS_EXPECTED = {"web_kill", "postgres_restart", "db_sessions_cut"}
SOCKET_ERRORS_EXPECTED = ERRORS_EXPECTED | {"redis_restart"}

LABELS = {
    "worker_kill": "kill -9 Celery worker",
    "redis_restart": "Redis restarted",
    "postgres_restart": "PostgreSQL restarted",
    "db_sessions_cut": "PostgreSQL sessions cut",
    "web_kill": "kill -9 web process 2 of 2",
    "socket_drop": "10 % of agent sockets dropped",
}

# A fault's window lasts until its component is back and the API answers,
# plus this margin for requests that were already in flight.
WINDOW_MARGIN = 3.0


@dataclass
class Options:
    seconds: float = 180.0
    agents: int = 24
    customers: int = 40
    faults: list[str] = field(default_factory=list)
    offer_window: int = 8  # OFFER_WINDOW_SECONDS for the stack
    socket_share: float = 0.10
    redis_down_seconds: float = 2.0
    web_down_seconds: float = 2.0
    ping_seconds: float = 20.0  # the agents' ping (the console's is 20-30 s)
    env: dict = field(default_factory=dict)  # the stack's environment (DATABASE_URL, ...)
    redis: stack.PrivateRedis | None = None  # the Redis the stack uses (REDIS_URL)
    workdir: Path | None = None
    postgres_restart: list[str] | None = None  # the command; None: pg_ctlcluster


@dataclass
class FaultRecord:
    kind: str
    injected: float  # epoch
    restored: float | None = None  # the component is back (epoch)
    api_back: float | None = None  # seconds from injection to an answered probe
    offers_back: float | None = None  # seconds from injection to an offer made and received
    note: str = ""

    def window_end(self) -> float:
        ends = [self.injected]
        if self.restored is not None:
            ends.append(self.restored)
        if self.api_back is not None:
            ends.append(self.injected + self.api_back)
        return max(ends) + WINDOW_MARGIN


@dataclass
class Outcome:
    faults: list[FaultRecord]
    load: Load
    checks: list[checks.Check]
    by_status: dict[str, int]
    errors: dict[str, int]  # cause -> count (5xx and no answer)
    statuses: dict[str, int]  # "503 GET /healthz" -> count
    seconds: float
    postgres_skipped: bool
    restarts: list[tuple[float, str, str, str]]  # when, process, last error, during

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


# --- seeding -----------------------------------------------------------------------


@dataclass
class Seeded:
    agents: list[tuple[int, str]]
    customers: list[str]
    staff: str
    probe: str
    period_id: int


def seed(*, agents: int, customers: int) -> Seeded:
    """Approved agents online (English; general, payments, refunds), customers, staff, tokens,
    and last week's pay period, still open, for staff to close."""
    from django.db import transaction
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from agents import presence
    from agents.models import Agent, AgentLanguage, AgentStatus, Role, Skill, User
    from marketplace.services import ledger

    tag = f"{int(time.time() * 1000):x}"  # one run's people, whatever ran before
    skills = list(Skill.objects.filter(slug__in=["general", "payments", "refunds"]))
    with transaction.atomic():
        agent_users = User.objects.bulk_create(
            [
                User(email=f"chaos-agent-{tag}-{i}@example.org", name=f"Agent {i}", role=Role.AGENT)
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
                    capacity=2,
                    status_changed_at=timezone.now(),
                )
                for user in agent_users
            ]
        )
        AgentLanguage.objects.bulk_create([AgentLanguage(agent=a, code="en") for a in created])
        Agent.skills.through.objects.bulk_create(
            [Agent.skills.through(agent_id=a.pk, skill_id=s.pk) for a in created for s in skills]
        )
        people = User.objects.bulk_create(
            [
                User(email=f"chaos-customer-{tag}-{i}@example.org", name=f"Customer {i}")
                for i in range(customers + 1)
            ]
        )
        staff = User.objects.create(
            email=f"chaos-staff-{tag}@example.org", name="Ops", role=Role.STAFF, is_staff=True
        )
        tokens = Token.objects.bulk_create(
            [Token(user=u, key=Token.generate_key()) for u in [*agent_users, *people, staff]]
        )
    for agent in created:
        presence.agent_presence_set(agent_id=agent.pk, status="online")
    keys = [t.key for t in tokens]
    period = ledger.period_get_or_create(timezone.now() - timedelta(days=7))
    return Seeded(
        agents=[(a.pk, keys[i]) for i, a in enumerate(created)],
        customers=keys[agents : agents + customers],
        staff=keys[-1],
        probe=keys[agents + customers],
        period_id=period.pk,
    )


# --- faults ------------------------------------------------------------------------


class Supervisor:
    """Starts again any process of the stack that exited on its own, as systemd would.

    A process the injector is killing is left to it.  Each restart is
    recorded: a process dying of a fault it should have survived is news.
    """

    def __init__(self, the_stack: stack.Stack):
        self.stack = the_stack
        self.busy: set[str] = set()  # processes a fault is handling
        self.restarts: list[tuple[float, str, str]] = []  # (epoch, process, last log line)

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            for index, process in enumerate(self.stack.processes()):
                if process.name in self.busy or process.alive():
                    continue
                self.restarts.append((time.time(), process.name, _last_error(process.log)))
                if process in self.stack.web:
                    await asyncio.to_thread(self.stack.start_web, index)
                else:
                    process.start()


def _last_error(log: Path) -> str:
    try:
        lines = [line for line in log.read_text().splitlines() if "Error" in line]
    except OSError:
        return ""
    return lines[-1].strip()[:140] if lines else ""


class Injector:
    def __init__(
        self,
        the_stack: stack.Stack,
        options: Options,
        load: Load,
        probe: str,
        supervisor: Supervisor,
    ):
        self.stack, self.options, self.load, self.probe = the_stack, options, load, probe
        self.supervisor = supervisor

    async def inject(self, kind: str) -> FaultRecord:
        record = FaultRecord(kind, time.time())
        prober = asyncio.create_task(self._probe(record))
        try:
            await getattr(self, kind)(record)
        finally:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(prober), 60)
            prober.cancel()
        return record

    async def _probe(self, record: FaultRecord) -> None:
        """Time until an authenticated API read (the database behind it) answers again.

        The first probe waits a moment so that the fault has struck.
        """
        await asyncio.sleep(0.2)
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                for index in range(len(self.stack.ports)):
                    try:
                        answer = await client.get(
                            f"{self.stack.base(index)}/api/v1/tickets/",
                            headers={"Authorization": f"Token {self.probe}"},
                        )
                    except httpx.HTTPError:
                        continue
                    if answer.status_code == 200:
                        record.api_back = time.time() - record.injected
                        return
                await asyncio.sleep(0.1)

    async def worker_kill(self, record: FaultRecord) -> None:
        self.supervisor.busy.add("worker")
        try:
            self.stack.worker.kill9()
            await asyncio.sleep(1.0)  # the supervisor notices and starts it again
            self.stack.worker.start()
        finally:
            self.supervisor.busy.discard("worker")
        record.restored = time.time()

    async def redis_restart(self, record: FaultRecord) -> None:
        self.options.redis.kill()
        await asyncio.sleep(self.options.redis_down_seconds)
        await asyncio.to_thread(self.options.redis.start)
        record.restored = time.time()

    async def postgres_restart(self, record: FaultRecord) -> None:
        await asyncio.to_thread(stack.restart_postgresql, self.options.postgres_restart)
        record.restored = time.time()

    async def db_sessions_cut(self, record: FaultRecord) -> None:
        """What a restart does to the stack's connections, on its database alone:
        every session but the harness's own is terminated."""
        await asyncio.to_thread(stack.cut_database_sessions)
        record.restored = time.time()

    async def web_kill(self, record: FaultRecord) -> None:
        self.supervisor.busy.add("web2")
        try:
            self.stack.web[1].kill9()
            await asyncio.sleep(self.options.web_down_seconds)
            await asyncio.to_thread(self.stack.start_web, 1)
        finally:
            self.supervisor.busy.discard("web2")
        record.restored = time.time()

    async def socket_drop(self, record: FaultRecord) -> None:
        dropped, took = await self.load.drop_sockets(self.options.socket_share)
        record.note = f"{dropped} dropped"
        record.restored = None if took is None else record.injected + took
        if took is None:
            record.note += ", not all back in 30 s"


# --- the run -----------------------------------------------------------------------


async def _drive(
    the_stack: stack.Stack, options: Options, seeded: Seeded, supervisor: Supervisor
) -> tuple[Load, list]:
    load = Load(
        bases=[the_stack.base(0), the_stack.base(1)],
        agents=seeded.agents,
        customers=seeded.customers,
        staff=seeded.staff,
        period_id=seeded.period_id,
        ping_seconds=options.ping_seconds,
    )
    watching = asyncio.create_task(supervisor.watch())
    await load.start()
    injector = Injector(the_stack, options, load, seeded.probe, supervisor)
    started = time.monotonic()
    records: list[FaultRecord] = []
    count = len(options.faults)
    staff_at = options.seconds * 0.5
    staff_task = None
    for number, kind in enumerate(options.faults, start=1):
        due = options.seconds * number / (count + 1)
        if staff_task is None and due >= staff_at:
            # Staff close last week while faults strike (its retries ride them out).
            staff_task = asyncio.create_task(load.close_period())
        wait = due - (time.monotonic() - started)
        if wait > 0:
            await asyncio.sleep(wait)
        records.append(await injector.inject(kind))
    if staff_task is None:
        staff_task = asyncio.create_task(load.close_period())
    rest = options.seconds - (time.monotonic() - started)
    if rest > 0:
        await asyncio.sleep(rest)
    await staff_task
    await load.stop()
    # The sweeper's grace: offers still pending expire, and the sweep returns
    # their tickets to the queue.
    await asyncio.sleep(options.offer_window + 4)
    watching.cancel()
    for record in records:
        record.offers_back = _offers_back(load, record)
    return load, records


def _offers_back(load: Load, record: FaultRecord) -> float | None:
    """Seconds from the fault to the first offer made after it that reached an agent."""
    after = [received for received, made in load.offer_frames if made >= record.injected]
    return min(after) - record.injected if after else None


def _causes(failures: list[Failure], records: list[FaultRecord]) -> tuple[dict, dict, int]:
    """Each failure's cause (the fault whose window it fell in), and how many no fault explains."""
    causes: dict[str, int] = {}
    statuses: dict[str, int] = {}
    unexplained = 0
    for failure in failures:
        label = f"{failure.status or 'no answer'} {failure.what}"
        statuses[label] = statuses.get(label, 0) + 1
        record = next(
            (r for r in records if r.injected - 0.5 <= failure.at <= r.window_end()), None
        )
        socket = failure.what.startswith("socket")
        cause = "no fault" if record is None else LABELS[record.kind]
        expected = record is not None and (
            record.kind in (SOCKET_ERRORS_EXPECTED if socket else ERRORS_EXPECTED)
            or (record.kind == "web_kill" and failure.port == 1)
        )
        if not expected:
            unexplained += 1
            cause += " (unexpected)"
        causes[cause] = causes.get(cause, 0) + 1
    return causes, statuses, unexplained


def run(options: Options) -> Outcome:
    """The whole run; Django is set up on the stack's database.  Stops every process it started."""
    from django.db import connections

    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="humanline-chaos-"))
    seeded = seed(agents=options.agents, customers=options.customers)
    connections.close_all()
    env = {**options.env, "OFFER_WINDOW_SECONDS": str(options.offer_window)}
    the_stack = stack.Stack(env, workdir)
    began = time.monotonic()
    supervisor = Supervisor(the_stack)
    try:
        the_stack.start()
        load, records = asyncio.run(_drive(the_stack, options, seeded, supervisor))
    finally:
        the_stack.stop()
    took = time.monotonic() - began
    connections.close_all()  # PostgreSQL may have restarted under the harness's own connection
    found, by_status = checks.run_checks(tolerance_seconds=3)
    causes, statuses, unexplained = _causes(load.failures, records)
    repeated = sum(1 for ids in load.keys.values() if len(ids) > 1)
    found.append(
        checks.Check(
            "retries answered with another ticket",
            f"{repeated} of {len(load.keys)} keys",
            repeated == 0,
        )
    )
    found.append(
        checks.Check(
            "5xx and lost answers explained by a fault",
            f"{len(load.failures) - unexplained} explained, {unexplained} not",
            unexplained == 0,
        )
    )
    found.append(
        checks.Check(
            "staff closed last week",
            "closed" if checks.period_closed(seeded.period_id) else "still open",
            checks.period_closed(seeded.period_id),
        )
    )
    back = [r for r in records if r.kind != "socket_drop"]
    found.append(
        checks.Check(
            "offers flow again after every fault",
            f"{sum(r.offers_back is not None for r in back)} of {len(back)}",
            all(r.offers_back is not None for r in back),
        )
    )
    return Outcome(
        faults=records,
        load=load,
        checks=found,
        by_status=by_status,
        errors=causes,
        statuses=statuses,
        seconds=took,
        postgres_skipped="postgres_restart" not in options.faults,
        restarts=[
            (at, name, cause, _during(at, records)) for at, name, cause in supervisor.restarts
        ],
    )


def _during(at: float, records: list[FaultRecord]) -> str:
    record = next((r for r in records if r.injected - 0.5 <= at <= r.window_end()), None)
    return "no fault" if record is None else LABELS[record.kind]


def schedule(*, full: bool) -> list[str]:
    """The faults, in order: each kind spread over the run."""
    if full:
        return [
            "worker_kill",
            "redis_restart",
            "socket_drop",
            "web_kill",
            "worker_kill",
            "redis_restart",
            "postgres_restart",
            "socket_drop",
            "worker_kill",
            "redis_restart",
            "worker_kill",
        ]
    return ["worker_kill", "redis_restart", "socket_drop", "web_kill"]


# --- the table ---------------------------------------------------------------------


def report(outcome: Outcome) -> str:
    lines = []
    tally = outcome.load.tally

    def row(*cells):
        lines.append("  " + " | ".join(str(c) for c in cells))

    lines.append(f"Chaos run: {outcome.seconds:.0f} s with the stack up")
    lines.append(
        f"  load: {tally.opened} tickets opened ({tally.replayed} retries answered from the first),"
        f" {tally.too_many} refused as too many open, {tally.messages} messages,"
        f" {tally.offer_frames} offers received, {tally.accepted} accepted"
        f" ({tally.accept_refused} refused or lost), {tally.resolved} resolved;"
        f" {tally.connects} socket connects, {tally.dropped} dropped on purpose,"
        f" {tally.back_online} times back online"
    )
    lines.append("")
    lines.append("Faults (recovery: seconds from the fault until ...)")
    row("fault", "component back", "API answers", "offers flow", "note")
    for record in outcome.faults:
        row(
            LABELS[record.kind],
            _secs(None if record.restored is None else record.restored - record.injected),
            _secs(record.api_back),
            _secs(record.offers_back),
            record.note,
        )
    if outcome.postgres_skipped:
        row("PostgreSQL restart", "skipped", "-", "-", "the short run shares the server")
    lines.append("")
    lines.append("Processes that died of themselves (started again by the supervisor)")
    if not outcome.restarts:
        row("none")
    for _, name, cause, during in outcome.restarts:
        row(name, f"during: {during}", cause)
    lines.append("")
    lines.append(
        "Tickets by status: "
        + ", ".join(f"{status} {count}" for status, count in sorted(outcome.by_status.items()))
    )
    lines.append("")
    lines.append("Errors seen by clients (5xx or no answer), by cause")
    if not outcome.errors:
        row("none", 0)
    for cause, count in sorted(outcome.errors.items()):
        row(cause, count)
    for label, count in sorted(outcome.statuses.items()):
        lines.append(f"    {count:5d}  {label}")
    lines.append("")
    lines.append("Invariants")
    for check in outcome.checks:
        row("ok  " if check.ok else "FAIL", check.name, check.figure, check.detail)
    lines.append("")
    lines.append("PASS" if outcome.ok else "FAIL")
    return "\n".join(lines)


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
