"""Dispatch: offer each waiting ticket to one eligible agent at a time, live.

Who may be offered what, and in which order, is ``marketplace.dispatch.rules``;
this module asks those questions of the database and writes the answers.
What runs on which event is one table, ``marketplace.events.ROUTES``.  There
are three ways a ticket meets an agent, and one way an offer is written:

- ``offer_new_ticket``: a ticket entered the queue; its best free agent is
  offered it at once, in the process that queued it;
- ``pull``: an agent became free (answered an offer, resolved a ticket, came
  online); they are offered the first ticket in line they may take;
- ``dispatch_pass``: every lane (language × category) in which someone online
  could serve a waiting ticket, its tickets in queue order, shared out over
  the free agents as one assignment (``matching.match_batch``); run when the
  two above cannot decide alone, and by the periodic ``sweep``;
- ``offers_make``: every offer, whichever path chose it, is written here.

Every function that writes is a transaction over the ticket, offer and agent
rows.  Locks are always taken in the order offer → ticket → agent (a new
offer: ticket → agent, then the insert), so two paths never wait on each
other in a circle.  Ticket status changes go through ``tickets.services``.
The invariants are also database constraints:

- one pending offer per ticket   → unique index ``offer_one_pending_per_ticket``
- one pending offer per agent    → unique index ``offer_one_pending_per_agent``
- one assignee per ticket        → ``Ticket.assigned_agent`` (one column) and
                                   ``ticket_assigned_has_agent``
- never above capacity           → ``agent_never_above_capacity``
  (``active_tickets <= capacity``, kept by tickets.services)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import BooleanField, Count, Exists, ExpressionWrapper, F, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from agents import presence as agent_presence
from agents.models import Agent, AgentConnection, Presence, User
from config import effects, prepared, rows
from config.errors import InvalidInput, InvalidTransition
from marketplace import events
from marketplace.dispatch import matching, rules
from marketplace.models import DeclineReason, Offer, OfferStatus
from marketplace.services import escalation
from marketplace.services import pricing as pricing_services
from tickets import services as ticket_services
from tickets.models import Message, Rung, Ticket, TicketStatus, queue_order
from tickets.selectors import queued_ahead

logger = logging.getLogger(__name__)


def _policy(name: str):
    return settings.HUMANLINE[name]


# How many of a new ticket's best agents its offer tries, in rank order, when
# concurrent dispatchers hold the first ones (their rows are skipped, not
# waited for).
FAST_PATH_AGENTS = 16
# How many heads of their queue a freed agent's offer tries, in order, when
# concurrent dispatchers hold the first ones.
PULL_TICKETS = 4


# --- writing offers -------------------------------------------------------------------

# Several tickets (a pass, a pull), and one (a new ticket): PostgreSQL plans a
# statement about an array of ids again on every call, as the array's size
# changes its estimates, so the one-ticket case has a statement of its own.
_LOCK_QUEUED = prepared.Statement(
    "humanline_lock_queued",
    f"SELECT {rows.columns(Ticket, 't')} FROM {Ticket._meta.db_table} t"  # noqa: S608
    " WHERE t.id = ANY(%s) AND t.status = %s"
    " ORDER BY t.id FOR UPDATE SKIP LOCKED",
)
_LOCK_QUEUED_ONE = prepared.Statement(
    "humanline_lock_queued_one",
    f"SELECT {rows.columns(Ticket, 't')} FROM {Ticket._meta.db_table} t"  # noqa: S608
    " WHERE t.id = %s AND t.status = %s FOR UPDATE SKIP LOCKED",
)


def _lock_queued(ticket_ids: list[int]) -> list[Ticket]:
    """These tickets that are still queued, locked; those another transaction holds
    are skipped.  Every offer runs it: on PostgreSQL one statement built once
    (``config.rows``), elsewhere the ORM's."""
    if not rows.direct():
        return list(
            Ticket.objects.select_for_update(skip_locked=True)
            .filter(pk__in=ticket_ids, status=TicketStatus.QUEUED)
            .order_by("pk")
        )
    with connection.cursor() as cursor:
        if len(ticket_ids) == 1:
            _LOCK_QUEUED_ONE.execute(connection, cursor, [ticket_ids[0], TicketStatus.QUEUED])
        else:
            _LOCK_QUEUED.execute(connection, cursor, [list(ticket_ids), TicketStatus.QUEUED])
        return [ticket for (ticket,) in (rows.instances(r, (Ticket,)) for r in cursor.fetchall())]


