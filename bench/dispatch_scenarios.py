"""Dispatch scenarios where the promise is at stake, on the production-like stack.

Run by ``make bench`` after the rate benchmark, with the same stack (uvicorn,
a dispatch worker, a worker for everything else, Celery beat with its sweep
every second) on PostgreSQL and Redis, agents on real WebSockets:

- **small pool**: 2 agents online and 20 tickets; the agents decline every
  ticket the first time it is offered to them and accept it the second time.
  Every ticket is passed on by both, so it can only come back after the
  re-offer cool-down: prints the time until all 20 are assigned, which the
  cool-down bounds from below.
- **unserved lane**: 1,000 tickets in a language nobody online speaks, queued
  before one ticket in English; the one English-speaking agent goes online.
  Prints the time from their presence request to the English ticket's offer
  frame: a pass serves the English lane whatever waits in another.

Usage: ``python bench/dispatch_scenarios.py [--cooldown 15]``.  Uses the
dispatch bench's database (``humanline_bench``) and Redis db 7, recreated for
each scenario.
"""

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from argparse import Namespace
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.dispatch import (  # noqa: E402
    HttpPool,
    Run,
    bench_env,
    recreate_database,
    run_loop,
    set_presence,
    start_stack,
    stop,
    wait_until,
)

PORT = 8792
SMALL_POOL_TICKETS = 20
UNSERVED_TICKETS = 1000


def seed_agents(count: int, *, online: bool) -> list[tuple[str, str]]:
    """English generalists; each one's (one-time socket ticket, API token)."""
    from rest_framework.authtoken.models import Token

    from agents import presence
    from agents.models import Agent, AgentLanguage, AgentStatus, Role, Skill, User
    from agents.services import realtime_ticket_issue

    general = Skill.objects.get(slug="general")
    credentials = []
    for i in range(count):
        user = User.objects.create(
            email=f"scenario-agent-{i}@example.org", name=f"Agent {i}", role=Role.AGENT
        )
        agent = Agent.objects.create(
            user=user,
            status=AgentStatus.APPROVED,
            cohort="student",
            country="PT",
            time_zone="Europe/Lisbon",
            capacity=20,
        )
        AgentLanguage.objects.create(agent=agent, code="en")
        agent.skills.add(general)
        if online:
            presence.agent_presence_set(agent_id=agent.pk, status="online")
        credentials.append(
            (realtime_ticket_issue(user=user)[0], Token.objects.create(user=user).key)
        )
    return credentials


def customer_token() -> str:
    from rest_framework.authtoken.models import Token

    from agents.models import User

    customer = User.objects.create_user(
        email="scenario-customer@example.org", password=None, name="Scenario Customer"
    )
    return Token.objects.create(user=customer).key


async def agent_socket(ticket: str, on_message) -> "asyncio.Task":
    """An agent's console: connects, acknowledges each offer, hands every frame on."""
    import websockets

    url = f"ws://127.0.0.1:{PORT}/ws/agent/?ticket={ticket}"
    ws = await websockets.connect(url, additional_headers={"Origin": f"http://127.0.0.1:{PORT}"})

    async def listen():
        async for raw in ws:
            message = json.loads(raw)
            if message.get("type") == "offer.created":
                await ws.send(
                    json.dumps({"type": "offer.seen", "offer_id": message["offer"]["id"]})
                )
            await on_message(ws, message)

    return asyncio.create_task(listen())


async def small_pool(credentials, token: str) -> dict:
    declined: dict[int, set[int]] = {i: set() for i in range(len(credentials))}
    assigned: set[int] = set()
    run = Run()

    def answer(me: int):
        async def on_message(ws, message):
            if message.get("type") != "offer.created":
                return
            offer = message["offer"]
            ticket = offer["ticket"]["id"]
            if ticket in declined[me]:
                await ws.send(json.dumps({"type": "offer.accept", "offer_id": offer["id"]}))
                assigned.add(ticket)
            else:
                declined[me].add(ticket)
                reply = {"type": "offer.decline", "offer_id": offer["id"], "reason": "busy"}
                await ws.send(json.dumps(reply))

        return on_message

    sockets = [await agent_socket(ticket, answer(i)) for i, (ticket, _) in enumerate(credentials)]
    client = HttpPool("127.0.0.1", PORT, 4)
    await client.open(4)
    started = time.perf_counter()
    for n in range(SMALL_POOL_TICKETS):
        status, _ = await client.post(
            "/api/v1/tickets/",
            {"subject": f"Small pool {n}", "body": "Help", "category": "general"},
            token,
        )
        if status != 201:
            run.error(f"http:{status}")
    await wait_until(lambda: len(assigned) >= SMALL_POOL_TICKETS, timeout=300)
    seconds = time.perf_counter() - started
    for task in sockets:
        task.cancel()
    client.close()
    return {
        "assigned": len(assigned),
        "seconds": seconds,
        "declines": sum(len(d) for d in declined.values()),
        "errors": run.error_kinds,
    }


