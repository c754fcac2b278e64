"""What leaves no row behind, counted in process: pushes that failed, the sweep's repairs."""

import os
import subprocess
import sys
import threading
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone
from prometheus_client import REGISTRY

from config import channel_send
from marketplace.services import dispatch
from tests.factories import AgentFactory
from tests.marketplace.test_dispatch import go_online
from tests.tickets.factories import TicketFactory

ROOT = Path(__file__).resolve().parents[2]


def counted(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_push_the_layer_cannot_send_is_counted():
    before = counted("humanline_pushes_failed_total", reason="error")
    unsendable = {"type": "agent.event", "lock": threading.Lock()}  # no layer can copy it
    group, layer = f"ops-test-{uuid.uuid4().hex[:12]}", get_channel_layer()

    async def join():  # a member, so that the in-memory layer copies the message
        await layer.group_add(group, await layer.new_channel())

    async_to_sync(join)()
    channel_send.group_send_many([(group, unsendable), (group, {"type": "agent.event"})])

    # Each push is sent on its own: the one that cannot be is counted, the other goes.
    assert counted("humanline_pushes_failed_total", reason="error") - before == 1


@pytest.mark.django_db
def test_each_sweep_counts_its_repairs_by_kind(client):
    agent = AgentFactory(languages=["en"], skills=["general"])
    go_online(agent)
    TicketFactory(category="general")
    dispatch.dispatch_pass()
    before = counted("humanline_sweeper_repairs_total", kind="expired")

    # The offer's window passes with no answer and no expiry task: the sweep repairs it
    with time_machine.travel(timezone.now() + timedelta(minutes=1)):
        result = dispatch.sweep()

    assert result["expired"] == 1
    assert counted("humanline_sweeper_repairs_total", kind="expired") - before == 1
    assert "humanline_sweeper_repairs_total" in client.get("/metrics").content.decode()


@pytest.mark.django_db
def test_with_a_multiprocess_directory_the_scrape_adds_up_every_process(
    client, tmp_path, monkeypatch
):
    """Web processes and workers of one host share PROMETHEUS_MULTIPROC_DIR: whichever
    process serves the scrape, it reports every process's counts."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    count = "from operations import counters; counters.pushes_failed(3, reason='error')"
    for _ in range(2):  # two other processes, each failing three pushes
        subprocess.run([sys.executable, "-c", count], cwd=ROOT, env=os.environ, check=True)

    samples = client.get("/metrics").content.decode()

    assert 'humanline_pushes_failed_total{reason="error"} 6.0' in samples
    assert "humanline_queue_depth" in samples  # the domain's figures still read from the database