def offers_make(
    *,
    choices: list[tuple[int, list[int]]],
    now: datetime | None = None,
    multiplier: Decimal | None = None,
    waiting: list[int] | None = None,
) -> list[Offer]:
    """Offer each ticket to the first of its agents still free, in one transaction.

    ``choices`` are (ticket, agents best first), in the order the tickets are
    to be served; an agent gets one offer at most.  Whatever was chosen from
    a read a moment ago is read again under the row locks: the tickets still
    ``queued``, the agents still free (E1, E2, E5, E6) and the pairs still
    allowed (E7), in one read (``rules.free_agents``, or ``first_free_agent``
    for one ticket).  Rows another dispatcher
    holds are skipped (``SKIP LOCKED``), not waited for: it is deciding them.
    Languages and skills (E3, E4) are not read again; they change only when
    staff edit an agent.

    The price is fixed in: the rate card's amount for the category, times
    the surge now (or ``multiplier``, when the caller fixes it), plus the
    waiting bonus of a ticket past its target (``escalation.waiting_bonus``).

    ``waiting``, when given, gets the tickets found still ``queued`` and not
    held: a ticket missing from it had been offered, had left the queue, or
    was being decided by another dispatcher.
    """
    if not choices:
        return []
    now = now or timezone.now()
    prices = pricing_services.prices_now()
    rates = prices.rates
    if multiplier is None:
        multiplier = prices.surge.multiplier
    currency = pricing_services.currency()
    window = timedelta(seconds=_policy("OFFER_WINDOW_SECONDS"))
    ticket_ids = [ticket_id for ticket_id, _ in choices]
    try:
        with transaction.atomic():
            tickets = {ticket.pk: ticket for ticket in _lock_queued(ticket_ids)}
            if waiting is not None:
                waiting.extend(tickets)
            if not tickets:
                return []
            wanted = {
                agent_id
                for ticket_id, agents in choices
                if ticket_id in tickets
                for agent_id in agents
            }
            bonus_offers = escalation.bonus_offers_before(list(tickets.values()))
            if len(choices) == 1:
                # One ticket and its best few agents (a new ticket): only the
                # first still free is locked, so that concurrent new tickets
                # fan out over the others instead of skipping them all.
                ((ticket_id, agents),) = choices
                found = rules.first_free_agent(agents, ticket_id, now)
                free = {} if found is None else {found: set()}
            else:
                free = rules.free_agents(wanted, tickets, now, lock=True)
            offers: list[Offer] = []
            for ticket_id, agents in choices:
                ticket = tickets.get(ticket_id)
                if ticket is None:
                    continue
                agent_id = next((a for a in agents if a in free and ticket_id not in free[a]), None)
                if agent_id is None:
                    continue
                del free[agent_id]
                tickets.pop(ticket_id)
                base = pricing_services.base_rate(
                    category=ticket.category, currency_code=currency, rates=rates
                )
                bonus = escalation.waiting_bonus(
                    ticket=ticket, offers_before=bonus_offers.get(ticket_id, 0)
                )
                offers.append(
                    Offer(
                        ticket=ticket,
                        agent_id=agent_id,
                        base_amount=base,
                        surge_multiplier=multiplier,
                        waiting_bonus=bonus,
                        amount=pricing_services.pricing.task_price(base=base, multiplier=multiplier)
                        + bonus,
                        currency=currency,
                        created_at=now,
                        expires_at=now + window,
                    )
                )
            if offers:
                if rows.direct():
                    rows.insert(offers)  # the ORM's bulk insert cost more to compose than to run
                else:
                    Offer.objects.bulk_create(offers)
                ticket_services.tickets_offer_many(
                    tickets=[offer.ticket for offer in offers],
                    reasons={o.ticket_id: f"Offered to agent {o.agent_id}." for o in offers},
                )
                # The pushes are built from the rows written here: no re-read.
                effects.after_commit(lambda offers=offers: events.offers_made(offers=offers))
    except IntegrityError:
        # Only possible if a row changed hands outside these locks (the unique
        # indexes refused a second pending offer); the next pass decides again.
        logger.warning("offers for %d tickets lost a race; left to the next pass", len(choices))
        return []
    return offers


