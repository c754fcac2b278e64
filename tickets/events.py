"""Everything tickets push, built in one place, and the hook dispatch plugs into.

Pushes go to the channel-layer group of the ticket (``ticket.<id>``), which
the ticket's socket joins.  They are scheduled by services with
``transaction.on_commit``, so nothing is pushed for a change that rolled back.
Redis may lose a push: clients resync from the API (``GET …/messages/?since=``)
or by reconnecting with ``?since=``; the database is the truth.

Server → client event types: ``ticket.message``, ``ticket.status``,
``ticket.assigned``, ``queue.position``, ``ticket.waiting`` (why nobody has
taken the ticket yet, once it waited past its target).

The dispatch hook
-----------------
``ticket_queued(ticket_id)`` runs after commit whenever a ticket *enters*
``queued``: when it is opened, reopened by its customer, or requeued (an agent
dropped out, an offer ran out).  Dispatch registers a callable in
``QUEUED_HOOKS`` (from its ``AppConfig.ready``) to offer the ticket to an
agent; until then a queued ticket simply waits in line.
"""

import logging
import math
import time
from collections.abc import Callable

from config import channel_send
from tickets import selectors
from tickets.models import Message, Ticket

logger = logging.getLogger(__name__)

# Called with the ticket id, after commit, each time a ticket enters ``queued``;
# and ``opened=`` the ticket as written when it was just opened (else None).
QUEUED_HOOKS: list[Callable[..., None]] = []


def group_name(ticket_id: int) -> str:
    return f"ticket.{ticket_id}"


# --- event builders ---------------------------------------------------------


def message_event(message: Message) -> dict:
    from tickets.serializers import MessageOutput

    return {
        "type": "ticket.message",
        "ticket_id": message.ticket_id,
        "message": MessageOutput(message).data,
    }


def status_event(ticket: Ticket, *, reason: str = "") -> dict:
    return {
        "type": "ticket.status",
        "ticket_id": ticket.pk,
        "status": ticket.status,
        "reason": reason,
    }


def assigned_event(ticket: Ticket) -> dict:
    agent = ticket.assigned_agent
    return {
        "type": "ticket.assigned",
        "ticket_id": ticket.pk,
        "agent": {"id": agent.pk, "name": agent.user.first_name} if agent else None,
        "assigned_at": ticket.assigned_at.isoformat() if ticket.assigned_at else None,
    }


def waiting_event(ticket_id: int, waiting_reason: dict) -> dict:
    return {"type": "ticket.waiting", "ticket_id": ticket_id, "waiting_reason": waiting_reason}


def position_event(ticket_id: int, place: selectors.QueuePlace) -> dict:
    return {
        "type": "queue.position",
        "ticket_id": ticket_id,
        "queue_position": place.position,
        "eta_seconds": place.eta_seconds,
    }


# --- sending ----------------------------------------------------------------


def push(ticket_id: int, event: dict) -> None:
    """Send one event to everyone watching the ticket.  Never raises: it runs after commit."""
    push_many([(ticket_id, event)])


# --- after-commit reactions, called by services -----------------------------


def message_posted(message_id: int) -> None:
    message = Message.objects.select_related("author").get(pk=message_id)
    push(message.ticket_id, message_event(message))


def status_pushed(ticket: Ticket, *, reason: str = "") -> None:
    """``ticket.status`` (and ``ticket.assigned`` when it is) for a ticket the caller
    has in memory as committed."""
    events = [status_event(ticket, reason=reason)]
    if ticket.status == "assigned":
        events.append(assigned_event(ticket))
    push_many([(ticket.pk, event) for event in events])


def assignment_pushed(ticket: Ticket) -> None:
    """``ticket.status`` and ``ticket.assigned`` for a ticket just assigned, from memory."""
    push_many([(ticket.pk, status_event(ticket)), (ticket.pk, assigned_event(ticket))])


def waiting_pushed(ticket_id: int, waiting_reason: dict) -> None:
    """The customer is told why nobody has taken their ticket yet (the escalation ladder)."""
    push(ticket_id, waiting_event(ticket_id, waiting_reason))


def statuses_pushed(tickets: list[Ticket]) -> None:
    """Push the status of tickets the caller has in memory, as committed: no query."""
    push_many([(ticket.pk, status_event(ticket)) for ticket in tickets])


def push_many(items: list[tuple[int, dict]]) -> None:
    """Send many (ticket id, event) pushes in one trip to the channel layer."""
    try:
        channel_send.group_send_many(
            [
                (group_name(ticket_id), {"type": "ticket.event", "event": event})
                for ticket_id, event in items
            ]
        )
    except Exception:
        # The facts are committed; a client that missed the push resyncs.
        logger.exception("pushing %d ticket events failed", len(items))


def _lane_key(language: str, category: str) -> str:
    return f"lane-push:{language}:{category}"


# Per process: lane -> until when a push already scheduled (by any process)
# will read the lane after a change made now.  Spares asking Redis on each of
# a busy lane's changes.  A little short of the push's due time, for clocks.
_lane_covered: dict[tuple[str, str], float] = {}
CLOCK_MARGIN = 0.1  # seconds


def lane_memo_clear() -> None:
    _lane_covered.clear()


