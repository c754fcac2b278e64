"""The living demo: four past weeks seeded once, and a live floor only where it belongs."""

import os
import subprocess
import sys
import threading
import time
from io import StringIO

import pytest
from django.core.management import call_command

from agents import presence
from agents.models import Agent, Presence
from marketplace.models import (
    EntryKind,
    LedgerEntry,
    Offer,
    PayPeriod,
    PayrollJob,
    PayrollJobStatus,
)
from simulation import history, live
from tickets.models import Feedback, Rating, Ticket


@pytest.mark.django_db(transaction=True)
def test_the_history_is_seeded_once_with_its_weeks_paid_and_one_export():
    call_command("load_demo", "--force", stdout=StringIO())

    call_command("load_demo_history", "--force", stdout=StringIO(), stderr=StringIO())
    tickets = Ticket.objects.count()
    entries = LedgerEntry.objects.count()
    call_command("load_demo_history", "--force", stdout=StringIO(), stderr=StringIO())

    assert Ticket.objects.count() == tickets > 100
    assert LedgerEntry.objects.count() == entries
    assert PayPeriod.objects.filter(status="closed").count() == 4
    assert PayrollJob.objects.filter(status=PayrollJobStatus.DONE).count() == 1
    assert Rating.objects.exists() and Feedback.objects.exists()
    assert Ticket.objects.exclude(handoff_summary="").exists()
    demo = Agent.objects.get(user__email="agent@example.com")
    assert LedgerEntry.objects.filter(agent=demo, kind=EntryKind.TASK).exists()
    assert LedgerEntry.objects.filter(kind=EntryKind.SHIFT_INCENTIVE).exists()
    # The slow newcomer's weeks were topped up to the pay floor when they were closed.
    assert LedgerEntry.objects.filter(kind=EntryKind.EARNINGS_FLOOR).exists()
    # The live floor's agents are ready, and offline until the server starts them.
    assert Agent.objects.filter(user__email__startswith="sim-agent-live-").count() == 8
    assert not Agent.objects.filter(presence="online").exists()


def test_the_live_floor_never_starts_in_tests():
    assert live.start_live_demo() is None


def demo_live(**environment) -> str:
    """``DEMO_LIVE`` as a process outside the test runner, with ``environment``, reads it."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.pop("PYTEST_VERSION", None)
    env.pop("HUMANLINE_TESTING", None)
    env.update(environment)
    code = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings');"
        "from django.conf import settings; print(settings.HUMANLINE['DEMO_LIVE'])"
    )
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_the_live_floor_runs_in_the_embedded_default_unless_turned_off():
    assert demo_live() == "True"
    assert demo_live(DEMO_LIVE="0") == "False"


def test_production_settings_never_run_the_live_floor():
    assert demo_live(DATABASE_URL="sqlite:////tmp/none.sqlite3", SECRET_KEY="x" * 50) == "False"
    assert demo_live(REDIS_URL="redis://127.0.0.1:1/0", SECRET_KEY="x" * 50, DEMO_LIVE="1") == (
        "False"
    )


def eventually(check, *, within: float = 20.0):
    """``check()``'s first true value, asked again until ``within`` seconds have passed (the
    live floor runs on the real clock, in its own thread)."""
    deadline = time.monotonic() + within
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)  # polling the live floor, whose thread runs on the real clock


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("short_lived_db_connections")
def test_the_live_floor_moves_and_offers_the_demo_agent_work_once_online():
    # given: the demo's people and the live floor's agents, the floor playing in its thread
    call_command("load_demo", "--force", stdout=StringIO())
    history.live_agents_ready()
    demo = Agent.objects.get(user__email="agent@example.com")
    stop = threading.Event()
    floor = threading.Thread(target=live.run_floor, args=(stop,), daemon=True)
    floor.start()
    try:
        # then: simulated agents take their seats, and a ticket only the demo agent
        # speaks the language of waits
        live_online = Agent.objects.filter(
            user__email__startswith="sim-agent-live-", presence=Presence.ONLINE
        )
        assert eventually(lambda: live_online.count() == live.GROUP.count)
        waiting = Ticket.objects.filter(
            language=live.RESERVED_LANGUAGE, status__in=["queued", "offered"]
        )
        assert eventually(waiting.exists)

        # when: the demo agent goes online, as the console does
        presence.agent_connection_open(agent_id=demo.pk, channel_name="demo-console")
        presence.agent_presence_set(agent_id=demo.pk, status=Presence.ONLINE)

        # then: they are offered it at once, by dispatch
        offer = Offer.objects.filter(agent=demo, status="pending").select_related("ticket")
        assert eventually(offer.exists, within=5)
        assert offer.get().ticket.language == live.RESERVED_LANGUAGE
    finally:
        stop.set()
        floor.join(timeout=30)
    # and the floor, stopped, leaves its agents offline and no customer of its own waiting
    assert not floor.is_alive()
    assert not live_online.exists()
    assert not Ticket.objects.filter(
        customer__email__startswith="sim-customer-live-", status__in=["queued", "offered"]
    ).exists()