def offer_make(*, ticket_id: int, agent_id: int, multiplier: Decimal | None = None) -> Offer | None:
    """Offer one queued ticket to one agent, or None if either is no longer free."""
    offers = offers_make(choices=[(ticket_id, [agent_id])], multiplier=multiplier)
    return offers[0] if offers else None


# --- the three ways a ticket meets an agent ---------------------------------------------


def _settled(now: datetime) -> datetime:
    """Tickets that entered the queue before this are no longer their own fast path's."""
    return now - events.just_queued()


def offer_new_ticket(
    *, ticket_id: int, opened: Ticket | None = None, now: datetime | None = None
) -> bool:
    """A ticket entered the queue: offer it now to the first of its best free agents.

    Runs right after the commit, in the process that queued the ticket, so a
    customer meets an agent without a hop through the broker.  The best few
    agents are tried in rank order under ``SKIP LOCKED``, so concurrent new
    tickets fan out over the free agents instead of queueing on the best one.
    ``opened`` is the ticket as just written, when it was just opened.

    It does not jump the line: tickets of its lane that waited past their own
    fast path (``events.just_queued``) and sit ahead of it must still find an
    agent each among the ones it could have.  When they are fewer, the ticket
    takes the best, as the pass would leave enough for them; when they are as
    many, the pass decides, serving the lane in order.

    True when the ticket got an offer, no longer waits, another dispatcher is
    deciding it (a pass or a pull got to it first: that one asks for a pass
    if it cannot offer it), or nobody can take it now (the pull or the sweep
    will, when someone can).  False asks for a pass: as many tickets wait
    ahead of it as it has agents, or concurrent dispatchers took every agent
    it could have.  A ticket taken by a pass asks for no other: under load,
    passes taking young tickets would otherwise each ask for the next.
    """
    now = now or timezone.now()
    ticket = opened or Ticket.objects.filter(pk=ticket_id).first()
    if ticket is None or ticket.status != TicketStatus.QUEUED:
        return True
    agents = rules.agents_for(rules.Target.of(ticket), now, limit=FAST_PATH_AGENTS)
    if not agents:
        return True
    ahead = queued_ahead(ticket=ticket, since_before=_settled(now), at_most=len(agents))
    if ahead >= len(agents):
        return False
    waiting: list[int] = []
    return bool(offers_make(choices=[(ticket.pk, agents)], now=now, waiting=waiting)) or not waiting


# Whether any ticket waits past its own fast path.  The status is written into
# the text so that the plan may read a partial index of the waiting tickets
# (their partial indexes' conditions must be proved from the text).
_SETTLED_WAITING = prepared.Statement(
    "humanline_settled_waiting",
    f"SELECT 1 FROM {Ticket._meta.db_table}"  # noqa: S608 (names and a constant)
    f" WHERE status = '{TicketStatus.QUEUED}' AND queued_at < %s LIMIT 1",
)


def settled_waiting(*, now: datetime | None = None) -> bool:
    """Does a ticket wait that is no longer its own fast path's (``events.just_queued``)?

    One index read: a freed agent looks before joining a running pass.
    """
    settled = connection.ops.adapt_datetimefield_value(_settled(now or timezone.now()))
    with connection.cursor() as cursor:
        _SETTLED_WAITING.execute(connection, cursor, [settled])
        return cursor.fetchone() is not None


def pull(*, agent_id: int, now: datetime | None = None) -> bool:
    """A free agent takes the first ticket in line that they may be offered.

    Only tickets that have waited past ``events.just_queued()``: a younger one
    is its own fast path's, which chooses the best agent for it.  True when
    the agent got an offer or nothing waits that they may take; False asks
    for a pass (the tickets were all held by other dispatchers, or the agent
    was offered something else meanwhile).
    """
    now = now or timezone.now()
    heads = rules.tickets_for(agent_id, now, settled=_settled(now), limit=PULL_TICKETS)
    if not heads:
        return True
    return bool(offers_make(choices=[(ticket_id, [agent_id]) for ticket_id in heads], now=now))


