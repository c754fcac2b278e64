"""The demo's past: four weeks of a small floor, played by the simulator, then paid.

``make run`` seeds it once (``manage.py load_demo_history``): the weeks from
the Monday four weeks back until an hour ago are simulated through the real
services (tickets with hand-offs, conversations, ratings, feedback, offers, task
pay, shift incentives), the demo agent ``agent@example.com`` working some of
those hours; then, on the real clock, every past pay period is closed (with its
floor top-ups) and the last one's payroll CSV is prepared, as staff would from
the floor.  A second call finds the history there and does nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.test.utils import override_settings
from django.utils import timezone

from agents.models import User
from marketplace.models import PayPeriod, PayPeriodStatus, PayrollJobKind
from marketplace.services import payroll, payroll_jobs
from simulation import people
from simulation.engine import Engine, SimulatedClock
from simulation.run import (
    QUIET_MAIL,
    SETUP_LEAD,
    SimulationRefused,
    check_floor,
    make_agents,
    offstage,
)
from simulation.scenario import AgentGroup, Scenario

logger = logging.getLogger(__name__)

TAG = "history"
DEMO_AGENT = "agent@example.com"
DEMO_STAFF = "ops@example.com"
WEEKS = 4

ALL_SKILLS = ("general", "payments", "refunds", "account")
WEEKDAYS, WEEKEND = (0, 1, 2, 3, 4), (5, 6)

# A quiet pool: a few tickets an hour in the working day, fewer at the weekend.
PROFILE = (
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0.3,
    1,
    1.2,
    1.5,
    1.5,
    1.2,
    1.5,
    1.5,
    1.2,
    1,
    0.6,
    0.3,
    0,
    0,
    0,
    0,
    0,
)


def scenario(*, start: datetime, hours: float) -> Scenario:
    return Scenario(
        seed=2026,
        start=start,
        hours=hours,
        arrivals_per_hour=PROFILE,
        weekday_factors=(1.1, 1.0, 1.0, 1.0, 0.9, 0.5, 0.4),
        handle="lognormal",
        handle_seconds=420,
        handle_sigma=0.6,
        languages={"en": 0.65, "fr": 0.12, "sv": 0.1, "de": 0.08, "pt": 0.05},
        categories={"general": 0.35, "payments": 0.3, "refunds": 0.15, "account": 0.2},
        accept_probability=0.88,
        offer_answer_seconds=5,
        patience_seconds=900,
        rating_share=0.65,
        feedback_share=0.2,
        sweep_seconds=300,
        drain_hours=0.5,
        shift_hourly_minimum="12.00",
        agents=(
            AgentGroup(
                count=1,
                email=DEMO_AGENT,
                capacity=2,
                hours=((9, 13),),
                weekdays=WEEKDAYS,
                book_shifts=True,
            ),
            AgentGroup(
                count=2,
                languages=("en", "fr"),
                skills=ALL_SKILLS,
                capacity=2,
                hours=((7, 13),),
                weekdays=WEEKDAYS,
                book_shifts=True,
            ),
            AgentGroup(
                count=2,
                languages=("en", "sv"),
                skills=("general", "payments", "account"),
                capacity=2,
                hours=((12, 18),),
                weekdays=WEEKDAYS,
                book_shifts=True,
            ),
            AgentGroup(
                count=1,
                languages=("en", "de"),
                skills=ALL_SKILLS,
                capacity=2,
                hours=((10, 16),),
                weekdays=(0, 2, 4, 5, 6),
            ),
            # A newcomer at the weekend, three times as slow: task pay alone leaves
            # their engaged hours under the pay floor, which closing the week tops up.
            AgentGroup(
                count=1,
                languages=("en", "pt", "fr"),
                skills=("general", "refunds"),
                capacity=1,
                hours=((9, 15),),
                weekdays=WEEKEND,
                handle_factor=3.0,
            ),
        ),
    )


@dataclass
class Seeded:
    tickets: int
    closed_periods: int
    exported: bool
    seconds_simulated: float


def seeded() -> bool:
    return User.objects.filter(email=f"sim-ops-{TAG}@example.net").exists()


def span(now: datetime) -> tuple[datetime, datetime]:
    """From the Monday ``WEEKS`` weeks before this week's, to an hour before ``now``."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=today.weekday() + 7 * WEEKS)
    end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    return start, end


def seed_history(*, now: datetime | None = None) -> Seeded | None:
    """Simulate the past weeks, close their pay periods, export the last; None if done before."""
    if seeded():
        return None
    now = now or timezone.now()
    check_floor()
    start, end = span(now)
    chosen = scenario(start=start, hours=(end - start).total_seconds() / 3600)
    ops = User.objects.filter(email=DEMO_STAFF).first()
    with offstage(), SimulatedClock(start - SETUP_LEAD) as clock:
        staff = ops or people.staff_member(tag=f"{TAG}-staff")
        agents = make_agents(chosen, tag=TAG, staff=staff)
        engine = Engine(chosen, clock=clock, tag=TAG, staff=staff, agents=agents, start=start)
        engine.play()
    # Back on the real clock: staff close the weeks that have ended and export the last.
    closed = 0
    for period in PayPeriod.objects.filter(status=PayPeriodStatus.OPEN, ends_at__lte=now).order_by(
        "starts_at"
    ):
        payroll.pay_period_close(period_id=period.pk, actor=ops, now=now)
        closed += 1
    last = PayPeriod.objects.filter(status=PayPeriodStatus.CLOSED).order_by("-starts_at").first()
    if last is not None:
        payroll_jobs.payroll_job_start(period_id=last.pk, kind=PayrollJobKind.EXPORT, actor=ops)
    people.staff_member(tag=TAG)  # the mark of a history complete
    return Seeded(
        tickets=len(engine.order),
        closed_periods=closed,
        exported=last is not None,
        seconds_simulated=(end - start).total_seconds(),
    )


def live_agents_ready() -> None:
    """The living demo's agents, applied and approved once (their mail kept quiet)."""
    from simulation import live

    ops = User.objects.filter(email=DEMO_STAFF).first() or people.staff_member(tag=f"{TAG}-staff")
    with override_settings(EMAIL_BACKEND=QUIET_MAIL):
        live.live_agents_ensure(staff=ops)


__all__ = ["SimulationRefused", "live_agents_ready", "seed_history", "seeded"]