def lane_changed(*, language: str, category: str) -> None:
    """Places in a lane moved (a ticket joined or left it): push everyone's new place.

    A busy lane changes hundreds of times a second, and each push goes to
    every waiting ticket in it: pushing on every change is quadratic.  With
    Celery on Redis the pushes are coalesced: the first change schedules one
    push ``QUEUE_PUSH_INTERVAL_SECONDS`` later and the changes until then ride
    along (the task reads the lane when it runs).  Run eagerly (tests, the
    embedded default) every change pushes at once.

    The Redis key of a scheduled push holds its due time, and each process
    remembers it: until shortly before then, a change in that process needs
    no round trip (the push starts later and reads the lane as changed).
    """
    from django.conf import settings
    from django.core.cache import cache

    from tickets import tasks

    if settings.CELERY_TASK_ALWAYS_EAGER:
        tasks.push_queue_positions.delay(language, category)
        return
    lane, now = (language, category), time.time()
    if _lane_covered.get(lane, 0.0) > now:
        return
    interval = settings.HUMANLINE["QUEUE_PUSH_INTERVAL_SECONDS"]
    key, due = _lane_key(language, category), now + interval
    if cache.add(key, due, timeout=max(interval * 10, 5)):
        tasks.push_queue_positions.apply_async((language, category), countdown=interval)
    else:
        due = cache.get(key)  # another's push: its due time (gone if it has started)
    if isinstance(due, float):
        _lane_covered[lane] = due - CLOCK_MARGIN


def push_lane_positions(*, language: str, category: str) -> int:
    """Push places in line: the head of the lane every time, the whole lane now and then.

    Only tickets with a socket open are told (``watched_places``).  Each push
    costs one message per ticket told.  The first
    ``QUEUE_PUSH_HEAD`` places (the customers about to be served, whose
    numbers move fastest) get every update, and only they are read for it;
    the whole lane is read and told at most every ``QUEUE_PUSH_FULL_SECONDS``,
    and a long one no more than ``QUEUE_PUSH_FULL_RATE`` places a second (a
    line of 100,000: every 50 s).  A client that reconnects or asks the API
    gets its place at once.
    """
    from django.conf import settings
    from django.core.cache import cache

    cache.delete(_lane_key(language, category))  # changes from now on schedule a new push
    policy = settings.HUMANLINE
    head = policy["QUEUE_PUSH_HEAD"]
    full_key = f"lane-full:{language}:{category}"
    if not cache.add(full_key, 1, timeout=policy["QUEUE_PUSH_FULL_SECONDS"]):
        # Between full pushes only the head is read and told: bounded by its size.
        places = selectors.lane_places(language=language, category=category, first=head)
    else:
        places = selectors.lane_places(language=language, category=category)
        every = full_push_every(len(places))
        if every > policy["QUEUE_PUSH_FULL_SECONDS"]:
            cache.set(full_key, 1, timeout=every)
    places = watched_places(places)
    push_many([(ticket_id, position_event(ticket_id, place)) for ticket_id, place in places])
    return len(places)


# --- who is watching ----------------------------------------------------------
#
# A place in line is pushed only to a ticket whose socket is open: in an
# incident most of a long line has no page open, and a push to a group nobody
# joined is a publish to Redis for nothing.  A socket marks its ticket watched
# when it connects and on each ``ping`` (the help centre pings every 25 s);
# the mark lasts ``QUEUE_PUSH_WATCH_SECONDS``.  A socket that connects gets its
# place in its snapshot, so nothing is missed between marks.

WATCHED_READ = 5000  # marks read per cache round trip


def _watch_key(ticket_id: int) -> str:
    return f"ticket-watched:{ticket_id}"


def watching(ticket_id: int) -> None:
    """A socket of the ticket is open: push its places in line for a while."""
    from django.conf import settings
    from django.core.cache import cache

    cache.set(_watch_key(ticket_id), 1, timeout=settings.HUMANLINE["QUEUE_PUSH_WATCH_SECONDS"])


def watched_places(places: list[tuple[int, "selectors.QueuePlace"]]) -> list:
    """The ``(ticket id, place)`` pairs whose ticket has a socket open."""
    from django.core.cache import cache

    kept = []
    for start in range(0, len(places), WATCHED_READ):
        chunk = places[start : start + WATCHED_READ]
        marks = cache.get_many([_watch_key(ticket_id) for ticket_id, _ in chunk])
        kept += [(ticket_id, place) for ticket_id, place in chunk if _watch_key(ticket_id) in marks]
    return kept


def full_push_every(waiting: int) -> int:
    """Seconds between whole-lane pushes: ``QUEUE_PUSH_FULL_SECONDS``, or longer for
    a long lane, told ``QUEUE_PUSH_FULL_RATE`` places a second at most."""
    from django.conf import settings

    policy = settings.HUMANLINE
    return max(
        policy["QUEUE_PUSH_FULL_SECONDS"], math.ceil(waiting / policy["QUEUE_PUSH_FULL_RATE"])
    )


def ticket_queued(ticket_id: int, *, opened: Ticket | None = None) -> None:
    """The dispatch trigger point: a ticket entered ``queued`` (opened, reopened, requeued).

    ``opened`` is a ticket just opened, as written: its lane, priority and
    ``queued_at`` are what was committed, which spares dispatch reading them.
    """
    for hook in QUEUED_HOOKS:
        try:
            hook(ticket_id, opened=opened)
        except Exception:
            # Dispatch's periodic sweeper picks up queued tickets a hook missed.
            logger.exception("queued hook %r failed for ticket %s", hook, ticket_id)