def _wide() -> Q:
    """Tickets whose wider pool is open (rule E4): they form lanes of their own."""
    return Q(escalation__gte=Rung.WIDER_POOL)


def _lanes() -> list[tuple[str, str, bool]]:
    """(language, category, wide) of every queued ticket."""
    return list(
        Ticket.objects.filter(status=TicketStatus.QUEUED)
        .annotate(wide=ExpressionWrapper(_wide(), output_field=BooleanField()))
        .order_by()
        .values_list("language", "category", "wide")
        .distinct()
    )


def lanes_depth() -> list[tuple[str, str, bool, int]]:
    """(language, category, wide, queued tickets) of every lane with a queued ticket:
    the lanes a pass serves, counted in one statement (the operators' metrics)."""
    return list(
        Ticket.objects.filter(status=TicketStatus.QUEUED)
        .annotate(wide=ExpressionWrapper(_wide(), output_field=BooleanField()))
        .order_by()
        .values_list("language", "category", "wide")
        .annotate(n=Count("id"))
    )


def lane_queue(*, language: str, category: str, wide: bool = False):
    """The queued tickets of a lane, first in line first, as ids."""
    return (
        Ticket.objects.filter(status=TicketStatus.QUEUED, language=language, category=category)
        .filter(_wide() if wide else ~_wide())
        .order_by(*queue_order())
        .values_list("pk", flat=True)
    )


def plan_pass(*, now: datetime) -> tuple[list[int], dict[int, list[int]]]:
    """The queued tickets a pass may serve, in queue order, with each one's free agents.

    Lane by lane (language, category, and whether the ladder's wider pool is
    open): a lane in which nobody online may serve a ticket costs one read and
    holds back no other lane.  In a lane with free eligible agents,
    its tickets are read in queue order, a chunk at a time, until each of
    those agents is wanted by one of them (E7 allowing), or the lane ends:
    the tickets further back could only have the agents already wanted.
    """
    choices: dict[int, list[int]] = {}
    for language, category, wide in _lanes():
        lane = rules.Target(language=language, category=category, wide=wide)
        agents = rules.agents_for(lane, now)
        if not agents:
            continue
        queued = lane_queue(language=language, category=category, wide=wide)
        chunk, start, unwanted = max(2 * len(agents), 50), 0, set(agents)
        while unwanted:
            ids = list(queued[start : start + chunk])
            if not ids:
                break
            start += chunk
            passed = rules.passed_pairs(ids, agents, now)
            for ticket_id in ids:
                allowed = [a for a in agents if (ticket_id, a) not in passed]
                if allowed:
                    choices[ticket_id] = allowed
                    wanted = next((a for a in allowed if a in unwanted), None)
                    unwanted.discard(wanted)
    ordered = list(
        Ticket.objects.filter(pk__in=choices).order_by(*queue_order()).values_list("pk", flat=True)
    )
    return ordered, choices


def dispatch_pass(*, now: datetime | None = None) -> int:
    """Offer waiting tickets to free agents, lane by lane; the number of offers made.

    Several may run at once: each offer is made under locks that re-check
    everything (``offers_make``), so a lost race only skips a pair.
    """
    now = now or timezone.now()
    tickets, choices = plan_pass(now=now)
    pairs = matching.match_batch(tickets, choices)
    return len(offers_make(choices=[(ticket, [agent]) for ticket, agent in pairs], now=now))


# --- one pass at a time ---------------------------------------------------------------

LOCK_KEY, AGAIN_KEY = "dispatch:running", "dispatch:again"


def pass_running() -> bool:
    """Is a pass running in another process (with a broker: run eagerly, none is)?"""
    return not settings.CELERY_TASK_ALWAYS_EAGER and bool(cache.get(LOCK_KEY))


def pass_request(*, running: bool | None = None) -> None:
    """Ask for a pass: the one running goes round again, or a task runs one.

    Under load many events ask for a pass each second.  When one is running,
    the flag makes it go round once more after its current round, and no
    task is queued.  The flag is set before the lock is looked at, and the
    holder drops the lock before its last look at the flag
    (``dispatch_single_flight``): either the holder sees the flag, or the
    asker finds no lock and queues a task.  Run eagerly (tests, the embedded
    default), the task runs here.  ``running`` is ``pass_running()`` when the
    caller has just asked it (a freed agent at saturation): not asked again.
    """
    from marketplace import tasks

    if running if running is not None else pass_running():
        cache.set(AGAIN_KEY, 1, timeout=30)
        if pass_running():
            return
    tasks.dispatch.delay()


