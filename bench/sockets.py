"""Socket tier benchmark: thousands of agents connected to the production-like stack, on loopback.

Starts the stack of ``bench/dispatch.py`` (uvicorn with 2 worker processes, a
dispatch worker, a Celery worker and Celery beat against PostgreSQL and
Redis), connects N agents to ``/ws/agent/`` over real WebSockets, a few at a
time, each sending the agent console's ``ping`` every 20 s from its own start,
and prints:

- the ASGI server's resident memory (RSS, all its processes) before the
  first socket, once every socket is connected and has settled, and after
  the idle window; and what 1,000 sockets add;
- CPU at idle: what the ASGI server, the workers, beat, PostgreSQL, Redis and
  this load generator use over a window in which the sockets only ping, in
  percent of one core;
- offers under that load: tickets opened through the HTTP API at a set rate
  (after a few seconds of warm-up at that rate, not measured), each agent
  accepting its offers over its socket; p50/p95/p99 of the time from the
  ticket's creation request being sent to the ``offer.created`` frame arriving.

The agents' sockets send no WebSocket ping frames of their own, as a browser's
do not; they answer the server's (uvicorn's, every 20 s).  The load generator
shares the machine with the stack: its own CPU is printed with the rest.

Usage: ``make bench`` or ``python bench/sockets.py --sockets 5000``.
It uses its own database (``humanline_sockets_bench``) and Redis db 8, recreated each run.
"""

import argparse
import asyncio
import collections
import os
import resource
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dispatch import (  # the benchmarks' shared stack
    CONNECT_AT_ONCE,
    STACK_PARTS,
    CpuMeter,
    HttpPool,
    MachineMeter,
    Run,
    SessionMeter,
    agent_loop,
    bench_env,
    django_on,
    paced,
    percentile,
    run_loop,
    seed,
    start_stack,
    stop,
    wait_until,
)
from queue_depth import wait_for_server

DATABASE = "humanline_sockets_bench"
REDIS_DB = 8  # not dispatch.py's 7: each bench empties its own
BATCH = 500  # sockets started at a time; each batch connects before the next starts
SETTLE_SECONDS = 5  # after the last socket connects, before memory is read
MIB = 1024 * 1024
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
# File descriptors the load generator and each web process need beyond the
# sockets themselves (libraries, database and Redis connections, the HTTP pool).
SPARE_FDS = 512
# Free PostgreSQL connections below which a warning is printed: the stack's
# processes open theirs as they go (one per thread that touches the database).
LOW_CONNECTIONS = 30


