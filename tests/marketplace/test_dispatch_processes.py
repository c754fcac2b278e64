"""Across processes: an offer made by a Celery worker reaches an agent connected to the
ASGI server, through Redis (broker and channel layer), as in production."""

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import websockets
from django.db import connection

from agents import presence
from agents.models import Presence
from agents.services import realtime_ticket_issue
from config.celery import app as celery_app
from marketplace.models import Offer
from tests.factories import AgentFactory
from tests.tickets.factories import new_ticket_body

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def celery_worker_process(live_asgi, settings):
    """A real Celery worker in its own process, on a private queue of the real Redis."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    database = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:"
            f"{database['PORT'] or 5432}/{database['NAME']}"
        ),
        "REDIS_URL": settings.REDIS_URL,
        "HUMANLINE_TESTING": "1",
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "DB_CONN_MAX_AGE": "0",
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-Q",
            queue,
            "--loglevel=WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    conf = celery_app.conf
    before = (conf.task_always_eager, conf.task_default_queue, conf.task_routes)
    conf.task_always_eager = False
    conf.task_default_queue = queue
    conf.task_routes = {"marketplace.tasks.dispatch": {"queue": queue}}
    yield worker
    conf.task_always_eager, conf.task_default_queue, conf.task_routes = before
    worker.terminate()
    try:
        worker.wait(timeout=15)
    except subprocess.TimeoutExpired:
        worker.kill()


@pytest.mark.redis("a Celery worker process and the ASGI server meet through Redis")
def test_an_offer_made_in_a_celery_worker_reaches_the_agent_on_the_asgi_server(
    live_asgi, celery_worker_process, customer, api
):
    agent = AgentFactory(languages=["en"], skills=["payments"])
    presence.agent_presence_set(agent_id=agent.pk, status=Presence.ONLINE)
    value, _ = realtime_ticket_issue(user=agent.user)
    ws_url = live_asgi.url.replace("http", "ws") + f"/ws/agent/?ticket={value}"
    as_customer = api.as_(customer)

    async def agent_session():
        async with websockets.connect(
            ws_url, additional_headers={"Origin": live_asgi.url}
        ) as socket:
            snapshot = json.loads(await socket.recv())
            assert snapshot["type"] == "agent.snapshot"
            # The customer opens a ticket; dispatch is a task for the worker process.
            response = await asyncio.to_thread(
                as_customer.post, "/api/v1/tickets/", new_ticket_body()
            )
            assert response.status_code == 201
            while True:
                frame = json.loads(await asyncio.wait_for(socket.recv(), timeout=30))
                if frame["type"] == "offer.created":
                    return frame, response.json()["id"]

    frame, ticket_id = asyncio.run(agent_session())
    assert frame["offer"]["ticket"]["id"] == ticket_id
    assert frame["offer"]["pay"] == {"amount": "2.50", "currency": "EUR"}
    offer = Offer.objects.get(pk=frame["offer"]["id"])
    assert offer.agent_id == agent.pk
    assert celery_worker_process.poll() is None  # the worker, not this process, made it