def dispatch_single_flight(*, max_passes: int = 50, pause=time.sleep) -> int:
    """Run ``dispatch_pass`` unless one is running; then that one runs again for us.

    One pass at a time runs (a cache lock, Redis in production); a request
    arriving meanwhile sets a flag that makes the running pass go round once
    more.  Each pass matches everything waiting, so nothing is lost; the
    periodic sweep covers a crashed holder (the lock expires).  Passes run
    back to back start at least ``DISPATCH_PASS_INTERVAL_MS`` apart, so that
    the requests of those milliseconds share the next pass.
    """
    made = 0
    if not cache.add(LOCK_KEY, 1, timeout=30):
        cache.set(AGAIN_KEY, 1, timeout=30)
        return 0
    interval = _policy("DISPATCH_PASS_INTERVAL_MS") / 1000
    try:
        for number in range(max_passes):
            started = time.monotonic()
            cache.delete(AGAIN_KEY)
            made += dispatch_pass()
            if not cache.get(AGAIN_KEY) or number == max_passes - 1:
                break
            rest = interval - (time.monotonic() - started)
            if rest > 0:
                pause(rest)
    finally:
        cache.delete(LOCK_KEY)
    if cache.get(AGAIN_KEY):
        # A request slipped in between our last look and the release.
        made += dispatch_single_flight(max_passes=max_passes, pause=pause)
    return made


# --- answering offers -----------------------------------------------------------------


def _own_offer(*, offer_id: int, user: User, with_ticket: bool = False) -> Offer:
    """The caller's offer, locked; ``Offer.DoesNotExist`` (a 404) for anyone else's.

    ``with_ticket`` locks its ticket too, in the same statement (read with its
    customer).  The agent row is read, not locked here: ``ticket_assign``
    locks it after the ticket, keeping the order offer → ticket → agent.
    """
    if with_ticket and rows.direct():
        return _offer_to_accept(offer_id=offer_id, user=user)
    of, related = ("self",), ["agent"]
    if with_ticket:
        of, related = ("self", "ticket"), ["agent", "ticket__customer"]
    return (
        Offer.objects.select_for_update(of=of)
        .select_related(*related)
        .get(pk=offer_id, agent__user=user)
    )


_ACCEPT_ROWS = (Offer, Ticket, User, Agent)
_accept_statement: prepared.Statement | None = None


def _offer_to_accept(*, offer_id: int, user: User) -> Offer:
    """``_own_offer(with_ticket=True)`` as one statement built once (``config.rows``):
    every accept reads it, and the ORM's query cost more to compose than to run."""
    global _accept_statement
    if _accept_statement is None:
        offer, ticket = Offer._meta, Ticket._meta
        selected = ", ".join(rows.columns(m, a) for m, a in zip(_ACCEPT_ROWS, "otca", strict=True))
        _accept_statement = prepared.Statement(
            "humanline_offer_to_accept",
            f"SELECT {selected} FROM {offer.db_table} o"  # noqa: S608 (table and column names only)
            f" JOIN {Agent._meta.db_table} a ON a.id = o.{offer.get_field('agent').column}"
            f" JOIN {ticket.db_table} t ON t.id = o.{offer.get_field('ticket').column}"
            f" JOIN {User._meta.db_table} c ON c.id = t.{ticket.get_field('customer').column}"
            f" WHERE o.id = %s AND a.{Agent._meta.get_field('user').column} = %s"
            " FOR UPDATE OF o, t",
        )
    with connection.cursor() as cursor:
        _accept_statement.execute(connection, cursor, [offer_id, user.pk])
        row = cursor.fetchone()
    if row is None:
        raise Offer.DoesNotExist(offer_id)
    offer, ticket, customer, agent = rows.instances(row, _ACCEPT_ROWS)
    ticket.customer, offer.ticket, offer.agent = customer, ticket, agent
    return offer


