"""The load: customers, agents and staff using the public API and real WebSockets.

Customers open tickets with an ``Idempotency-Key`` (retried with the same key
after any failure, as the help centre does) and chat; agents hold a socket on
``/ws/agent/``, acknowledge and accept every offer through the API, reply,
and resolve a moment later; on every reconnect they ask for a ``resync`` and
take up what the snapshot shows (pending offers, assigned tickets), as the
console does.  A staff member closes a pay period.

Every answer that is not what a healthy server gives (a 5xx, a connection
refused or reset, a timeout) is recorded with its time, so that the report
can say which fault caused it.  Clients are spread over the two web
processes; a client whose process does not answer tries the other one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import time
from dataclasses import dataclass, field
from datetime import datetime

import httpx
import websockets

CATEGORIES = ["general", "payments", "refunds"]

# A line per request would bury the table.
logging.getLogger("httpx").setLevel(logging.WARNING)


@dataclass
class Failure:
    at: float  # epoch seconds
    what: str  # "POST /api/v1/tickets/" or "socket /ws/agent/"
    port: int  # index of the web process the client used
    status: int | None  # an HTTP status, or None when no answer came
    error: str = ""


@dataclass
class Agent:
    index: int
    agent_id: int
    token: str
    ws: object = None
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    working: set[int] = field(default_factory=set)  # tickets being handled
    accepting: set[int] = field(default_factory=set)  # offers being answered


@dataclass
class Tally:
    opened: int = 0
    replayed: int = 0
    too_many: int = 0
    messages: int = 0
    offer_frames: int = 0
    accepted: int = 0
    accept_refused: int = 0
    resolved: int = 0
    connects: int = 0
    dropped: int = 0
    resyncs: int = 0
    back_online: int = 0
    period_closed: bool = False


class Load:
    """Runs until ``stop()``; everything it saw is on the instance afterwards."""

    def __init__(
        self,
        *,
        bases: list[str],
        agents: list[tuple[int, str]],
        customers: list[str],
        staff: str,
        period_id: int | None,
        hold: tuple[float, float] = (0.5, 2.0),
        pause: tuple[float, float] = (2.0, 5.0),
        ping_seconds: float = 5.0,
    ):
        self.bases = bases
        self.agents = [Agent(i, agent_id, token) for i, (agent_id, token) in enumerate(agents)]
        self.customers = customers
        self.staff = staff
        self.period_id = period_id
        self.hold, self.pause, self.ping_seconds = hold, pause, ping_seconds
        self.failures: list[Failure] = []
        self.keys: dict[str, set[int]] = {}  # idempotency key -> ticket ids answered
        self.offer_frames: list[tuple[float, float]] = []  # (received, offer created), epoch
        self.tally = Tally()
        self.stopping = asyncio.Event()
        self.client: httpx.AsyncClient | None = None
        self.tasks: list[asyncio.Task] = []

    # --- HTTP with fail-over --------------------------------------------------------

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str,
        prefer: int,
        body: dict | None = None,
        headers: dict | None = None,
        patience: float = 60.0,
    ) -> httpx.Response | None:
        """The first answer below 500, retrying failures; None if none came in time.

        Only requests that are safe to repeat are sent here: ticket creation
        carries its idempotency key, and an answer to an offer or a resolve
        repeated is refused (409), never done twice.
        """
        deadline = time.monotonic() + patience
        port = prefer
        while True:
            try:
                response = await self.client.request(
                    method,
                    self.bases[port] + path,
                    json=body,
                    headers={"Authorization": f"Token {token}", **(headers or {})},
                )
            except httpx.TransportError as exc:
                self._fail(method, path, port, None, type(exc).__name__)
                port = 1 - port  # that process may be gone: try the other
            else:
                if response.status_code < 500:
                    return response
                self._fail(method, path, port, response.status_code, _error_code(response))
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(random.uniform(0.2, 0.6))

    def _fail(self, method: str, path: str, port: int, status: int | None, error: str) -> None:
        template = re.sub(r"/\d+/", "/{id}/", path.split("?")[0])
        self.failures.append(Failure(time.time(), f"{method} {template}", port, status, error))

    # --- customers ------------------------------------------------------------------

    async def customer(self, index: int, token: str) -> None:
        prefer, number = index % 2, 0
        await asyncio.sleep(random.uniform(0, self.pause[1]))
        while not self.stopping.is_set():
            number += 1
            key = f"chaos-{index}-{number}"
            body = {
                "subject": f"Chaos {key}",
                "body": "My card payment was declined twice; can someone look?",
                "category": random.choice(CATEGORIES),
                "language": "en",
            }
            response = await self.call(
                "POST",
                "/api/v1/tickets/",
                token=token,
                prefer=prefer,
                body=body,
                headers={"Idempotency-Key": key},
            )
            if response is not None and response.status_code == 201:
                ticket_id = response.json()["id"]
                self.keys.setdefault(key, set()).add(ticket_id)
                if response.headers.get("Idempotent-Replayed") == "true":
                    self.tally.replayed += 1
                else:
                    self.tally.opened += 1
                await self.post_message(ticket_id, token, prefer, "Any news on this?")
            elif response is not None and response.status_code == 200:
                # A retry answered from the first request's ticket.
                self.keys.setdefault(key, set()).add(response.json()["id"])
                self.tally.replayed += 1
            elif response is not None and response.status_code == 429:
                self.tally.too_many += 1
            await self._pause(*self.pause)

    async def post_message(self, ticket_id: int, token: str, prefer: int, text: str) -> None:
        response = await self.call(
            "POST",
            f"/api/v1/tickets/{ticket_id}/messages/",
            token=token,
            prefer=prefer,
            body={"body": text},
            patience=20,
        )
        if response is not None and response.status_code == 201:
            self.tally.messages += 1

    async def _pause(self, low: float, high: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), random.uniform(low, high))

    # --- agents ---------------------------------------------------------------------

    async def agent(self, agent: Agent) -> None:
        prefer = agent.index % 2
        while not self.stopping.is_set():
            issued = await self.call(
                "POST", "/api/v1/realtime/tickets/", token=agent.token, prefer=prefer
            )
            if issued is None or issued.status_code != 201:
                await self._pause(0.5, 1.0)
                continue
            host = self.bases[prefer].removeprefix("http://")
            try:
                ws = await websockets.connect(
                    f"ws://{host}/ws/agent/?ticket={issued.json()['ticket']}",
                    additional_headers={"Origin": self.bases[prefer]},
                    open_timeout=10,
                    max_queue=None,
                )
            except (OSError, TimeoutError, websockets.WebSocketException) as exc:
                self._fail("socket", "/ws/agent/", prefer, None, type(exc).__name__)
                prefer = 1 - prefer
                await self._pause(0.3, 0.8)
                continue
            agent.ws = ws
            self.tally.connects += 1
            pinger = asyncio.create_task(self._ping(ws))
            try:
                # The console asks for the whole state after every (re)connect.
                await ws.send(json.dumps({"type": "resync"}))
                self.tally.resyncs += 1
                async for raw in ws:
                    await self._on_frame(agent, json.loads(raw), prefer)
            except websockets.ConnectionClosed:
                pass
            finally:
                pinger.cancel()
                agent.ws = None
                agent.connected.clear()
            if not self.stopping.is_set():
                await self._pause(0.2, 0.6)
                # Whichever process answers next; a dropped socket reconnects where it can.
                prefer = random.choice((0, 1))
        with contextlib.suppress(Exception):
            if agent.ws is not None:
                await agent.ws.close()

    async def _ping(self, ws) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                await asyncio.sleep(self.ping_seconds * random.uniform(0.8, 1.2))
                await ws.send(json.dumps({"type": "ping"}))

    async def _on_frame(self, agent: Agent, message: dict, prefer: int) -> None:
        kind = message.get("type")
        if kind == "agent.snapshot":
            agent.connected.set()
            if self.stopping.is_set():
                return
            if message["agent"]["presence"] != "online":
                await self.go_online(agent, prefer)
            for offer in message["pending_offers"]:
                self._spawn(self.answer(agent, offer["id"], offer["ticket"]["id"], prefer))
            for ticket in message["assigned_tickets"]:
                self._spawn(self.work(agent, ticket["id"], prefer))
        elif kind == "offer.created":
            offer = message["offer"]
            self.tally.offer_frames += 1
            made = datetime.fromisoformat(offer["created_at"]).timestamp()
            self.offer_frames.append((time.time(), made))
            if not self.stopping.is_set():
                with contextlib.suppress(websockets.ConnectionClosed):
                    await agent.ws.send(json.dumps({"type": "offer.seen", "offer_id": offer["id"]}))
                self._spawn(self.answer(agent, offer["id"], offer["ticket"]["id"], prefer))
        elif (
            kind == "presence.changed"
            and message.get("presence") != "online"
            and not self.stopping.is_set()
        ):
            # Set away by the platform (missed offers): the agent switches back.
            await self.go_online(agent, prefer)

    async def go_online(self, agent: Agent, prefer: int) -> None:
        response = await self.call(
            "POST",
            "/api/v1/agents/me/presence/",
            token=agent.token,
            prefer=prefer,
            body={"status": "online"},
        )
        if response is not None and response.status_code == 200:
            self.tally.back_online += 1

    def _spawn(self, coroutine) -> None:
        task = asyncio.create_task(coroutine)
        self.tasks.append(task)

    async def answer(self, agent: Agent, offer_id: int, ticket_id: int, prefer: int) -> None:
        if offer_id in agent.accepting:
            return
        agent.accepting.add(offer_id)
        response = await self.call(
            "POST", f"/api/v1/offers/{offer_id}/accept/", token=agent.token, prefer=prefer
        )
        if response is not None and response.status_code == 200:
            self.tally.accepted += 1
            await self.work(agent, ticket_id, prefer)
        else:
            self.tally.accept_refused += 1
            # An answer lost on its way back may have been taken: ask what is true.
            await self.resync(agent)

    async def work(self, agent: Agent, ticket_id: int, prefer: int) -> None:
        """Reply to the customer, then resolve a moment later."""
        if ticket_id in agent.working or self.stopping.is_set():
            return
        agent.working.add(ticket_id)
        try:
            await self.post_message(ticket_id, agent.token, prefer, "Hello, I am looking at it.")
            await self._pause(*self.hold)
            if self.stopping.is_set():
                return
            response = await self.call(
                "POST", f"/api/v1/tickets/{ticket_id}/resolve/", token=agent.token, prefer=prefer
            )
            if response is not None and response.status_code == 200:
                self.tally.resolved += 1
        finally:
            agent.working.discard(ticket_id)

    async def resync(self, agent: Agent) -> None:
        if agent.ws is not None:
            with contextlib.suppress(websockets.ConnectionClosed):
                await agent.ws.send(json.dumps({"type": "resync"}))
                self.tally.resyncs += 1

    # --- staff ----------------------------------------------------------------------

    async def close_period(self) -> None:
        """Staff list the pay periods and close the one that ended (retried until it sticks)."""
        if self.period_id is None:
            return
        listed = await self.call("GET", "/api/v1/admin/pay-periods/", token=self.staff, prefer=0)
        if listed is None or listed.status_code != 200:
            return
        ids = [p["id"] for p in listed.json()["results"]]
        if self.period_id not in ids:
            return
        closed = await self.call(
            "POST",
            f"/api/v1/admin/pay-periods/{self.period_id}/close/",
            token=self.staff,
            prefer=1,
        )
        self.tally.period_closed = closed is not None and closed.json().get("status") == "closed"

    # --- faults the load itself takes part in ------------------------------------------

    async def drop_sockets(self, share: float) -> tuple[int, float | None]:
        """Cut ``share`` of the agents' sockets without a closing handshake.

        Returns how many were cut and the seconds until all of them had their
        snapshot again (None if not within 30 s).
        """
        live = [a for a in self.agents if a.ws is not None and a.connected.is_set()]
        chosen = random.sample(live, max(1, round(len(live) * share))) if live else []
        started = time.monotonic()
        for agent in chosen:
            agent.connected.clear()
            agent.ws.transport.abort()
        self.tally.dropped += len(chosen)
        try:
            async with asyncio.timeout(30):
                await asyncio.gather(*(a.connected.wait() for a in chosen))
        except TimeoutError:
            return len(chosen), None
        return len(chosen), time.monotonic() - started

    # --- the run --------------------------------------------------------------------

    async def start(self) -> None:
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(15.0, connect=3.0),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=100),
        )
        for agent in self.agents:
            self.tasks.append(asyncio.create_task(self.agent(agent)))
        # Every agent holds a socket before the customers come.
        async with asyncio.timeout(60):
            await asyncio.gather(*(a.connected.wait() for a in self.agents))
        for index, token in enumerate(self.customers):
            self.tasks.append(asyncio.create_task(self.customer(index, token)))

    async def stop(self, *, offline: bool = True) -> None:
        """Customers and agents stop; agents go offline so that nothing new is offered."""
        self.stopping.set()
        if offline:
            await asyncio.gather(
                *(
                    self.call(
                        "POST",
                        "/api/v1/agents/me/presence/",
                        token=a.token,
                        prefer=a.index % 2,
                        body={"status": "offline"},
                    )
                    for a in self.agents
                )
            )
        for agent in self.agents:
            if agent.ws is not None:
                with contextlib.suppress(Exception):
                    await agent.ws.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.client.aclose()


def _error_code(response: httpx.Response) -> str:
    try:
        return response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return response.text[:60]