def raise_file_limit(needed: int) -> tuple[int, int]:
    """The soft limit on open files raised to the hard limit, for this process and
    the stack it starts (children inherit it).  Returns (soft, hard) as set; the
    caller compares them with what it needs."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        soft = hard if hard != resource.RLIM_INFINITY else max(soft, needed)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft, hard


def group_processes(pgid: int) -> dict[int, str]:
    """The processes of the ASGI server (its process group), each with its role."""
    roles = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[2]) != pgid:
            continue
        pid = int(entry.name)
        if pid == pgid:
            roles[pid] = "supervisor"
        elif b"resource_tracker" in cmdline:
            roles[pid] = "resource tracker"
        else:
            roles[pid] = "worker"
    return dict(sorted(roles.items()))


def resident(pid: int) -> int:
    """A process's resident set size in bytes (``/proc/<pid>/statm``); 0 if it is gone."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def open_sockets(pid: int) -> int:
    """How many sockets a process holds open (its descriptors that are sockets)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return 0
    count = 0
    for fd in fds:
        try:
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except OSError:
            continue
    return count


def redis_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().startswith("redis-server"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def memory_snapshot(asgi_pgid: int) -> dict:
    """RSS of the ASGI server's processes (and the sockets each holds), of Redis,
    and of this load generator."""
    web = {
        pid: (role, resident(pid), open_sockets(pid))
        for pid, role in group_processes(asgi_pgid).items()
    }
    return {
        "web": web,
        "web_total": sum(rss for _, rss, _ in web.values()),
        "redis": sum(resident(pid) for pid in redis_pids()),
        "me": resident(os.getpid()),
    }


class StackCpu(CpuMeter):
    """dispatch.py's meter, with PostgreSQL's backends serving this benchmark's
    database apart from the rest of the server (its background processes, and
    other databases' backends: the machine's other users)."""

    OWN = "postgresql backends"

    def read(self) -> dict[int, tuple[str, float]]:
        used = super().read()
        for pid, (part, seconds) in used.items():
            if part != "postgresql":
                continue
            try:
                title = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if DATABASE.encode() in title:  # "postgres: user database host(port) state"
                used[pid] = (self.OWN, seconds)
        return used


def cpu_line(spent: dict[str, float], seconds: float) -> str:
    """CPU per part over a window, in percent of one core."""

    def share(part: str) -> str:
        return f"{100 * spent.get(part, 0.0) / max(seconds, 1e-9):.1f} %"

    return (
        ", ".join(f"{part} {share(part)}" for part in STACK_PARTS)
        + f", PostgreSQL {share(StackCpu.OWN)} (its other processes {share('postgresql')}),"
        f" Redis {share('redis')} (the whole server), load generator {share('load generator')}"
    )


def held_connections(sessions: SessionMeter) -> int:
    """Connections to the benchmark's database now, the meter's own left out."""
    with sessions.connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return cursor.fetchone()[0] - 1


def free_connections(sessions: SessionMeter) -> tuple[int, int]:
    """PostgreSQL's connection slots: (free now, max_connections)."""
    with sessions.connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('max_connections')::int, count(*) FROM pg_stat_activity"
            " WHERE backend_type = 'client backend'"
        )
        most, used = cursor.fetchone()
        return most - used, most


