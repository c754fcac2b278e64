"""Every Celery task is safe to run twice: a redelivery is harmless.

Tasks are acknowledged late and a task whose worker died goes back on the
queue (``CELERY_TASK_ACKS_LATE``, ``CELERY_TASK_REJECT_ON_WORKER_LOST``), so
any task may run a second time with the same arguments.  Each test below
gives one task real work, runs it the way a worker does (``task.apply``, its
after-commit effects included), checks that it did the work, and then runs it
again: the database, the e-mails sent, the files written and the pushes are
what the first run left (push_queue_positions alone pushes again, the same
places).  ``test_every_task_has_a_redelivery_test`` fails when a task is added
without one.
"""

import asyncio
import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from channels.layers import get_channel_layer
from django.apps import apps
from django.conf import settings
from django.core import mail

from agents import presence
from agents import services as agent_services
from agents import tasks as agent_tasks
from agents.models import Agent, Presence, RealtimeTicket
from marketplace import tasks as marketplace_tasks
from marketplace.models import (
    BookingStatus,
    EntryKind,
    LedgerEntry,
    Offer,
    OfferStatus,
    PayPeriod,
    PayrollExport,
    PayrollJobStatus,
)
from marketplace.services import dispatch, payroll, payroll_jobs
from operations import tasks as operations_tasks
from outbox import services as outbox_services
from outbox import tasks as outbox_tasks
from outbox.models import Mail
from tests.marketplace.factories import ShiftBookingFactory, ShiftSlotFactory
from tests.pay.helpers import accepted_and_resolved, online, rate
from tests.tickets.factories import TicketFactory, new_ticket_body
from tests.webhooks.receiver import Receiver
from tickets import events as ticket_events
from tickets import services as ticket_services
from tickets import tasks as ticket_tasks
from tickets.models import IdempotencyKey, Ticket, TicketStatus
from webhooks import services as webhook_services
from webhooks import tasks as webhook_tasks
from webhooks.models import Delivery

pytestmark = pytest.mark.django_db

# The apps of this repository (not the installed packages'): a new app's tasks
# are held to a redelivery test as soon as it is installed.
PROJECT_APPS = tuple(
    config.label
    for config in apps.get_app_configs()
    if Path(config.path).is_relative_to(settings.BASE_DIR)
    and "site-packages" not in Path(config.path).parts
)
MONDAY_9 = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)  # the ``clock`` fixture's standing moment

# Task name -> the test that redelivers it (filled by ``redelivers``).
COVERED: dict[str, str] = {}


def redelivers(task):
    """Mark a test as the redelivery test of ``task``."""

    def register(test):
        COVERED[task.name] = test.__name__
        return test

    return register


# --- running a task as a worker does, and what it leaves behind ---------------------------


@pytest.fixture
def deliver(django_capture_on_commit_callbacks):
    """Run a task as a worker would, with the after-commit effects of its writes."""

    def run(task, *args):
        with django_capture_on_commit_callbacks(execute=True):
            task.apply(args=args)

    return run


def database() -> dict[str, list[tuple]]:
    """Every row of every table of the project's apps."""
    rows = {}
    for label in PROJECT_APPS:
        for model in apps.get_app_config(label).get_models():
            rows[f"{label}.{model.__name__}"] = list(model.objects.order_by("pk").values_list())
    return rows


def state(*extra) -> dict:
    """What a second run must leave as the first did: the rows, the e-mails sent, ``extra``."""
    return {"database": database(), "mails sent": len(mail.outbox), "extra": extra}


