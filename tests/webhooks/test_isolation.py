"""A slow or failing receiver holds up no request and no dispatch: deliveries run on
workers of their own in production, and on a thread of their own in the embedded
default."""

import shlex
import threading
import time
from pathlib import Path

import pytest
from celery import signals
from celery.contrib.testing.worker import start_worker
from django.conf import settings

from config import embedded
from config.celery import app as celery_app
from marketplace.services.dispatch import sweep
from tests.tickets.factories import new_ticket_body
from tests.webhooks.receiver import Receiver
from tickets import services as tickets
from tickets.models import Ticket
from webhooks import services
from webhooks.models import Delivery, DeliveryStatus

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    if server.release is not None:
        server.release.set()
    server.close()


@pytest.fixture
def bot(staff, receiver):
    """An integration's API client, with an endpoint listening on the receiver."""
    from rest_framework.test import APIClient

    raw, key = tickets.integration_key_create(actor=staff, integration_name="Acme chatbot")
    services.endpoint_create(
        actor=staff, integration_id=key.integration_id, url=receiver.url, events=["ticket.assigned"]
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return client


def assigned(bot, agent) -> Ticket:
    response = bot.post("/api/v1/tickets/", new_ticket_body(customer={"external_id": "c"}))
    assert response.status_code == 201, response.json()
    return tickets.ticket_assign(ticket_id=response.json()["id"], agent_id=agent.pk)


def _queues(process_line: str) -> set[str]:
    words = shlex.split(process_line)
    return set(words[words.index("-Q") + 1].split(",")) if "-Q" in words else set()


def test_deliveries_are_served_by_workers_that_serve_nothing_else():
    processes = dict(
        line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line
    )
    workers = {name: _queues(line) for name, line in processes.items() if " worker " in line}
    webhooks = settings.CELERY_WEBHOOKS_QUEUE

    serving = [name for name, queues in workers.items() if webhooks in queues]
    assert serving, "no worker in the Procfile takes webhook deliveries"
    for name in serving:
        assert workers[name] == {webhooks}, f"{name} also serves {workers[name] - {webhooks}}"
    # Dispatch, its sweep and the rest are served by some worker.
    served = set().union(*workers.values())
    assert {settings.CELERY_DISPATCH_QUEUE, settings.CELERY_TASK_DEFAULT_QUEUE} <= served


@pytest.mark.django_db(transaction=True)
def test_a_delivery_is_published_to_the_webhooks_queue_and_sent_by_its_worker(
    bot, agent, receiver, settings
):
    # given: tasks go through the broker, and we note where each is published
    published: list[tuple[str, str]] = []

    def note(sender=None, routing_key=None, **kwargs):
        published.append((sender, routing_key))

    # Celery's configuration is read from Django's settings once: take its value
    # before changing those, to put it back after.
    eager, celery_app.conf.task_always_eager = celery_app.conf.task_always_eager, False
    settings.CELERY_TASK_ALWAYS_EAGER = False
    signals.before_task_publish.connect(note)
    try:
        # when: the integration's ticket is assigned, and committed
        assigned(bot, agent)

        # then: its delivery went to the webhooks queue
        deliveries = [queue for task, queue in published if task == "webhooks.tasks.deliver"]
        assert deliveries == [settings.CELERY_WEBHOOKS_QUEUE]

        # and a worker serving that queue alone sends it
        with start_worker(
            celery_app,
            pool="solo",
            perform_ping_check=False,
            queues=[settings.CELERY_WEBHOOKS_QUEUE],
            loglevel="WARNING",
        ):
            deadline = time.monotonic() + 20
            while Delivery.objects.get().status != DeliveryStatus.SUCCEEDED:
                assert time.monotonic() < deadline, "the webhooks worker sent nothing"
                time.sleep(0.1)  # waiting for the worker thread's commit
    finally:
        signals.before_task_publish.disconnect(note)
        celery_app.conf.task_always_eager = eager
    assert [e["type"] for e in receiver.events()] == ["ticket.assigned"]


def test_the_embedded_default_sends_deliveries_on_a_thread_of_their_own():
    jobs = {name: [job for _, job in entries] for name, entries in embedded.loops().items()}
    (delivering,) = [name for name, run in jobs.items() if services.deliver_due in run]
    assert jobs[delivering] == [services.deliver_due]
    assert any(sweep in run for run in jobs.values())


@pytest.mark.django_db(transaction=True)
def test_in_the_embedded_default_dispatch_sweeps_on_while_a_receiver_hangs(
    bot, agent, receiver, settings
):
    # given: a delivery due to a receiver that will not answer until told, and
    # an attempt allowed to wait for it longer than the test looks
    settings.HUMANLINE = {**settings.HUMANLINE, "WEBHOOK_TIMEOUT_SECONDS": 30.0}
    assigned(bot, agent)
    receiver.release = threading.Event()
    swept: list[float] = []

    def counted_sweep():
        swept.append(time.monotonic())
        return sweep()

    threads = embedded.loops()
    for name, jobs in threads.items():
        threads[name] = [(every, counted_sweep if job is sweep else job) for every, job in jobs]

    # when: the embedded loops run, and the receiver holds the delivery's request
    stop, started = embedded.run_loops(threads)
    try:
        assert receiver.holding.wait(20), "the delivery was not sent"
        held_at = time.monotonic()
        deadline = held_at + 10
        # then: dispatch's sweep keeps its pace all the same
        while len([t for t in swept if t > held_at]) < 2:
            assert time.monotonic() < deadline, "dispatch's sweep stopped while the receiver hung"
            time.sleep(0.1)  # waiting for the sweeper thread
        assert not receiver.release.is_set()
    finally:
        receiver.release.set()
        stop.set()
        for thread in started:
            thread.join(timeout=30)
    assert Delivery.objects.get().status == DeliveryStatus.SUCCEEDED