async def load(
    args, credentials, customers, cpu: StackCpu, sessions: SessionMeter, asgi_pgid: int
) -> dict:
    base = f"http://127.0.0.1:{args.port}"
    ws_base = f"ws://127.0.0.1:{args.port}/ws/agent/?ticket="
    run, ready = Run(), asyncio.Event()
    figures: dict = {"memory_before": memory_snapshot(asgi_pgid)}
    first_read = cpu.read()

    # Connect: BATCH sockets started at a time, CONNECT_AT_ONCE of them
    # connecting at once; each batch in before the next starts.
    sockets: list[asyncio.Task] = []
    # Tasks done before the end: sockets that failed to connect, or were lost.
    ended = collections.Counter()
    start, machine = time.perf_counter(), MachineMeter.read()
    for first in range(0, len(credentials), BATCH):
        for realtime, _ in credentials[first : first + BATCH]:
            task = asyncio.create_task(
                agent_loop(
                    ws_base + realtime,
                    base,
                    run,
                    ready,
                    len(credentials),
                    ping_seconds=args.ping_seconds,
                    protocol_pings=False,
                )
            )
            task.add_done_callback(lambda _: ended.update(["tasks"]))
            sockets.append(task)
        target = len(sockets)
        await wait_until(
            lambda target=target: run.connected + ended["tasks"] >= target, timeout=120
        )
        print(
            f"  ... {run.connected}/{len(credentials)} connected"
            f" ({time.perf_counter() - start:.1f} s)",
            file=sys.stderr,
            flush=True,
        )
    figures["connect_seconds"] = time.perf_counter() - start
    figures["connect_cpu"] = CpuMeter.between(first_read, cpu.read())
    figures["connect_machine"] = MachineMeter.between(machine, MachineMeter.read())
    for task in sockets:
        if task.done() and not task.cancelled() and task.exception() is not None:
            run.error(f"connect:{type(task.exception()).__name__}")
    figures["connected"] = run.connected
    if not run.connected:
        figures["errors"] = run.error_kinds
        return figures

    await asyncio.sleep(SETTLE_SECONDS)
    figures["memory_connected"] = memory_snapshot(asgi_pgid)

    # Idle: the sockets only ping.
    cpu_start, machine, opened = cpu.read(), MachineMeter.read(), sessions.read()
    start = time.perf_counter()
    await asyncio.sleep(args.idle_seconds)
    figures["idle_seconds"] = time.perf_counter() - start
    figures["idle_cpu"] = CpuMeter.between(cpu_start, cpu.read())
    figures["idle_machine"] = MachineMeter.between(machine, MachineMeter.read())
    figures["memory_idle"] = memory_snapshot(asgi_pgid)
    figures["idle_sessions"] = sessions.read() - opened
    figures["held_connections"] = held_connections(sessions)

    # Offers at a steady rate while every socket stays connected and pinging.
    client = HttpPool("127.0.0.1", args.port, size=16)
    await client.open(4)
    try:
        warm_ids = await paced(client, customers, run, args.rate, 0, args.rate * args.warmup)
        await wait_until(lambda: warm_ids <= run.offered.keys(), timeout=30)
        await wait_until(lambda: len(run.accepted) >= len(warm_ids), timeout=30)
        cpu_start, machine, opened = cpu.read(), MachineMeter.read(), sessions.read()
        start = time.perf_counter()
        ids = await paced(
            client, customers, run, args.rate, args.rate * args.warmup, args.rate * args.seconds
        )
        await wait_until(lambda: ids <= run.offered.keys(), timeout=30)
        offers_seconds = time.perf_counter() - start
        last_read = cpu.read()
        figures["offers_cpu"] = CpuMeter.between(cpu_start, last_read)
        figures["offers_machine"] = MachineMeter.between(machine, MachineMeter.read())
        figures["offers_seconds"] = offers_seconds
        figures["offers_sessions"] = sessions.read() - opened
        latencies = [(run.offered[t] - run.sent[t]) * 1000 for t in ids if t in run.offered]
        responses = [(run.created[t] - run.sent[t]) * 1000 for t in ids]
        figures["tickets"], figures["offers"] = len(ids), len(latencies)
        figures["latency"] = {q: percentile(latencies, q) for q in (50, 95, 99)}
        figures["latency_mean"] = statistics.fmean(latencies) if latencies else float("nan")
        figures["latency_max"] = max(latencies, default=float("nan"))
        figures["http"] = {q: percentile(responses, q) for q in (50, 99)}
        await wait_until(lambda: len(run.accepted) >= len(warm_ids) + len(latencies), timeout=30)
        figures["accepted"] = len(run.accepted) - len(warm_ids)
    finally:
        client.close()
    # uvicorn replaces a worker that misses its health check, dropping its sockets.
    for _ in range(CpuMeter.ended(first_read, last_read, "ASGI server")):
        run.error("web worker replaced")
    figures["still_connected"] = sum(not t.done() for t in sockets)
    run.done.set()
    for task in sockets:
        task.cancel()
    await asyncio.gather(*sockets, return_exceptions=True)
    figures["errors"] = run.error_kinds
    return figures