# The accepted offer's answer: every accept writes it, and the ORM's update cost
# more to compose than to run (prepared: planning it cost about as much again).
_ANSWER = prepared.Statement(
    "humanline_offer_answer",
    f"UPDATE {Offer._meta.db_table} SET status = %s, answered_at = %s WHERE id = %s",  # noqa: S608
)


def _refuse_unless_open(offer: Offer, *, now: datetime) -> None:
    if offer.status != OfferStatus.PENDING:
        raise InvalidTransition(
            _("This offer is %(status)s and can no longer be answered.") % {"status": offer.status},
            code=f"offer_{offer.status}",
            fields={"status": [offer.status]},
        )
    if offer.expires_at <= now:
        raise InvalidTransition(
            _("This offer has expired."), code="offer_expired", fields={"status": ["expired"]}
        )


@transaction.atomic
def offer_accept(*, offer_id: int, user: User) -> Offer:
    """The offered agent takes the ticket: it is assigned to them at the locked price.

    ``Offer.DoesNotExist`` for anyone else's offer (a 404); ``InvalidTransition``
    or ``Conflict`` (a 409) when it can no longer be taken, with nothing written.
    """
    offer = _own_offer(offer_id=offer_id, user=user, with_ticket=True)
    now = timezone.now()
    _refuse_unless_open(offer, now=now)
    offer.agent.user = user  # the caller's own offer
    offer.ticket = ticket_services.ticket_assign_within(
        ticket_id=offer.ticket_id,
        agent_id=offer.agent_id,
        actor=user,
        reason=f"Accepted offer {offer.pk}.",
        agent=offer.agent,
        locked=offer.ticket,
    )
    offer.status, offer.answered_at = OfferStatus.ACCEPTED, now
    with connection.cursor() as cursor:
        _ANSWER.execute(
            connection,
            cursor,
            [offer.status, connection.ops.adapt_datetimefield_value(now), offer.pk],
        )
    if offer.agent.expired_streak:  # read with the offer's lock (select_related)
        Agent.objects.filter(pk=offer.agent_id).update(expired_streak=0)
    # The push is built from the offer and the ticket as written here: no re-read.
    effects.after_commit(lambda offer=offer: events.offer_accepted(offer=offer))
    return offer


@transaction.atomic
def offer_decline(*, offer_id: int, user: User, reason: str = "", note: str = "") -> Offer:
    """The offered agent passes; the ticket goes at once to the next best agent.

    ``reason`` is one of ``DeclineReason`` or empty: ``not_my_area`` keeps the
    agent off this ticket for good (``rules.passed``), any other for the
    cool-down.  ``note`` is the agent's own words, kept with the offer.
    """
    reason = (reason or "").strip()
    if reason and reason not in DeclineReason.values:
        message = _("Choose one of: %(choices)s.") % {"choices": ", ".join(DeclineReason.values)}
        raise InvalidInput(message, code="invalid_reason", fields={"reason": [message]})
    offer = _own_offer(offer_id=offer_id, user=user)
    now = timezone.now()
    _refuse_unless_open(offer, now=now)
    offer.status, offer.answered_at = OfferStatus.DECLINED, now
    offer.decline_reason, offer.reason = reason, (note or "").strip()[:200]
    offer.save(update_fields=["status", "answered_at", "decline_reason", "reason"])
    if offer.agent.expired_streak:
        Agent.objects.filter(pk=offer.agent_id).update(expired_streak=0)
    # Requeueing triggers dispatch after commit (tickets.events.QUEUED_HOOKS).
    ticket_services.ticket_requeue(
        ticket_id=offer.ticket_id,
        reason=f"Offer {offer.pk} declined by the agent"
        + (f" ({offer.get_decline_reason_display().lower()})." if reason else "."),
    )
    return offer


def offer_seen(*, offer_id: int, user: User) -> Offer:
    """The agent's console shows the offer: acknowledged once (``offer.seen``).

    A conditional update, no lock: the first acknowledgement wins and later
    ones change nothing.  ``Offer.DoesNotExist`` for anyone else's offer.
    """
    now = timezone.now()
    Offer.objects.filter(
        pk=offer_id, agent__user=user, status=OfferStatus.PENDING, seen_at__isnull=True
    ).update(seen_at=now)
    return Offer.objects.select_related("ticket").get(pk=offer_id, agent__user=user)