def queue_unserved(count: int) -> int:
    """``count`` Maltese tickets, then one English ticket, all queued a while ago."""
    from django.utils import timezone

    from agents.models import User
    from tickets.models import Ticket, TicketEvent

    customer = User.objects.get(email="scenario-customer@example.org")
    start = timezone.now() - timedelta(seconds=100)
    tickets = Ticket.objects.bulk_create(
        [
            Ticket(
                customer=customer,
                subject=f"Maltese {n}" if n < count else "English",
                body="Help",
                language="mt" if n < count else "en",
                category="general",
                queued_at=start + timedelta(milliseconds=n),
                created_at=start + timedelta(milliseconds=n),
                status_changed_at=start + timedelta(milliseconds=n),
            )
            for n in range(count + 1)
        ]
    )
    TicketEvent.objects.bulk_create(
        [TicketEvent(ticket=t, to_status="queued", reason="Opened.") for t in tickets]
    )
    return tickets[-1].pk


async def unserved_lane(credentials, english: int) -> dict:
    offered = asyncio.Event()
    seen: dict[str, float] = {}
    run = Run()

    async def on_message(ws, message):
        if message.get("type") == "offer.created" and message["offer"]["ticket"]["id"] == english:
            seen["offer"] = time.perf_counter()
            offered.set()

    ((ticket, api_token),) = credentials
    socket = await agent_socket(ticket, on_message)
    client = HttpPool("127.0.0.1", PORT, 1)
    await client.open(1)
    started = time.perf_counter()
    await set_presence(client, api_token, "online", run)
    try:
        await asyncio.wait_for(offered.wait(), timeout=60)
    except TimeoutError:
        run.error("no offer within 60 s")
    socket.cancel()
    client.close()
    return {
        "seconds": seen["offer"] - started if "offer" in seen else None,
        "errors": run.error_kinds,
    }


def with_stack(env: dict, scenario):
    """Start the stack on a fresh database, run ``scenario()`` against it, stop it."""
    import httpx

    workdir = tempfile.mkdtemp(prefix="humanline-scenario-")
    processes = start_stack(env, Namespace(server="uvicorn", port=PORT, web_workers=2), workdir)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{PORT}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the ASGI server did not start; see {workdir}")
            time.sleep(0.2)  # polling the server's health endpoint until it answers
        time.sleep(2)  # let the workers and beat connect to the broker
        return scenario()
    finally:
        stop(processes)


def fresh(env: dict) -> None:
    from django.db import connections

    connections.close_all()
    recreate_database(env)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cooldown", type=int, default=15, help="REOFFER_COOLDOWN_SECONDS")
    args = parser.parse_args()
    env = {**bench_env(args), "REOFFER_COOLDOWN_SECONDS": str(args.cooldown)}
    # This process drops and re-creates the database between scenarios: it keeps
    # no connection between them.
    os.environ.update({**env, "DB_CONN_MAX_AGE": "0"})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.db import connections

    print("dispatch scenarios (uvicorn x2, a dispatch worker, a worker, beat; PostgreSQL, Redis)")

    fresh(env)
    credentials, token = seed_agents(2, online=True), customer_token()
    connections.close_all()
    small = with_stack(env, lambda: run_loop(small_pool(credentials, token)))
    print(
        f"  small pool: 2 agents, {SMALL_POOL_TICKETS} tickets, each declined by both the first"
        f" time: {small['assigned']}/{SMALL_POOL_TICKETS} assigned in {small['seconds']:.1f} s"
        f" ({small['declines']} declines; re-offer cool-down {args.cooldown} s); errors:"
        f" {small['errors'] or 0}"
    )

    fresh(env)
    credentials = seed_agents(1, online=False)
    customer_token()
    english = queue_unserved(UNSERVED_TICKETS)
    connections.close_all()
    lane = with_stack(env, lambda: run_loop(unserved_lane(credentials, english)))
    took = f"{lane['seconds'] * 1000:.0f} ms" if lane["seconds"] is not None else "never"
    print(
        f"  unserved lane: {UNSERVED_TICKETS} tickets in a language nobody online speaks ahead"
        f" of one in English; the English agent goes online: offered in {took}; errors:"
        f" {lane['errors'] or 0}"
    )
    ok = small["assigned"] == SMALL_POOL_TICKETS and lane["seconds"] is not None
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
