"""The living demo: while ``make run`` serves, simulated customers and agents keep the floor moving.

A daemon thread of the embedded process runs the simulator's loop on the real
clock (no time travel): customers of its own open tickets at a gentle rate and
chat, its agents (never ``agent@example.com``) take turns online, answer offers,
converse and resolve.  The embedded background loop runs the sweeps, as beat
would.  A Portuguese ticket, a language only the demo agent speaks, is kept
waiting, so the demo agent is offered work as soon as they go online; a real
person's ticket (the demo customer's) is declined by the simulated agents, and
so left to real ones.  ``DEMO_LIVE=0`` turns it off; it never runs outside the
embedded default or in tests (``settings.HUMANLINE["DEMO_LIVE"]``).
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from agents.models import Agent, User
from simulation import people
from simulation.engine import Engine, RealClock, SimAgent
from simulation.scenario import AgentGroup, Scenario
from tickets import services as ticket_services
from tickets.models import Ticket, TicketStatus

logger = logging.getLogger(__name__)

TAG = "live"
RESERVED_LANGUAGE = "pt"  # only the demo agent speaks it
KEEP_SECONDS = 30.0
LOOK_SECONDS = 2.0
RUN_DAYS = 7

GROUP = AgentGroup(
    count=2,
    languages=("en", "fr", "sv"),
    skills=("general", "payments", "refunds"),
    capacity=2,
    rotation=6.0,
)

_started = threading.Event()


def scenario() -> Scenario:
    return Scenario(
        seed=int(timezone.now().timestamp()),
        hours=24.0 * RUN_DAYS,
        arrivals_per_hour=(24.0,),
        handle="lognormal",
        handle_seconds=150.0,
        handle_sigma=0.6,
        languages={"en": 0.75, "fr": 0.15, "sv": 0.1},
        categories={"general": 0.5, "payments": 0.3, "refunds": 0.2},
        accept_probability=0.85,
        offer_answer_seconds=4.0,
        patience_seconds=900.0,
        rating_share=0.6,
        feedback_share=0.15,
        drain_hours=0.0,
        agents=(GROUP,),
    )


def live_agents_ensure(*, staff: User) -> list[Agent]:
    """The live floor's agents, made (applied and approved) the first time."""
    teams = int(24 // GROUP.rotation)
    have = list(Agent.objects.filter(user__email__startswith=f"sim-agent-{TAG}-").order_by("pk"))
    for number in range(len(have), GROUP.count * teams):
        have.append(
            people.agent(
                tag=TAG,
                number=number,
                staff=staff,
                languages=GROUP.languages,
                skills=GROUP.skills,
                capacity=GROUP.capacity,
            )
        )
    return have


class LiveEngine(Engine):
    def play(self) -> None:
        self.at(self.clock.now, self.keep_reserved)
        self.at(self.clock.now, self.look)
        super().play()

    def look(self) -> None:
        """Offers other threads made to the loop's agents are learnt after each event."""
        self.at(self.clock.now + timedelta(seconds=LOOK_SECONDS), self.look)

    def keep_reserved(self) -> None:
        waiting = any(self.tickets[pk].language == RESERVED_LANGUAGE for pk in self.waiting)
        if not waiting:
            self.arrival(language=RESERVED_LANGUAGE, category="general")
        self.at(self.clock.now + timedelta(seconds=KEEP_SECONDS), self.keep_reserved)


def clean_slate(agents: list[Agent], customers: list[User]) -> None:
    """What a previous process left: its agents finish their tickets; its customers'
    waiting tickets are cancelled."""
    for agent in agents:
        for ticket_id in Ticket.objects.filter(
            assigned_agent=agent, status=TicketStatus.ASSIGNED
        ).values_list("pk", flat=True):
            ticket_services.ticket_resolve(ticket_id=ticket_id, caller=agent.user)
    waiting = Ticket.objects.filter(
        customer__in=customers, status__in=[TicketStatus.QUEUED, TicketStatus.OFFERED]
    ).select_related("customer")
    for ticket in waiting:
        ticket_services.ticket_cancel(ticket_id=ticket.pk, caller=ticket.customer)
    from agents import presence
    from agents.models import Presence

    for agent in agents:
        presence.agent_presence_set(agent_id=agent.pk, status=Presence.OFFLINE)


def run_floor(stop: threading.Event) -> None:
    """Play the live floor on the real clock until ``stop`` is set (its own thread)."""
    while not stop.is_set():
        try:
            agents = list(
                Agent.objects.filter(user__email__startswith=f"sim-agent-{TAG}-")
                .select_related("user")
                .order_by("pk")
            )
            if not agents:
                logger.warning("live demo: no live agents (run manage.py load_demo_history)")
                return
            customers = list(
                User.objects.filter(email__startswith=f"sim-customer-{TAG}-").order_by("pk")
            )
            clean_slate(agents, customers)
            clock = RealClock(stop)
            chosen = scenario()
            sims = [
                SimAgent(agent=a, user=a.user, group=GROUP, channel=f"simulation.{TAG}.{a.pk}")
                for a in agents
            ]
            engine = LiveEngine(
                chosen,
                clock=clock,
                tag=TAG,
                staff=None,
                agents=sims,
                start=clock.now,
                sweeps=False,
            )
            engine.customers = customers
            engine.play()
        except Exception:
            logger.exception("live demo loop failed; starting again in a minute")
            stop.wait(60)
        finally:
            close_old_connections()


def start_live_demo() -> threading.Event | None:
    """Start the live floor once per process, where ``DEMO_LIVE`` allows it."""
    if not settings.HUMANLINE["DEMO_LIVE"] or _started.is_set():
        return None
    _started.set()
    stop = threading.Event()
    thread = threading.Thread(
        target=run_floor, args=(stop,), name="humanline-live-demo", daemon=True
    )
    thread.start()
    logger.info("live demo started")
    return stop