def _end_pending(*, offer_id: int, status: str, reason: str, now: datetime) -> Offer | None:
    """Close a pending offer the agent did not answer; requeue its ticket.  Caller: atomic."""
    offer = (
        Offer.objects.select_for_update(skip_locked=True)
        .filter(pk=offer_id, status=OfferStatus.PENDING)
        .first()
    )
    if offer is None:
        return None
    offer.status, offer.answered_at, offer.reason = status, now, reason
    offer.save(update_fields=["status", "answered_at", "reason"])
    # The ticket may have been cancelled meanwhile; only an offered one goes back.
    if Ticket.objects.filter(pk=offer.ticket_id, status=TicketStatus.OFFERED).exists():
        ticket_services.ticket_requeue(
            ticket_id=offer.ticket_id, reason=f"Offer {offer.pk} {status}: {reason}."
        )
    return offer


def offers_expire_overdue(*, now: datetime | None = None) -> int:
    """Expire the pending offers past their window; three seen in a row set the agent away.

    An offer the agent's console never acknowledged (``offer_seen``) may have
    been lost on its way (Redis may lose a push): its expiry does not count
    toward ``OFFER_EXPIRIES_BEFORE_AWAY``, nor does it end the streak.
    """
    now = now or timezone.now()
    away_after = _policy("OFFER_EXPIRIES_BEFORE_AWAY")
    expired = 0
    overdue = list(
        Offer.objects.filter(status=OfferStatus.PENDING, expires_at__lte=now).values_list(
            "pk", flat=True
        )[:1000]
    )
    for offer_id in overdue:
        with transaction.atomic():
            offer = _end_pending(
                offer_id=offer_id,
                status=OfferStatus.EXPIRED,
                reason="not answered in time",
                now=now,
            )
            if offer is None:
                continue
            expired += 1
            effects.after_commit(lambda offer_id=offer.pk: events.offer_ended(offer_id=offer_id))
            if offer.seen_at is None:
                continue
            Agent.objects.filter(pk=offer.agent_id).update(expired_streak=F("expired_streak") + 1)
            streak = Agent.objects.values_list("expired_streak", flat=True).get(pk=offer.agent_id)
            if streak >= away_after:
                Agent.objects.filter(pk=offer.agent_id).update(expired_streak=0)
                agent_presence.agent_presence_system(
                    agent_id=offer.agent_id, status=Presence.AWAY, reason="missed_offers"
                )
    return expired


def _withdraw(offers, *, reason: str) -> int:
    now = timezone.now()
    withdrawn = 0
    for offer_id in list(offers.filter(status=OfferStatus.PENDING).values_list("pk", flat=True)):
        with transaction.atomic():
            offer = _end_pending(
                offer_id=offer_id, status=OfferStatus.WITHDRAWN, reason=reason, now=now
            )
            if offer is not None:
                withdrawn += 1
                effects.after_commit(
                    lambda offer_id=offer.pk: events.offer_ended(offer_id=offer_id)
                )
    return withdrawn


def offers_withdraw_for_agent(*, agent_id: int, reason: str) -> int:
    """The agent left (away, offline, suspended, sockets gone): their offers go back.

    Only while they are still gone.  The task may run again long after they
    left (a redelivery once its worker died), when they may be back online with
    a new offer, which is theirs to answer.  Offers go only to online agents,
    so the ones pending while the agent is not online were made before they left.
    """
    offers = Offer.objects.filter(agent_id=agent_id).exclude(agent__presence=Presence.ONLINE)
    return _withdraw(offers, reason=reason)


def offers_withdraw_for_ticket(*, ticket_id: int, reason: str) -> int:
    """The ticket stopped waiting (cancelled): its pending offer is withdrawn."""
    return _withdraw(Offer.objects.filter(ticket_id=ticket_id), reason=reason)


# --- taking work back -----------------------------------------------------------------


