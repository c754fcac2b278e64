"""A discrete-event loop that plays customers and agents against the real services.

Every step is a call of the service a person's click would make: customers
open tickets (``ticket_open``), write and rate, or give up (``ticket_cancel``);
agents go online and away (``agent_presence_set``), keep a socket alive
(``agent_connection_*``), answer offers (``offer_accept`` / ``offer_decline``),
converse, tag feedback and resolve.  Dispatch decides who is offered what, by
its own rules, through its own hooks; the loop only learns of the offers it
made (new ``Offer`` rows of its agents) to schedule their answers.  The
dispatch sweep runs at each offer's expiry, so that offer windows are real,
and at ``sweep_seconds`` while tickets wait; the presence sweep, the shift
settlement and the reopen window run on their own periods.

The clock is either simulated (``SimulatedClock``: ``time_machine`` moves the
process's time to each event, so every ``timezone.now()`` the services read is
the simulated one) or real (``RealClock``: the loop waits, for the living
demo).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import math
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import time_machine
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from agents import presence
from agents.models import Agent, Presence, User
from config.errors import Conflict, Forbidden, InvalidInput, InvalidTransition
from marketplace.models import DeclineReason, Offer, OfferStatus
from marketplace.services import dispatch, shifts
from simulation import people, texts
from simulation.scenario import AgentGroup, Scenario
from tickets import services as ticket_services

logger = logging.getLogger(__name__)

# What the world may answer a person whose view is out of date (the ticket was
# taken meanwhile, the offer expired): the person moves on.
MOVED_ON = (InvalidTransition, Conflict, Forbidden, Offer.DoesNotExist)

# Events after which dispatch cannot have made an offer: nothing entered the
# queue, no seat was freed, nobody came online.
NO_OFFERS = frozenset({"agent_writes", "customer_writes", "heartbeat", "settle", "reopen_window"})

HEARTBEAT_SECONDS = 60.0  # agents' sockets ping (the stale limit is 90 s)
PRESENCE_SWEEP_BEATS = 15  # the presence sweep every 15 minutes while agents are connected
SETTLE_BEATS = 30  # shift attendance every 30 minutes while agents are connected
REOPEN_CLOSE_SECONDS = 6 * 3600.0


class SimulatedClock:
    """Process time moved by ``time_machine`` to each event; it does not tick."""

    real = False

    def __init__(self, start: datetime):
        self.now = start
        self._travel = time_machine.travel(start, tick=False)
        self._traveller = None

    def __enter__(self):
        self._traveller = self._travel.start()
        return self

    def __exit__(self, *exc):
        self._travel.stop()

    def advance_to(self, moment: datetime) -> bool:
        if moment > self.now:
            self.now = moment
            self._traveller.move_to(moment)
        return True


class RealClock:
    """The wall clock: the loop waits for each event (the living demo)."""

    real = True

    def __init__(self, stop: threading.Event):
        self.stop = stop

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    @property
    def now(self) -> datetime:
        return timezone.now()

    def advance_to(self, moment: datetime) -> bool:
        """Wait until ``moment`` (at most a second at a time); False once asked to stop."""
        while not self.stop.is_set():
            left = (moment - timezone.now()).total_seconds()
            if left <= 0:
                return True
            self.stop.wait(min(left, 1.0))
        return False


@dataclass
class SimAgent:
    agent: Agent
    user: User
    group: AgentGroup
    channel: str
    active: set[int] = field(default_factory=set)
    online: bool = False
    connected: bool = False
    leaving: bool = False
    successor: SimAgent | None = None
    # Called when the agent has left (a rotation hands the seat on).
    on_left: Callable[[], None] | None = None


@dataclass
class SimTicket:
    pk: int
    customer: User
    opened_at: datetime
    handle_seconds: float
    language: str
    category: str
    waiting: bool = True
    agent: SimAgent | None = None
    answered_at: datetime | None = None


@dataclass
class Tally:
    """What happened, counted as it happened (the report reads the database)."""

    opened: int = 0
    refused_open: int = 0
    online_refused: int = 0
    bookings: int = 0
    bookings_refused: int = 0
    sweeps: int = 0
    events: int = 0
    abandoned: int = 0
    unanswered_at_end: int = 0


class Engine:
    def __init__(
        self,
        scenario: Scenario,
        *,
        clock,
        tag: str,
        staff: User,
        agents: list[SimAgent] | None = None,
        start: datetime | None = None,
        horizon: datetime | None = None,
        sweeps: bool = True,
    ):
        self.scenario = scenario
        self.clock = clock
        self.tag = tag
        self.staff = staff
        self.start = start or clock.now
        self.horizon = horizon or self.start + timedelta(hours=scenario.hours)
        self.drain_until = self.horizon + timedelta(hours=scenario.drain_hours)
        self.run_sweeps = sweeps
        self.queue: list = []
        self.counter = itertools.count()
        self.rng_arrivals = random.Random(f"{scenario.seed}:arrivals")
        self.rng_tickets = random.Random(f"{scenario.seed}:tickets")
        self.rng_agents = random.Random(f"{scenario.seed}:agents")
        self.rng_customers = random.Random(f"{scenario.seed}:customers")
        self.agents: list[SimAgent] = agents or []
        self.by_agent_id: dict[int, SimAgent] = {a.agent.pk: a for a in self.agents}
        self.tickets: dict[int, SimTicket] = {}
        self.order: list[int] = []  # ticket ids in the order they were opened
        self.waiting: set[int] = set()  # the run's tickets nobody has taken yet
        self.customers: list[User] = []
        self.open_count: dict[int, int] = {}
        self.next_customer = 0
        self.known_offers: set[int] = set()
        self.last_offer_id = 0
        self.sweep_at: set[datetime] = set()
        self.periodic_sweep_due = False
        self.beating = False
        self.beats = 0
        self.stopped = False
        self.shifts_booked = False
        self.tally = Tally()

    # --- the queue of events ------------------------------------------------------------

    def at(self, moment: datetime, handler: Callable, *args) -> None:
        heapq.heappush(self.queue, (moment, next(self.counter), handler, args))

    def run(self, *, until: datetime | None = None) -> None:
        """Play events until none is left or ``until``; each one at its time."""
        while self.queue:
            moment, _, handler, args = self.queue[0]
            if until is not None and moment > until:
                break
            heapq.heappop(self.queue)
            if not self.clock.advance_to(moment):
                self.stopped = True
                return
            self.tally.events += 1
            try:
                handler(*args)
            except MOVED_ON:
                pass
            except Exception:
                if not self.clock.real:
                    raise
                logger.exception("simulated %s failed", getattr(handler, "__name__", handler))
            finally:
                if self.clock.real:
                    close_old_connections()
            if handler.__name__ not in NO_OFFERS:
                self.learn_offers()

    # --- people -----------------------------------------------------------------------

    def add_customers(self, count: int) -> None:
        made = people.customers(tag=self.tag, count=count, start=len(self.customers))
        self.customers.extend(made)

    def customer(self) -> User | None:
        """The next customer in turn with room for another open ticket."""
        cap = settings.HUMANLINE["OPEN_TICKETS_PER_CUSTOMER"]
        for _ in range(len(self.customers)):
            user = self.customers[self.next_customer % len(self.customers)]
            self.next_customer += 1
            if self.open_count.get(user.pk, 0) < cap:
                return user
        return None

    # --- arrivals ---------------------------------------------------------------------

    def schedule_arrivals(self) -> None:
        self.at(self.start, self.hour_of_arrivals, self.start)

    def hour_of_arrivals(self, hour_start: datetime) -> None:
        """Poisson arrivals within this hour at its rate; then the next hour."""
        end = min(hour_start + timedelta(hours=1), self.horizon)
        rate = self.scenario.rate(hour_start) / 3600.0
        moment = hour_start
        while rate > 0:
            moment += timedelta(seconds=self.rng_arrivals.expovariate(rate))
            if moment >= end:
                break
            self.at(moment, self.arrival)
        if end < self.horizon:
            self.at(end, self.hour_of_arrivals, end)

    def pick(self, rng: random.Random, mix: dict[str, float]) -> str:
        keys = sorted(mix)
        return rng.choices(keys, weights=[mix[k] for k in keys])[0]

    def handle_time(self) -> float:
        s = self.scenario
        if s.handle == "lognormal":
            mu = math.log(s.handle_seconds) - s.handle_sigma**2 / 2
            return self.rng_tickets.lognormvariate(mu, s.handle_sigma)
        return self.rng_tickets.expovariate(1 / s.handle_seconds)

    def arrival(self, language: str | None = None, category: str | None = None) -> None:
        s = self.scenario
        language = language or self.pick(self.rng_tickets, s.languages)
        category = category or self.pick(self.rng_tickets, s.categories)
        handle = self.handle_time()
        patience = (
            self.rng_customers.expovariate(1 / s.patience_seconds) if s.patience_seconds else 0
        )
        customer = self.customer()
        if customer is None:
            self.add_customers(max(20, len(self.customers) // 2))
            customer = self.customer()
        story = texts.story(self.rng_tickets, category)
        try:
            opened = ticket_services.ticket_open(
                caller=customer,
                new=ticket_services.NewTicket(
                    subject=story.subject,
                    body=story.body,
                    category=category,
                    language=language,
                    handoff=ticket_services.Handoff(
                        transcript=story.transcript, summary=story.summary, intent=story.intent
                    ),
                ),
            )
        except (InvalidInput, Forbidden, Conflict):
            self.tally.refused_open += 1
            return
        ticket = SimTicket(
            pk=opened.ticket.pk,
            customer=customer,
            opened_at=self.clock.now,
            handle_seconds=handle,
            language=language,
            category=category,
        )
        self.tickets[ticket.pk] = ticket
        self.order.append(ticket.pk)
        self.waiting.add(ticket.pk)
        self.open_count[customer.pk] = self.open_count.get(customer.pk, 0) + 1
        self.tally.opened += 1
        if patience:
            self.at(self.clock.now + timedelta(seconds=patience), self.give_up, ticket)
        self.need_periodic_sweep()

    def closed(self, ticket: SimTicket) -> None:
        ticket.waiting = False
        self.waiting.discard(ticket.pk)
        self.open_count[ticket.customer.pk] -= 1

    def give_up(self, ticket: SimTicket) -> None:
        """The customer's patience ran out: they cancel, unless someone took the ticket."""
        if not ticket.waiting:
            return
        ticket_services.ticket_cancel(
            ticket_id=ticket.pk, caller=ticket.customer, reason="Waited too long."
        )
        self.closed(ticket)
        self.tally.abandoned += 1

    # --- offers -----------------------------------------------------------------------

    def learn_offers(self) -> None:
        """New offers to the loop's agents: each is answered after the agent's reaction time."""
        if not self.by_agent_id:
            return
        pending = Offer.objects.filter(
            status=OfferStatus.PENDING, agent_id__in=list(self.by_agent_id)
        )
        if self.clock.real:
            # Offers are made by other threads too: any not yet known.
            pending = pending.exclude(pk__in=list(self.known_offers))
        else:
            pending = pending.filter(pk__gt=self.last_offer_id)
        for offer_id, agent_id, ticket_id, expires_at in pending.order_by("pk").values_list(
            "pk", "agent_id", "ticket_id", "expires_at"
        ):
            self.last_offer_id = max(self.last_offer_id, offer_id)
            self.known_offers.add(offer_id)
            self.offer_received(offer_id, self.by_agent_id[agent_id], ticket_id, expires_at)
        if self.clock.real and len(self.known_offers) > 5000:
            self.known_offers = set(sorted(self.known_offers)[-1000:])

    def offer_received(self, offer_id: int, agent: SimAgent, ticket_id: int, expires_at) -> None:
        s = self.scenario
        mean = s.offer_answer_seconds
        delay = self.rng_agents.expovariate(1 / mean) if mean else 0.0
        answer_at = self.clock.now + timedelta(seconds=delay)
        if answer_at < expires_at:
            self.at(answer_at, self.answer, offer_id, agent, ticket_id)
        elif self.run_sweeps and expires_at not in self.sweep_at:
            # Left unanswered: the window is real, and the sweep expires the offer
            # at its end (as beat's sweep does, every second).
            self.sweep_at.add(expires_at)
            self.at(expires_at, self.sweep, expires_at)

    def answer(self, offer_id: int, agent: SimAgent, ticket_id: int) -> None:
        p = agent.group.accept_probability
        p = self.scenario.accept_probability if p is None else p
        if ticket_id in self.tickets and (agent.leaving or self.rng_agents.random() >= p):
            reason = self.rng_agents.choices(
                [DeclineReason.BUSY, DeclineReason.OTHER, DeclineReason.NOT_MY_AREA],
                weights=[5, 3, 1],
            )[0]
            dispatch.offer_decline(offer_id=offer_id, user=agent.user, reason=reason)
            return
        ticket = self.tickets.get(ticket_id)
        if ticket is None:
            # A real person's ticket (the living demo): left to the real agents.
            dispatch.offer_decline(offer_id=offer_id, user=agent.user, reason=DeclineReason.OTHER)
            return
        offer = dispatch.offer_accept(offer_id=offer_id, user=agent.user)
        now = self.clock.now
        self.waiting.discard(ticket_id)
        ticket.waiting, ticket.agent, ticket.answered_at = False, agent, now
        agent.active.add(ticket_id)
        handle = timedelta(seconds=ticket.handle_seconds * agent.group.handle_factor)
        # The first reply comes quickly (silence past the limit returns the ticket).
        greet = min(timedelta(seconds=self.rng_agents.uniform(3, 30)), handle / 4)
        self.at(now + greet, self.agent_writes, ticket, agent, "greeting")
        if self.scenario.conversation:
            self.at(now + handle * 0.45, self.customer_writes, ticket)
        self.at(now + handle, self.resolve, ticket, agent, offer.pk)

    # --- conversation and resolution --------------------------------------------------

    def agent_writes(self, ticket: SimTicket, agent: SimAgent, kind: str) -> None:
        body = texts.agent_line(self.rng_agents, kind, ticket.category, agent.user.first_name)
        ticket_services.message_post(ticket_id=ticket.pk, caller=agent.user, body=body)

    def customer_writes(self, ticket: SimTicket) -> None:
        if ticket.agent is None or ticket.pk not in ticket.agent.active:
            return
        body = texts.customer_line(self.rng_customers, ticket.category)
        ticket_services.message_post(ticket_id=ticket.pk, caller=ticket.customer, body=body)

    def resolve(self, ticket: SimTicket, agent: SimAgent, offer_id: int) -> None:
        if ticket.pk not in agent.active:
            return
        agent.active.discard(ticket.pk)
        try:
            if self.scenario.conversation:
                self.agent_writes(ticket, agent, "closing")
            ticket_services.ticket_resolve(ticket_id=ticket.pk, caller=agent.user)
        except MOVED_ON:
            # Taken back meanwhile (silence, a lost connection): it waits again.
            ticket.waiting = True
            self.waiting.add(ticket.pk)
            self.need_periodic_sweep()
            self.left_if_done(agent)
            return
        self.closed(ticket)
        s = self.scenario
        if self.rng_agents.random() < s.feedback_share:
            area, kind, text = texts.feedback(self.rng_agents, ticket.category)
            ticket_services.feedback_tag(
                ticket_id=ticket.pk, caller=agent.user, area=area, kind=kind, text=text
            )
        if self.rng_customers.random() < s.rating_share:
            waited = ticket.answered_at - ticket.opened_at > timedelta(seconds=s.answer_seconds)
            score, comment = texts.rating(self.rng_customers, waited_long=waited)
            ticket_services.rating_submit(
                ticket_id=ticket.pk, caller=ticket.customer, score=score, comment=comment
            )
        self.left_if_done(agent)

    # --- presence and hours -----------------------------------------------------------

    def go_online(self, agent: SimAgent) -> bool:
        if agent.online and not agent.leaving:
            return True
        if not agent.connected:
            presence.agent_connection_open(agent_id=agent.agent.pk, channel_name=agent.channel)
            agent.connected = True
            self.keep_beating()
        try:
            presence.agent_presence_set(agent_id=agent.agent.pk, status=Presence.ONLINE)
        except Forbidden:
            # Past the online-hours cap (or no longer approved): they stay off.
            self.tally.online_refused += 1
            if not agent.active:
                self.disconnect(agent)
            return False
        agent.online, agent.leaving = True, False
        return True

    def leave(self, agent: SimAgent) -> None:
        """End of their hours: no new offers (away); offline once their tickets are done."""
        if not agent.online:
            return
        agent.leaving = True
        if agent.active:
            presence.agent_presence_set(agent_id=agent.agent.pk, status=Presence.AWAY)
        self.left_if_done(agent)

    def left_if_done(self, agent: SimAgent) -> None:
        if not (agent.leaving and not agent.active):
            return
        presence.agent_presence_set(agent_id=agent.agent.pk, status=Presence.OFFLINE)
        agent.online = agent.leaving = False
        self.disconnect(agent)
        if agent.on_left is not None:
            handover, agent.on_left = agent.on_left, None
            handover()

    def disconnect(self, agent: SimAgent) -> None:
        if agent.connected:
            presence.agent_connection_close(channel_name=agent.channel)
            agent.connected = False

    def heartbeat(self) -> None:
        """Every connected agent's socket pings; the beat stops while nobody is connected.

        On the simulated clock the pings are collapsed into the last one before each
        sweep (``ping``): only the sweeps read how recently a socket was seen, and
        that one ping makes each sweep see what a ping a minute would have shown.
        A ping a minute per agent was most of a simulated day's statements (two
        commits each: most of its time on PostgreSQL)."""
        self.beating = False
        connected = [agent for agent in self.agents if agent.connected]
        if not connected:
            return
        if self.clock.real:
            # The live floor: the platform's own sweeps run on the real clock.
            self.ping()
        # The platform's slower sweeps, while there is someone for them to look at.
        self.beats += 1
        if self.run_sweeps and self.beats % PRESENCE_SWEEP_BEATS == 0:
            self.at(self.clock.now, self.housekeeping)
        if self.shifts_booked and self.beats % SETTLE_BEATS == 0:
            self.at(self.clock.now, self.settle)
        self.keep_beating()

    def ping(self) -> None:
        for agent in self.agents:
            if agent.connected:
                presence.agent_connection_seen(channel_name=agent.channel)

    def keep_beating(self) -> None:
        if not self.beating and self.clock.now < self.drain_until:
            self.beating = True
            self.at(self.clock.now + timedelta(seconds=HEARTBEAT_SECONDS), self.heartbeat)

    def schedule_hours(self) -> None:
        """Each agent's blocks online (or the rotation of a group's seats) over the run."""
        by_group: dict[int, list[SimAgent]] = {}
        for agent in self.agents:
            by_group.setdefault(id(agent.group), []).append(agent)
        for members in by_group.values():
            group = members[0].group
            if group.rotation:
                self.schedule_rotation(members, group)
                continue
            for agent in members:
                for begin, end in self.blocks(group):
                    self.at(begin, self.go_online, agent)
                    self.at(end, self.leave, agent)

    def blocks(self, group: AgentGroup) -> list[tuple[datetime, datetime]]:
        day = self.start.replace(hour=0, minute=0, second=0, microsecond=0)
        out = []
        while day < self.horizon:
            if day.weekday() in group.weekdays:
                for a, b in group.hours:
                    begin = day + timedelta(hours=a)
                    end = day + timedelta(hours=b)
                    begin, end = max(begin, self.start), min(end, self.horizon)
                    if begin < end:
                        out.append((begin, end))
            day += timedelta(days=1)
        return out

    def schedule_rotation(self, members: list[SimAgent], group: AgentGroup) -> None:
        """``count`` seats, each held in turns by the group's teams; a seat passes on
        only when its leaving agent's last ticket is resolved, so exactly ``count``
        agents take offers at any time."""
        teams = len(members) // group.count
        turn = timedelta(hours=group.rotation)
        for seat in range(group.count):
            holders = [members[team * group.count + seat] for team in range(teams)]
            self.at(self.start, self.go_online, holders[0])
            moment, index = self.start + turn, 0
            while moment < self.drain_until:
                self.at(moment, self.hand_over, holders[index], holders[(index + 1) % teams])
                moment += turn
                index = (index + 1) % teams

    def hours_of_run(self):
        moment = self.start.replace(minute=0, second=0, microsecond=0)
        while moment < self.horizon:
            yield moment
            moment += timedelta(hours=1)

    def seats_scheduled(self, moment: datetime) -> int:
        """Seats of the agents whose hours cover the middle of ``moment``'s hour."""
        middle = moment + timedelta(minutes=30)
        seats = 0
        for group in {id(a.group): a.group for a in self.agents}.values():
            if group.rotation:
                seats += group.count * group.capacity
                continue
            members = sum(1 for a in self.agents if a.group is group)
            if any(b <= middle < e for b, e in self.blocks(group)):
                seats += members * group.capacity
        return seats

    def hand_over(self, leaving: SimAgent, taking: SimAgent) -> None:
        if not leaving.online:
            self.go_online(taking)
            return
        leaving.on_left = lambda: self.go_online(taking)
        self.leave(leaving)

    # --- shifts -----------------------------------------------------------------------

    def book_shifts(self) -> None:
        """Staff publish a slot for each block booked agents work; each agent books theirs."""
        wanted: dict[tuple[datetime, datetime], list[SimAgent]] = {}
        for agent in self.agents:
            if agent.group.book_shifts and not agent.group.rotation:
                for begin, end in self.blocks(agent.group):
                    if begin.minute % 30 or end.minute % 30 or begin <= self.clock.now:
                        continue
                    wanted.setdefault((begin, end), []).append(agent)
        if not wanted:
            return
        amount = Decimal(self.scenario.shift_hourly_minimum)
        specs = [
            shifts.SlotSpec(
                starts_at=begin,
                ends_at=end,
                headcount=len(agents),
                incentive_kind="hourly_minimum" if amount else "",
                incentive_amount=amount if amount else None,
            )
            for (begin, end), agents in sorted(wanted.items())
        ]
        slots = shifts.shift_slots_publish(actor=self.staff, specs=specs)
        for slot, ((_, _), agents) in zip(slots, sorted(wanted.items()), strict=True):
            for agent in agents:
                try:
                    shifts.shift_book(agent_id=agent.agent.pk, slot_id=slot.pk)
                    self.tally.bookings += 1
                except (Conflict, Forbidden):
                    self.tally.bookings_refused += 1
        self.shifts_booked = True

    def settle(self) -> None:
        shifts.shift_attendance_settle()

    # --- the platform's periodic work -------------------------------------------------

    def sweep(self, key=None) -> None:
        if key is not None:
            self.sweep_at.discard(key)
        self.ping()
        dispatch.sweep()
        self.tally.sweeps += 1

    def need_periodic_sweep(self) -> None:
        if self.run_sweeps and not self.periodic_sweep_due:
            self.periodic_sweep_due = True
            self.at(self.clock.now + timedelta(seconds=self.scenario.sweep_seconds), self.tick)

    def tick(self) -> None:
        """The sweep at its period, while any ticket of the run still waits."""
        self.periodic_sweep_due = False
        if self.waiting:
            self.sweep()
            self.need_periodic_sweep()

    def housekeeping(self) -> None:
        self.ping()
        presence.presence_sweep()

    def reopen_window(self) -> None:
        ticket_services.tickets_close_after_reopen_window()
        if self.clock.now < self.drain_until:
            self.at(self.clock.now + timedelta(seconds=REOPEN_CLOSE_SECONDS), self.reopen_window)

    # --- a whole run ------------------------------------------------------------------

    def play(self) -> None:
        """Arrivals until the horizon; then tickets still waiting are served until the
        drain ends; whatever is left is cancelled or resolved, and every agent leaves."""
        self.add_customers(60)
        self.book_shifts()
        self.clock.advance_to(self.start)
        self.schedule_hours()
        self.schedule_arrivals()
        if self.run_sweeps:
            self.at(self.start + timedelta(seconds=REOPEN_CLOSE_SECONDS), self.reopen_window)
        self.run(until=self.horizon)
        while (
            not self.stopped
            and self.queue
            and self.clock.now < self.drain_until
            and self.unsettled()
        ):
            self.run(until=min(self.queue[0][0], self.drain_until))
        self.finish()

    def unsettled(self) -> bool:
        return bool(self.waiting) or any(a.active for a in self.agents)

    def finish(self) -> None:
        """The end of the run: the last customers give up, agents finish and leave."""
        self.queue.clear()
        for ticket in [self.tickets[pk] for pk in sorted(self.waiting)]:
            if ticket.waiting:
                try:
                    ticket_services.ticket_cancel(
                        ticket_id=ticket.pk, caller=ticket.customer, reason="The run ended."
                    )
                    self.tally.unanswered_at_end += 1
                except MOVED_ON:
                    pass
                self.closed(ticket)
        for agent in self.agents:
            for ticket_id in sorted(agent.active):
                with contextlib.suppress(*MOVED_ON):
                    ticket_services.ticket_resolve(ticket_id=ticket_id, caller=agent.user)
                self.closed(self.tickets[ticket_id])
            agent.active.clear()
            agent.on_left = None
            agent.leaving = True
            if agent.online:
                self.left_if_done(agent)
            self.disconnect(agent)
        if self.shifts_booked:
            self.settle()
