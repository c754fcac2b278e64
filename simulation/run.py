"""One simulated run: its people, its clock, its events, its report."""

from __future__ import annotations

import math
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection
from django.test.utils import override_settings

from agents.models import Agent, Presence
from simulation import people, report
from simulation.engine import Engine, SimAgent, SimulatedClock
from simulation.scenario import Scenario

# The setup (people, shift slots) happens this long before the first arrival.
SETUP_LEAD = timedelta(hours=1)


class SimulationRefused(RuntimeError):
    """The run cannot be played on this database as it is now."""


def default_start(now: datetime | None = None) -> datetime:
    """Midnight UTC of the Monday five weeks back: a day (or a week) wholly in the past."""
    today = (now or datetime.now(UTC)).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=today.weekday() + 35)


def check_floor(own: set[int] = frozenset()) -> None:
    """Dispatch offers to every online agent: a run needs a floor of its own."""
    others = Agent.objects.filter(presence=Presence.ONLINE).exclude(pk__in=own).count()
    if others:
        raise SimulationRefused(
            f"{others} agent(s) not of this simulation are online on this database; "
            "dispatch would offer them the simulated tickets. Set them offline, or "
            "simulate on another database."
        )
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        raise SimulationRefused(
            "The simulator runs every task in-process, on its clock: set "
            "CELERY_TASK_ALWAYS_EAGER=1 (or leave REDIS_URL unset)."
        )


def make_agents(scenario: Scenario, *, tag: str, staff) -> list[SimAgent]:
    out: list[SimAgent] = []
    number = 0
    for group in scenario.agents:
        teams = math.ceil(24 / group.rotation) if group.rotation else 1
        for _ in range(group.count * teams):
            if group.email:
                agent = Agent.objects.select_related("user").get(user__email=group.email)
            else:
                agent = people.agent(
                    tag=tag,
                    number=number,
                    staff=staff,
                    languages=group.languages,
                    skills=group.skills,
                    capacity=group.capacity,
                )
            number += 1
            out.append(
                SimAgent(
                    agent=agent,
                    user=agent.user,
                    group=group,
                    channel=f"simulation.{tag}.{agent.pk}",
                )
            )
    return out


# The simulated people's e-mail (approvals, shift notices) stays in memory.
QUIET_MAIL = "django.core.mail.backends.locmem.EmailBackend"


@contextmanager
def offstage():
    """What a run on the simulated clock changes while it plays.

    Its mail stays in memory, and no channel layer is configured: the services
    build every event they push as always, but nobody is connected to a floor
    that lives in the past, and outside the server each send to the in-memory
    layer starts an event loop of its own (``config.channel_send``), about a
    tenth of a simulated day's CPU.  On PostgreSQL the run's commits do not wait
    for the disk (``synchronous_commit`` off for its connection, restored after):
    PostgreSQL documents that a crash may then lose the last commits, never
    leave the database inconsistent, and a simulated day is thousands of small
    commits, half its time spent waiting for the disk.
    """
    with override_settings(EMAIL_BACKEND=QUIET_MAIL, CHANNEL_LAYERS={}):
        if connection.vendor != "postgresql":
            yield
            return
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            (before,) = cursor.fetchone()
            cursor.execute("SET synchronous_commit TO off")
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('synchronous_commit', %s, false)", [before])


def simulate(scenario: Scenario, *, tag: str | None = None, staff=None) -> tuple[Engine, dict]:
    """Play ``scenario`` on the configured database; the engine and its report."""
    check_floor()
    tag = tag or uuid.uuid4().hex[:8]
    start = scenario.start or default_start()
    with offstage(), SimulatedClock(start - SETUP_LEAD) as clock:
        staff = staff or people.staff_member(tag=tag)
        agents = make_agents(scenario, tag=tag, staff=staff)
        engine = Engine(scenario, clock=clock, tag=tag, staff=staff, agents=agents, start=start)
        engine.play()
        result = report.build(engine)
    return engine, result