def _requeue_assigned(*, ticket_id: int, agent_id: int, reason: str) -> bool:
    with transaction.atomic():
        ticket = (
            Ticket.objects.select_for_update(skip_locked=True)
            .filter(pk=ticket_id, status=TicketStatus.ASSIGNED, assigned_agent_id=agent_id)
            .first()
        )
        if ticket is None:
            return False
        ticket_services.ticket_requeue(ticket_id=ticket.pk, reason=reason)
        effects.after_commit(
            lambda ticket_id=ticket.pk, agent_id=agent_id, reason=reason: events.assignment_lost(
                ticket_id=ticket_id, agent_id=agent_id, reason=reason
            )
        )
    return True


def assignments_return_for_agent(*, agent_id: int, reason: str) -> int:
    """Every ticket assigned to the agent goes back to the queue (suspension)."""
    tickets = list(
        Ticket.objects.filter(assigned_agent_id=agent_id, status=TicketStatus.ASSIGNED).values_list(
            "pk", flat=True
        )
    )
    return sum(_requeue_assigned(ticket_id=t, agent_id=agent_id, reason=reason) for t in tickets)


def _disconnected_assignments(*, now: datetime):
    """Assigned tickets whose agent has had no live socket for the longer grace period."""
    grace = now - timedelta(seconds=_policy("ASSIGNED_TICKET_GRACE_SECONDS"))
    stale = now - timedelta(seconds=_policy("AGENT_SOCKET_STALE_SECONDS"))
    alive = AgentConnection.objects.filter(
        agent=OuterRef("assigned_agent"), closed_at__isnull=True, last_seen_at__gte=stale
    )
    recent = AgentConnection.objects.filter(
        agent=OuterRef("assigned_agent"), last_seen_at__gte=grace
    )
    return (
        Ticket.objects.filter(status=TicketStatus.ASSIGNED, assigned_at__lt=grace)
        .exclude(Exists(alive))
        .exclude(Exists(recent))
    )


def _silent_assignments(*, now: datetime):
    """Assigned tickets whose agent has not written to the customer within the limit."""
    limit = now - timedelta(seconds=_policy("AGENT_FIRST_REPLY_SECONDS"))
    replied = Message.objects.filter(
        ticket=OuterRef("pk"),
        author=OuterRef("assigned_agent__user"),
        created_at__gte=OuterRef("assigned_at"),
    )
    return Ticket.objects.filter(status=TicketStatus.ASSIGNED, assigned_at__lte=limit).exclude(
        Exists(replied)
    )


def assignments_reclaim(*, now: datetime | None = None) -> dict[str, int]:
    now = now or timezone.now()
    counts = {"disconnected": 0, "silent": 0}
    for reason, queryset in (
        ("disconnected", _disconnected_assignments(now=now)),
        ("silent", _silent_assignments(now=now)),
    ):
        text = {
            "disconnected": "The agent lost their connection; finding you another agent.",
            "silent": "The agent did not reply in time; finding you another agent.",
        }[reason]
        for ticket_id, agent_id in list(queryset.values_list("pk", "assigned_agent_id")[:500]):
            counts[reason] += _requeue_assigned(ticket_id=ticket_id, agent_id=agent_id, reason=text)
    return counts


# --- the sweeper ----------------------------------------------------------------------


def sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Repair what a lost message or a dead worker left behind, then dispatch.

    Expires overdue offers, takes back tickets from vanished or silent agents,
    climbs the escalation ladder of tickets past their target, and offers
    whatever is waiting (a ticket whose cool-down ran out goes round again
    here).  Runs every second or two (Celery beat; an in-process loop in the
    embedded default).
    """
    now = now or timezone.now()
    result = {"expired": offers_expire_overdue(now=now)}
    result.update(assignments_reclaim(now=now))
    result["escalated"] = escalation.escalate_overdue(now=now)
    result["offered"] = dispatch_pass(now=now)
    for hook in SWEPT_HOOKS:
        hook(result)
    return result


# Called with each sweep's result (what it repaired, by kind): the operators'
# metrics count them (operations.counters).
SWEPT_HOOKS: list[Callable[[dict[str, int]], None]] = []


# --- hooks from other apps ------------------------------------------------------------


def on_suspension(*, agent: Agent, actor) -> None:
    """SUSPENSION_HOOKS: after the suspension commits, return the agent's work."""
    effects.after_commit(
        lambda agent_id=agent.pk: assignments_return_for_agent(
            agent_id=agent_id, reason="The agent is no longer available; finding you another."
        )
    )