def report(args, figures: dict, speed_ms: float, workdir: str) -> None:
    total = args.sockets
    connected = figures["connected"]
    seconds = figures["connect_seconds"]
    print(
        f"  machine speed: sum(range(10**6)) in {speed_ms:.1f} ms before the run"
        ' (best of 5, as python3 -m timeit -n 20 "sum(range(10**6))")'
    )
    print(
        f"  connected: {connected}/{total} sockets in {seconds:.1f} s"
        f" ({connected / max(seconds, 1e-9):.0f}/s; {CONNECT_AT_ONCE} connecting at once,"
        f" in batches of {BATCH}); {figures['connect_machine']}"
    )
    if not connected:
        print(f"  errors: {sum(figures['errors'].values())} {figures['errors']}")
        print(f"  (logs: {workdir}/stack.log)")
        return
    spent = figures["connect_cpu"]
    print(
        f"  CPU, connecting: ASGI server {spent.get('ASGI server', 0.0):.1f} s"
        f" ({1000 * spent.get('ASGI server', 0.0) / connected:.1f} ms per socket),"
        f" PostgreSQL {spent.get(StackCpu.OWN, 0.0):.1f} s"
        f" ({1000 * spent.get(StackCpu.OWN, 0.0) / connected:.1f} ms per socket),"
        f" Redis {spent.get('redis', 0.0):.1f} s,"
        f" load generator {spent.get('load generator', 0.0):.1f} s"
    )
    before, settled, idle = (
        figures["memory_before"],
        figures["memory_connected"],
        figures["memory_idle"],
    )
    print(
        f"  ASGI server RSS, {len(settled['web'])} processes: {before['web_total'] / MIB:.1f} MiB"
        f" before any socket; {settled['web_total'] / MIB:.1f} MiB with {connected} connected"
        f" ({SETTLE_SECONDS} s after the last); {idle['web_total'] / MIB:.1f} MiB after the"
        " idle window"
    )

    def process(pid: int) -> str:
        role, rss, sockets = settled["web"][pid]
        was = before["web"].get(pid, (role, 0, 0))
        later = idle["web"].get(pid, (role, 0, 0))
        return (
            f"{role} {was[1] / MIB:.0f} -> {rss / MIB:.0f} -> {later[1] / MIB:.0f} MiB"
            f" (+{sockets - was[2]} sockets)"
        )

    print(
        "  per process, before -> connected -> after idle: "
        + "; ".join(map(process, settled["web"]))
    )
    per_thousand = (settled["web_total"] - before["web_total"]) / MIB * 1000 / connected
    after_idle = (idle["web_total"] - before["web_total"]) / MIB * 1000 / connected
    print(
        f"  ASGI server RSS per 1,000 sockets: {per_thousand:.1f} MiB once connected,"
        f" {after_idle:.1f} MiB after the idle window"
        f" (Redis {(settled['redis'] - before['redis']) / MIB * 1000 / connected:.1f} MiB,"
        f" load generator {(settled['me'] - before['me']) / MIB * 1000 / connected:.1f} MiB)"
    )
    print(
        f"  CPU at idle ({figures['idle_seconds']:.0f} s, {connected} sockets,"
        f" {connected / args.ping_seconds:.0f} pings/s), percent of one core:"
        f" {cpu_line(figures['idle_cpu'], figures['idle_seconds'])}; {figures['idle_machine']}"
    )
    pings = connected * figures["idle_seconds"] / args.ping_seconds  # expected in the window
    print(
        f"  idle CPU per ping ({pings:.0f} expected in the window): ASGI server"
        f" {1000 * figures['idle_cpu'].get('ASGI server', 0.0) / max(pings, 1):.2f} ms,"
        f" PostgreSQL {1000 * figures['idle_cpu'].get(StackCpu.OWN, 0.0) / max(pings, 1):.2f} ms"
    )
    if "latency" in figures:
        latency = figures["latency"]
        print(
            f"  offers: {figures['offers']}/{figures['tickets']} tickets offered at {args.rate}/s"
            f" for {args.seconds} s (after {args.warmup} s of warm-up),"
            f" {figures['accepted']} accepted over the sockets"
        )
        print(
            f"  creation request -> offer frame  : p50 {latency[50]:.1f} ms,"
            f" p95 {latency[95]:.1f} ms, p99 {latency[99]:.1f} ms"
            f" (mean {figures['latency_mean']:.1f}, max {figures['latency_max']:.1f})"
        )
        print(
            f"  creation request -> 201 response : p50 {figures['http'][50]:.1f} ms,"
            f" p99 {figures['http'][99]:.1f} ms"
        )
        print(
            f"  CPU, offers ({figures['offers_seconds']:.0f} s), percent of one core:"
            f" {cpu_line(figures['offers_cpu'], figures['offers_seconds'])};"
            f" {figures['offers_machine']}"
        )

        def added(part: str) -> float:
            """CPU ms per ticket over the idle rate: what a ticket costs beyond the pings."""
            busy = figures["offers_cpu"].get(part, 0.0) / figures["offers_seconds"]
            idle = figures["idle_cpu"].get(part, 0.0) / figures["idle_seconds"]
            return 1000 * (busy - idle) * figures["offers_seconds"] / max(figures["offers"], 1)

        print(
            "  CPU per ticket offered, beyond the idle rate:"
            f" ASGI server {added('ASGI server'):.1f} ms,"
            f" dispatch worker {added('dispatch worker'):.1f} ms,"
            f" PostgreSQL {added(StackCpu.OWN):.1f} ms, load generator"
            f" {added('load generator'):.1f} ms"
        )
        print(
            f"  database: the stack held {figures['held_connections']} connections after the"
            f" idle window; it opened {figures['idle_sessions']} during the idle window and"
            f" {figures['offers_sessions']} during the offers (a stack in service opens none)"
        )
        print(f"  still connected at the end: {figures['still_connected']}/{connected}")
    print(f"  errors: {sum(figures['errors'].values())} {figures['errors']}")
    print(f"  (logs: {workdir}/stack.log)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sockets", type=int, default=5000, help="agents connected")
    parser.add_argument("--rate", type=int, default=10, help="tickets per second")
    parser.add_argument("--seconds", type=int, default=20, help="of offers, measured")
    parser.add_argument(
        "--warmup", type=int, default=3, help="seconds at the same rate before measuring"
    )
    parser.add_argument("--idle-seconds", type=float, default=20, help="of idle, measured")
    parser.add_argument(
        "--ping-seconds", type=float, default=20, help="between an agent's pings (console: 20)"
    )
    parser.add_argument("--web-workers", type=int, default=2, help="ASGI server processes")
    parser.add_argument("--port", type=int, default=8793)
    parser.set_defaults(server="uvicorn")
    args = parser.parse_args()
    if args.sockets < 1 or args.rate < 1 or args.seconds < 1 or args.ping_seconds <= 0:
        parser.error("--sockets, --rate, --seconds and --ping-seconds must be positive")

    # This process holds every client socket; a web process may be handed all
    # of the server's (the kernel does not share them out evenly).
    needed = args.sockets + SPARE_FDS
    soft, hard = raise_file_limit(needed)
    if soft != resource.RLIM_INFINITY and soft < needed:
        print(
            f"sockets bench: {args.sockets} sockets need {needed} open files per process, and"
            f" the hard limit is {hard} (ulimit -Hn): raise it, or lower --sockets"
        )
        return 2

    env = {
        **bench_env(args, DATABASE, REDIS_DB),
        # Connecting thousands of agents a few at a time takes a minute or more:
        # the one-time socket tickets issued at seeding must outlive that, and
        # the sweeper must not take an agent offline for want of a socket
        # before its turn to connect comes (an agent going online from the
        # console opens its socket at once).
        "REALTIME_TICKET_TTL_SECONDS": "3600",
        "PRESENCE_GRACE_SECONDS": "3600",
    }
    speed_ms = MachineMeter.speed_ms()  # before anything of the stack runs
    print(
        f"sockets bench: {args.sockets} agents on /ws/agent/, each pinging every"
        f" {args.ping_seconds:g} s; idle {args.idle_seconds:g} s; then {args.rate} tickets/s"
        f" for {args.seconds} s (after {args.warmup} s of warm-up); open files {soft}",
        flush=True,
    )
    django_on(env)
    seeding = time.perf_counter()
    credentials, customers = seed(args.sockets)
    from django.db import connection, connections

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # planner statistics, as autovacuum keeps them in service
    connections.close_all()
    print(
        f"  ... {args.sockets} agents seeded in {time.perf_counter() - seeding:.1f} s",
        file=sys.stderr,
        flush=True,
    )

    workdir = tempfile.mkdtemp(prefix="humanline-bench-")
    # A SIGTERM (timeout, CI) unwinds through ``finally`` and stops the stack too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    processes = start_stack(env, args, workdir)
    try:
        wait_for_server(args.port, workdir)
        cpu = StackCpu({part: p.pid for part, p in zip(STACK_PARTS, processes, strict=True)})
        sessions = SessionMeter(env["DATABASE_URL"])
        try:
            free, most = free_connections(sessions)
            if free < LOW_CONNECTIONS:
                print(
                    f"  ... PostgreSQL has {free} of {most} connections free with the stack"
                    " started: other clients hold the rest, and the stack may be refused some",
                    file=sys.stderr,
                    flush=True,
                )
            figures = run_loop(load(args, credentials, customers, cpu, sessions, processes[0].pid))
        finally:
            sessions.close()
    finally:
        stop(processes)
    report(args, figures, speed_ms, workdir)
    return 0 if figures["connected"] else 1


if __name__ == "__main__":
    sys.exit(main())