class Listener:
    """A channel subscribed to groups, as a socket of a server process is: what
    was pushed to them.

    The channel lives on an event loop of its own, as a server's sockets do,
    so what is pushed meanwhile waits for it.  ``received()`` puts a marker on
    the channel and reads up to it.  Pushes are sent before a task returns
    (``config.channel_send`` waits for the send off the server), and a
    process's subscriber connection receives in the order Redis published:
    the marker comes after all of them, and reading never waits on an empty
    channel.
    """

    MARKER = {"type": "test.marker"}

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.layer = get_channel_layer()
        self.channel = self.run(self.layer.new_channel())
        self.groups: list[str] = []

    def run(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(15)

    def join(self, *groups: str) -> None:
        for group in groups:
            self.run(self.layer.group_add(group, self.channel))
            self.groups.append(group)

    def received(self) -> list[dict]:
        async def read() -> list[dict]:
            await self.layer.send(self.channel, dict(self.MARKER))
            messages = []
            while True:
                message = await asyncio.wait_for(self.layer.receive(self.channel), timeout=10)
                if message == self.MARKER:
                    return messages
                messages.append(message)

        # Sorted: the in-memory layer sends to several groups concurrently.
        return sorted(self.run(read()), key=lambda m: json.dumps(m, sort_keys=True))

    def leave(self) -> None:
        for group in self.groups:
            self.run(self.layer.group_discard(group, self.channel))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()  # the Redis layer closes this loop's connections


@pytest.fixture
def listener():
    listening = Listener()
    yield listening
    listening.leave()


def kinds(messages: list[dict]) -> list[str]:
    """The event types of agent and ticket pushes."""
    return sorted((m.get("message") or m.get("event"))["type"] for m in messages)


# --- agents -------------------------------------------------------------------------------


@redelivers(agent_tasks.purge_realtime_tickets)
def test_purge_realtime_tickets_twice_deletes_the_expired_once(customer, deliver, clock):
    agent_services.realtime_ticket_issue(user=customer)
    clock.shift(timedelta(hours=2))
    _, fresh = agent_services.realtime_ticket_issue(user=customer)

    deliver(agent_tasks.purge_realtime_tickets)
    assert list(RealtimeTicket.objects.all()) == [fresh]
    after_first = state()

    deliver(agent_tasks.purge_realtime_tickets)
    assert state() == after_first


@redelivers(agent_tasks.sweep_presence)
def test_sweep_presence_twice_sets_a_vanished_agent_offline_once(agent, deliver, clock, listener):
    online(agent)
    listener.join(f"agent.{agent.pk}")
    clock.shift(timedelta(seconds=61))  # past the grace, no socket ever opened

    deliver(agent_tasks.sweep_presence)
    agent.refresh_from_db()
    assert agent.presence == Presence.OFFLINE
    assert kinds(listener.received()) == ["presence.changed"]
    after_first = state()

    deliver(agent_tasks.sweep_presence)
    assert state() == after_first
    assert listener.received() == []


# --- tickets ------------------------------------------------------------------------------


@redelivers(ticket_tasks.push_queue_positions)
def test_push_queue_positions_twice_pushes_the_same_places(deliver, clock, listener):
    waiting = [TicketFactory(category="general") for _ in range(3)]
    listener.join(*(f"ticket.{ticket.pk}" for ticket in waiting))
    for ticket in waiting:
        ticket_events.watching(ticket.pk)  # each with its page open

    deliver(ticket_tasks.push_queue_positions, "en", "general")
    first = listener.received()
    places = sorted((m["event"]["ticket_id"], m["event"]["queue_position"]) for m in first)
    assert places == [(ticket.pk, n) for n, ticket in enumerate(waiting, start=1)]
    after_first = state()

    deliver(ticket_tasks.push_queue_positions, "en", "general")
    # A push tells what the database says; the second run says it again, the
    # same places and waits, and writes nothing.
    assert listener.received() == first
    assert state() == after_first


@redelivers(ticket_tasks.close_resolved_tickets)
def test_close_resolved_tickets_twice_closes_once(agent, deliver, clock, listener):
    ticket, _ = accepted_and_resolved(online(agent))
    clock.shift(ticket_services.reopen_window() + timedelta(minutes=1))
    listener.join(f"ticket.{ticket.pk}")  # after the clock moved: a day-old membership expires

    deliver(ticket_tasks.close_resolved_tickets)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CLOSED
    assert kinds(listener.received()) == ["ticket.status"]
    after_first = state()

    deliver(ticket_tasks.close_resolved_tickets)
    assert state() == after_first
    assert listener.received() == []


@redelivers(ticket_tasks.purge_idempotency_keys)
def test_purge_idempotency_keys_twice_deletes_the_expired_once(customer, api, deliver, clock):
    response = api.as_(customer).post(
        "/api/v1/tickets/", new_ticket_body(), format="json", HTTP_IDEMPOTENCY_KEY="first"
    )
    assert response.status_code == 201, response.json()
    clock.shift(timedelta(hours=25))
    api.as_(customer).post(
        "/api/v1/tickets/", new_ticket_body(), format="json", HTTP_IDEMPOTENCY_KEY="second"
    )

    deliver(ticket_tasks.purge_idempotency_keys)
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["second"]
    after_first = state()

    deliver(ticket_tasks.purge_idempotency_keys)
    assert state() == after_first


def two_poor_ratings(agent) -> None:
    """Two tickets rated 1, their quality task not yet run (the test's transaction
    never commits, so ``rating_submit``'s after-commit enqueue does not run)."""
    online(agent)
    for _ in range(2):
        ticket, _ = accepted_and_resolved(agent)
        rate(ticket, 1)


@redelivers(ticket_tasks.store_agent_quality)
def test_store_agent_quality_twice_keeps_the_same_score(agent, deliver, clock):
    two_poor_ratings(agent)
    assert Agent.objects.get(pk=agent.pk).quality_score == 75  # the prior alone

    deliver(ticket_tasks.store_agent_quality, agent.pk)
    assert Agent.objects.get(pk=agent.pk).quality_score == 54  # (2 + 5 * 4) / 7 on 1..5
    after_first = state()

    deliver(ticket_tasks.store_agent_quality, agent.pk)
    assert state() == after_first


@redelivers(ticket_tasks.store_quality_scores)
def test_store_quality_scores_twice_keeps_the_same_scores(agent, other_agent, deliver, clock):
    two_poor_ratings(agent)

    deliver(ticket_tasks.store_quality_scores)
    scores = dict(Agent.objects.values_list("pk", "quality_score"))
    assert scores == {agent.pk: 54, other_agent.pk: 75}
    after_first = state()

    deliver(ticket_tasks.store_quality_scores)
    assert state() == after_first


# --- marketplace: shifts and pay ----------------------------------------------------------


@redelivers(marketplace_tasks.settle_shift_attendance)
def test_settle_shift_attendance_twice_settles_and_pays_the_incentive_once(
    agent, deliver, clock, listener
):
    online(agent)
    ten = MONDAY_9 + timedelta(hours=1)
    slot = ShiftSlotFactory(
        starts_at=ten,
        ends_at=ten + timedelta(hours=1),
        incentive_kind="bonus",
        incentive_amount=Decimal("15.00"),
        incentive_currency="EUR",
    )
    booking = ShiftBookingFactory(slot=slot, agent=agent)
    listener.join(f"agent.{agent.pk}")
    clock.move_to(slot.ends_at)

    deliver(marketplace_tasks.settle_shift_attendance)
    booking.refresh_from_db()
    assert booking.status == BookingStatus.ATTENDED
    entry = LedgerEntry.objects.get(kind=EntryKind.SHIFT_INCENTIVE)
    assert (entry.booking_id, entry.amount) == (booking.pk, Decimal("15.00"))
    assert kinds(listener.received()) == ["shift.attendance"]
    after_first = state()

    deliver(marketplace_tasks.settle_shift_attendance)
    assert state() == after_first
    assert listener.received() == []


@redelivers(marketplace_tasks.ensure_pay_period)
def test_ensure_pay_period_twice_makes_one_period(db, deliver, clock):
    assert not PayPeriod.objects.exists()

    deliver(marketplace_tasks.ensure_pay_period)
    (period,) = PayPeriod.objects.all()
    assert period.starts_at <= MONDAY_9 < period.ends_at
    after_first = state()

    deliver(marketplace_tasks.ensure_pay_period)
    assert state() == after_first


def prepared_files() -> list[tuple[str, bytes]]:
    """The payroll files in private storage, with their bytes."""
    storage = payroll_jobs.export_storage()
    if not storage.exists(""):
        return []
    _, names = storage.listdir("")
    return sorted((name, storage.open(name).read()) for name in names)


@pytest.mark.parametrize("kind", ["close", "export"])
@redelivers(marketplace_tasks.run_payroll_job)
def test_run_payroll_job_twice_closes_or_exports_once(kind, agent, staff, deliver, clock):
    accepted_and_resolved(online(agent), category="payments")
    week = LedgerEntry.objects.get().period
    clock.move_to(week.ends_at)
    if kind == "export":
        payroll.pay_period_close(period_id=week.pk, actor=staff)
    # The job is queued; its enqueue waits for a commit that never comes in a test.
    job = payroll_jobs.payroll_job_start(period_id=week.pk, kind=kind, actor=staff)
    assert job.status == PayrollJobStatus.QUEUED

    deliver(marketplace_tasks.run_payroll_job, job.pk)
    job.refresh_from_db()
    week.refresh_from_db()
    assert job.status == PayrollJobStatus.DONE and week.status == "closed"
    if kind == "export":
        assert PayrollExport.objects.count() == 1
        assert [name for name, _ in prepared_files()] == [job.file_name]
    after_first = state(prepared_files())

    deliver(marketplace_tasks.run_payroll_job, job.pk)
    assert state(prepared_files()) == after_first


@redelivers(marketplace_tasks.requeue_payroll_jobs)
def test_requeue_payroll_jobs_twice_closes_the_lost_job_once(agent, staff, deliver, clock):
    accepted_and_resolved(online(agent), category="payments")
    week = LedgerEntry.objects.get().period
    clock.move_to(week.ends_at)
    # Queued, its task lost: the enqueue waits for a commit that never comes in a test.
    job = payroll_jobs.payroll_job_start(period_id=week.pk, kind="close", actor=staff)
    clock.shift(payroll_jobs.REQUEUE_AFTER)

    deliver(marketplace_tasks.requeue_payroll_jobs)
    job.refresh_from_db()
    week.refresh_from_db()
    assert job.status == PayrollJobStatus.DONE and week.status == "closed"
    after_first = state()

    deliver(marketplace_tasks.requeue_payroll_jobs)
    assert state() == after_first


# --- marketplace: dispatch ----------------------------------------------------------------


@redelivers(marketplace_tasks.dispatch)
def test_dispatch_twice_makes_one_offer(agent, deliver, clock, listener):
    online(agent)
    ticket = TicketFactory(category="payments")
    listener.join(f"agent.{agent.pk}", f"ticket.{ticket.pk}")

    deliver(marketplace_tasks.dispatch)
    assert Offer.objects.get(status=OfferStatus.PENDING).agent == agent
    assert "offer.created" in kinds(listener.received())
    after_first = state()

    deliver(marketplace_tasks.dispatch)
    assert state() == after_first
    assert listener.received() == []


@redelivers(marketplace_tasks.dispatch_sweep)
def test_dispatch_sweep_twice_makes_one_offer(agent, deliver, clock, listener):
    online(agent)
    ticket = TicketFactory(category="payments")
    listener.join(f"agent.{agent.pk}", f"ticket.{ticket.pk}")

    deliver(marketplace_tasks.dispatch_sweep)
    assert Offer.objects.get(status=OfferStatus.PENDING).ticket == ticket
    assert "offer.created" in kinds(listener.received())
    after_first = state()

    deliver(marketplace_tasks.dispatch_sweep)
    assert state() == after_first
    assert listener.received() == []


def offered(agent) -> Offer:
    """A queued ticket offered to the (online) agent."""
    ticket = TicketFactory(category="general")
    offer = dispatch.offer_make(ticket_id=ticket.pk, agent_id=agent.pk)
    assert offer is not None
    return offer


@redelivers(marketplace_tasks.expire_offers)
def test_expire_offers_twice_expires_once_and_counts_one_miss(
    agent, other_agent, deliver, clock, listener
):
    online(agent)
    offer = offered(agent)
    dispatch.offer_seen(offer_id=offer.pk, user=agent.user)
    online(other_agent)
    listener.join(f"agent.{agent.pk}", f"agent.{other_agent.pk}")
    clock.shift(timedelta(seconds=16))

    deliver(marketplace_tasks.expire_offers)
    offer.refresh_from_db()
    assert offer.status == OfferStatus.EXPIRED
    assert Agent.objects.get(pk=agent.pk).expired_streak == 1
    # The ticket went round to the next agent at once.
    assert Offer.objects.get(status=OfferStatus.PENDING).agent == other_agent
    assert kinds(listener.received()) == ["offer.created", "offer.expired"]
    after_first = state()

    deliver(marketplace_tasks.expire_offers)
    assert state() == after_first
    assert listener.received() == []


@redelivers(marketplace_tasks.withdraw_offers)
def test_withdraw_offers_twice_withdraws_once(agent, other_agent, deliver, clock, listener):
    online(agent)
    offer = offered(agent)
    online(other_agent)
    # The agent steps away; the task their leaving enqueues is run below.
    presence.agent_presence_set(agent_id=agent.pk, status=Presence.AWAY)
    listener.join(f"agent.{agent.pk}", f"agent.{other_agent.pk}")

    deliver(marketplace_tasks.withdraw_offers, agent.pk, "agent_away")
    offer.refresh_from_db()
    assert offer.status == OfferStatus.WITHDRAWN
    assert Offer.objects.get(status=OfferStatus.PENDING).agent == other_agent
    assert kinds(listener.received()) == ["offer.created", "offer.withdrawn"]
    after_first = state()

    deliver(marketplace_tasks.withdraw_offers, agent.pk, "agent_away")
    assert state() == after_first
    assert listener.received() == []


def test_withdraw_offers_redelivered_after_the_agent_came_back_leaves_their_new_offer(
    agent, deliver, clock
):
    """A redelivery may come late (a worker died; the broker hands the task on):
    by then the agent may be online again and offered new work, which is theirs."""
    online(agent)
    offered(agent)
    presence.agent_presence_set(agent_id=agent.pk, status=Presence.AWAY)
    deliver(marketplace_tasks.withdraw_offers, agent.pk, "agent_away")
    clock.shift(timedelta(minutes=1))
    online(agent)
    new = offered(agent)
    before = state()

    deliver(marketplace_tasks.withdraw_offers, agent.pk, "agent_away")

    new.refresh_from_db()
    assert new.status == OfferStatus.PENDING
    assert state() == before


@redelivers(marketplace_tasks.withdraw_ticket_offers)
def test_withdraw_ticket_offers_twice_withdraws_once(agent, deliver, clock, listener):
    online(agent)
    offer = offered(agent)
    ticket = offer.ticket
    ticket_services.ticket_cancel(ticket_id=ticket.pk, caller=ticket.customer)
    listener.join(f"agent.{agent.pk}")

    deliver(marketplace_tasks.withdraw_ticket_offers, ticket.pk)
    offer.refresh_from_db()
    assert offer.status == OfferStatus.WITHDRAWN
    assert Ticket.objects.get(pk=ticket.pk).status == TicketStatus.CANCELLED
    assert kinds(listener.received()) == ["offer.withdrawn"]
    after_first = state()

    deliver(marketplace_tasks.withdraw_ticket_offers, ticket.pk)
    assert state() == after_first
    assert listener.received() == []


# --- outbox -------------------------------------------------------------------------------


@redelivers(outbox_tasks.send_mail_once)
def test_send_mail_once_twice_sends_one_email(db, deliver, clock):
    owed = outbox_services.mail(to="aisha@example.org", subject="Your shift", body="See you.")

    deliver(outbox_tasks.send_mail_once, owed.pk)
    owed.refresh_from_db()
    assert owed.sent_at is not None and owed.attempts == 1
    assert [message.to for message in mail.outbox] == [["aisha@example.org"]]
    after_first = state()

    deliver(outbox_tasks.send_mail_once, owed.pk)
    assert state() == after_first


@redelivers(outbox_tasks.sweep_outbox)
def test_sweep_outbox_twice_sends_each_owed_email_once(db, deliver, clock):
    # Written with their change, their send tasks lost (never enqueued here).
    for n in range(2):
        outbox_services.mail(to=f"person{n}@example.org", subject="Your shift", body="See you.")
    clock.shift(timedelta(minutes=2))  # past the grace the sweeper leaves a send task

    deliver(outbox_tasks.sweep_outbox)
    assert not Mail.objects.filter(sent_at__isnull=True).exists()
    assert len(mail.outbox) == 2
    after_first = state()

    deliver(outbox_tasks.sweep_outbox)
    assert state() == after_first


# --- webhooks and operations --------------------------------------------------------------


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def listening(staff, receiver):
    """An integration's endpoint on a real loopback receiver, and a cancellation it hears of."""
    _, key = ticket_services.integration_key_create(actor=staff, integration_name="Acme")
    webhook_services.endpoint_create(
        actor=staff, integration_id=key.integration_id, url=receiver.url, events=["ticket.status"]
    )
    ticket = TicketFactory(integration=key.integration)
    ticket_services.ticket_cancel(ticket_id=ticket.pk, caller=staff)
    return Delivery.objects.get()


@redelivers(webhook_tasks.deliver)
def test_deliver_twice_posts_once(db, deliver, listening, receiver):
    deliver(webhook_tasks.deliver, listening.pk)
    assert len(receiver.requests) == 1
    listening.refresh_from_db()
    assert listening.status == "succeeded"
    after_first = state(len(receiver.requests))

    deliver(webhook_tasks.deliver, listening.pk)
    assert state(len(receiver.requests)) == after_first


@redelivers(webhook_tasks.sweep_webhooks)
def test_sweep_webhooks_twice_posts_each_due_delivery_once(db, deliver, listening, receiver):
    # Where tasks run in-process the sweep's hand-off runs each delivery at once.
    deliver(webhook_tasks.sweep_webhooks)
    assert len(receiver.requests) == 1
    after_first = state(len(receiver.requests))

    deliver(webhook_tasks.sweep_webhooks)
    assert state(len(receiver.requests)) == after_first


@redelivers(operations_tasks.heartbeat)
@pytest.mark.redis("the heartbeat is a key in Redis")
def test_heartbeat_twice_still_says_the_queue_is_served(db, deliver):
    from operations import health

    def stamp():
        client = health.redis_client()
        try:
            return client.get(health.KEY_PREFIX + "worker:celery")
        finally:
            client.close()

    before = state()
    deliver(operations_tasks.heartbeat, "celery")
    first = stamp()
    assert first is not None

    deliver(operations_tasks.heartbeat, "celery")
    # A newer time in the same key, and nothing in the database.
    assert float(stamp()) >= float(first)
    assert state() == before


# --- every task has its test --------------------------------------------------------------


def project_tasks() -> set[str]:
    from config.celery import app

    app.autodiscover_tasks(force=True)  # import every app's tasks module now
    return {name for name in app.tasks if name.startswith(tuple(f"{a}." for a in PROJECT_APPS))}


def test_every_task_has_a_redelivery_test():
    tasks = project_tasks()
    assert "outbox.tasks.send_mail_once" in tasks  # the app's tasks were found at all
    missing = tasks - set(COVERED)
    assert not missing, f"add a redelivery test to {__name__} for: {sorted(missing)}"
    assert set(COVERED) <= tasks, "a redelivery test names a task that is gone"


# --- when a task is handed out again --------------------------------------------------------


def test_a_task_is_handed_out_again_only_after_the_longest_task_is_stopped():
    assert settings.CELERY_TASK_ACKS_LATE and settings.CELERY_TASK_REJECT_ON_WORKER_LOST
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    assert visibility > settings.CELERY_TASK_TIME_LIMIT


@pytest.mark.parametrize("visibility", ["600", "900"])
def test_a_visibility_timeout_not_longer_than_the_task_time_limit_stops_the_start(visibility):
    """Redis hands an unacknowledged task to another worker after the visibility
    timeout: were it not longer than the longest task, that task would run twice
    at once."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "CELERY_TASK_TIME_LIMIT": "900",
        "CELERY_VISIBILITY_TIMEOUT": visibility,
    }
    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode != 0
    assert f"CELERY_VISIBILITY_TIMEOUT ({visibility} s) must be longer than" in done.stderr
