"""Helpers for the web-experience tests: a worker-thread runner and README screenshots."""

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from django.db import connection

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def elsewhere(service, *, timeout: float = 30, **kwargs):
    """Run a service on another thread, as a worker or another request would.

    Playwright's sync API keeps an event loop on the test's thread, where the
    after-commit pushes (``async_to_sync``) may not run.
    """

    def call():
        try:
            return service(**kwargs)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(call).result(timeout=timeout)


def screenshot(page, name: str) -> None:
    """Save a README screenshot when ``HUMANLINE_SCREENSHOTS=1``; never fail a test over it."""
    if os.environ.get("HUMANLINE_SCREENSHOTS") != "1":
        return
    try:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    except Exception:  # a screenshot is a by-product, not the test
        pass


def weeks_of_work(agent, *, tickets_per_week=(3, 6, 4, 7, 5, 6, 8)) -> None:
    """Past weeks of real work for ``agent``, through the services, at the time it happened.

    One week per number, the last one just before this week; every third ticket
    rated 5.  So that the earnings chart and the floor's pay periods have a
    history to show.  Runs on another thread (``elsewhere``): the services push
    to sockets.  ``time_machine`` moves the clock for the whole process, so
    nothing else may run meanwhile: call it before the pages open.
    """
    from datetime import timedelta
    from unittest import mock

    import time_machine
    from django.utils import timezone

    from agents import presence
    from agents.models import Presence
    from tests.pay.helpers import accepted_and_resolved, online, rate

    def work():
        # History has no audience: no socket pushes (and no trips to Redis) while seeding.
        with mock.patch("config.channel_send.get_channel_layer", return_value=None):
            seed()

    def seed():
        start = timezone.now() - timedelta(weeks=len(tickets_per_week))
        for week, count in enumerate(tickets_per_week):
            for n in range(count):
                # Spread over the week, and offline between tickets (presence caps
                # the hours online in a day).
                moment = start + timedelta(weeks=week, hours=14 * n)
                with time_machine.travel(moment, tick=False):
                    online(agent)
                    ticket, _ = accepted_and_resolved(
                        agent, category=("payments", "general")[n % 2]
                    )
                    if n % 3 == 0:
                        rate(ticket, 5)
                    presence.agent_presence_set(agent_id=agent.pk, status=Presence.OFFLINE)

    elsewhere(work, timeout=180)
