"""Redis may lose a message; PostgreSQL never loses a fact.

A web process and a Celery worker with its beat, as `make serve` runs them,
on a Redis server of this test's own, which the test stops and starts again.
While Redis is down a ticket is still opened (201) and an agent still goes
online; once it is back the beat's sweeper offers the ticket, with nobody
doing anything.  A Redis that accepts connections and never answers (its
process stopped, its host gone quiet) holds a request only for its clients'
timeouts (``REDIS_CONNECT_TIMEOUT``, ``REDIS_SOCKET_TIMEOUT``).
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from django.db import connection
from rest_framework.authtoken.models import Token

from marketplace.models import Offer
from tests.factories import AgentFactory
from tests.tickets.factories import new_ticket_body
from tickets.models import Ticket

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres("the web and worker processes share the test database"),
    pytest.mark.redis("runs a Redis server of its own beside the suite's"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(check, *, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)  # polling another process, not pacing the system under test
    raise AssertionError(f"waited {seconds} s for {what}")


class PrivateRedis:
    """A throwaway redis-server on a loopback port, stopped and started at will."""

    def __init__(self, tmp_path: Path):
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = tmp_path
        self.process = None

    def start(self):
        binary = shutil.which("redis-server")
        assert binary, "redis-server is required (the CI machine runs Redis 7)"
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for(self._answers, seconds=10, what="redis-server to answer")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self):
        self.process.kill()
        self.process.wait(timeout=10)

    @contextmanager
    def frozen(self):
        """The server stopped (SIGSTOP): the kernel still accepts connections, nothing answers."""
        self.process.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self.process.send_signal(signal.SIGCONT)


@pytest.fixture
def redis_server(tmp_path):
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    if server.process.poll() is None:
        server.stop()


def _environment(redis_url: str) -> dict:
    database = connection.settings_dict
    return {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:"
            f"{database['PORT'] or 5432}/{database['NAME']}"
        ),
        "REDIS_URL": redis_url,
        "HUMANLINE_TESTING": "1",
        "CELERY_TASK_ALWAYS_EAGER": "0",
        # Dispatch through the passes alone (no offer made in the request), so
        # that what reaches the agent here came by way of the sweeper.
        "DISPATCH_INLINE": "0",
        "DB_CONN_MAX_AGE": "0",
    }


@pytest.fixture
def processes(redis_server, tmp_path):
    env = _environment(redis_server.url)
    port = _free_port()
    web = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    started = []

    def start_worker():
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--beat",
                "--pool=solo",
                "--without-gossip",
                "--without-mingle",
                "-Q",
                "celery,dispatch",
                "--schedule",
                str(tmp_path / "beat-schedule"),
                "--loglevel=WARNING",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        started.append(worker)
        return worker

    base = f"http://127.0.0.1:{port}"

    def web_answers():
        try:
            return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    _wait_for(web_answers, seconds=30, what="the web process to answer")
    yield base, start_worker
    for process in [web, *started]:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def test_redis_down_a_ticket_is_opened_and_dispatched_once_redis_is_back(
    processes, redis_server, customer
):
    base, start_worker = processes
    agent = AgentFactory(languages=["en"], skills=["payments"])
    as_customer = {"Authorization": f"Token {Token.objects.create(user=customer).key}"}
    as_agent = {"Authorization": f"Token {Token.objects.create(user=agent.user).key}"}

    redis_server.stop()
    started = time.monotonic()
    opened = httpx.post(
        f"{base}/api/v1/tickets/", json=new_ticket_body(), headers=as_customer, timeout=30
    )
    online = httpx.post(
        f"{base}/api/v1/agents/me/presence/",
        json={"status": "online"},
        headers=as_agent,
        timeout=30,
    )
    took = time.monotonic() - started

    # The database's answer is the client's answer, and nobody waited long for it.
    assert opened.status_code == 201, opened.text
    assert online.status_code == 200, online.text
    assert took < 10
    ticket = Ticket.objects.get(pk=opened.json()["id"])
    assert ticket.status == "queued"
    assert not Offer.objects.exists()  # the pass could not be asked for

    redis_server.start()
    start_worker()

    offer = _wait_for(
        lambda: Offer.objects.filter(ticket=ticket).first(),
        seconds=60,
        what="the beat's sweeper to offer the ticket",
    )
    assert offer.agent_id == agent.pk
    assert Ticket.objects.filter(pk=ticket.pk).count() == 1


def timed(call) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def test_a_redis_that_never_answers_holds_a_request_only_for_its_clients_timeouts(
    processes, redis_server, customer
):
    base, _ = processes
    agent = AgentFactory(languages=["en"], skills=["payments"])
    as_customer = {"Authorization": f"Token {Token.objects.create(user=customer).key}"}
    as_agent = {"Authorization": f"Token {Token.objects.create(user=agent.user).key}"}
    presence = f"{base}/api/v1/agents/me/presence/"
    # Online while Redis answers, and the web process's connections to it opened.
    assert httpx.post(presence, json={"status": "online"}, headers=as_agent).status_code == 200

    with redis_server.frozen():
        opened, opening = timed(
            lambda: httpx.post(
                f"{base}/api/v1/tickets/", json=new_ticket_body(), headers=as_customer, timeout=60
            )
        )
        # Going offline enqueues the withdrawal of the agent's offers: a task publish.
        offline, leaving = timed(
            lambda: httpx.post(presence, json={"status": "offline"}, headers=as_agent, timeout=60)
        )
        ready, probing = timed(lambda: httpx.get(f"{base}/readyz", timeout=60))

    # Each Redis touch of a request gives up after its timeout, and the
    # database's answer is the client's answer.  Opening touches the cache
    # twice (2 s each); a task publish waits for the broker's reply (5 s), and
    # Celery's one retry reconnects and waits twice more: 15 s.
    assert opened.status_code == 201, opened.text
    assert offline.status_code == 200, offline.text
    assert opening < 6, opening
    assert leaving < 18, leaving
    assert Ticket.objects.get(pk=opened.json()["id"]).status == "queued"
    assert (ready.status_code, ready.json()["failing"]) == (503, ["redis"])
    assert probing < 3
