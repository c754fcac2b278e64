"""Reads about tickets, always scoped to the caller.

Queue position and estimated wait
---------------------------------
A waiting ticket (``queued`` or ``offered``) competes with the waiting tickets
of its *lane*: the same language and category.  Its ``queue_position`` is
1 + the number of lane tickets ahead of it, ordered by priority (urgent, high,
normal), then ``queued_at``, then id — the order dispatch serves them in.

The estimated wait uses the lane's recent service rate: ``n`` = tickets of the
lane assigned to an agent in the last ``QUEUE_ETA_WINDOW_MINUTES``, read
newest first and no more than ``QUEUE_ETA_SAMPLES``.  With fewer than
``QUEUE_ETA_MIN_SAMPLES`` the rate is unknown and we assume
``QUEUE_ETA_FALLBACK_SECONDS`` per ticket; below ``QUEUE_ETA_SAMPLES`` one
ticket is served every ``window / n`` seconds; a lane busier than that is
served one ticket every ``(now - earliest) / n`` seconds, ``earliest`` being
the oldest of those ``n`` assignments.  ``eta_seconds = ceil(position *
seconds_per_ticket)``.  Each process keeps a lane's rate for
``QUEUE_ETA_CACHE_SECONDS`` (default 5).

Places without counting the queue
---------------------------------
Counting the tickets ahead costs as much as the line is long: a new ticket at
the back of a lane of 100,000 counted them all, and a list page counted once
per row.  Instead each process keeps each lane's *order*: the sort keys
``(-priority rank, queued_at, id)`` of its waiting tickets, read in one
statement and sorted as ``queue_order`` sorts.  A place is a binary search in
it, ``O(log n)``, however long the line and however many rows a page shows.

The order is this process's view of the lane: read at most
``QUEUE_ORDER_SECONDS`` ago (default 2; a long line, read at most
``QUEUE_ORDER_ROWS_PER_SECOND`` rows a second, less often: ``order_age_limit``),
with every change this process wrote since applied to it as it was written
(``lane_entered``, ``lane_left``, from the services that move tickets in and
out of line).  A read runs while other threads commit: each change is applied
once more when it commits, and kept in a journal for a short while, so that a
read whose statement began before the commit has it applied too, and never
drops what this process wrote.  So a place is exact for what this process did, and lags what
other processes did by that age at most: it may still count a ticket another
process served or cancelled that long ago, or not yet count an urgent one
that entered ahead in that time.  A customer's number moves every second or
so anyway (pushes are coalesced over ``QUEUE_PUSH_INTERVAL_SECONDS``); a
number a second or two behind is not something they can tell, and the next
push or refresh corrects it.  A change that rolls back after being applied
is corrected by the next read, the same way.

A process reads a lane's order the first time it needs it.  Until that read
is done (a line of 100,000 takes about a second), requests on its other
threads count their place in the database, one statement each, instead of
waiting for it.
"""

import math
import threading
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from time import monotonic

from django.conf import settings
from django.db import connection, transaction
from django.db.models import (
    Avg,
    BooleanField,
    Count,
    ExpressionWrapper,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from agents.models import Agent
from config import prepared
from tickets.models import (
    PRIORITY_RANK,
    WAITING,
    Feedback,
    IntegrationApiKey,
    IntegrationCustomer,
    Message,
    Rating,
    Ticket,
    TicketEvent,
    TicketStatus,
    ahead_sql,
    queue_order,
)
from tickets.principals import is_integration

# --- access -----------------------------------------------------------------


def _tickets() -> QuerySet[Ticket]:
    return Ticket.objects.select_related("customer", "assigned_agent__user", "integration")


def tickets_visible_to(*, caller) -> QuerySet[Ticket]:
    """Customers: their own.  Agents: assigned to them.  Staff: all.  Integrations: theirs.

    An agent merely offered a ticket does not see it: the offer carries what
    they need to decide (``marketplace.events.ticket_summary``); the ticket,
    its messages and its socket open when they accept.
    """
    if caller is None or not caller.is_authenticated:
        return Ticket.objects.none()
    if is_integration(caller):
        return _tickets().filter(integration=caller.integration)
    if caller.is_operations:
        return _tickets()
    if caller.is_agent:
        return _tickets().filter(assigned_agent__user=caller)
    if caller.is_customer:
        return _tickets().filter(customer=caller)
    return Ticket.objects.none()


def ticket_for(*, caller, ticket_id: int) -> Ticket:
    """The ticket if the caller may see it; ``Ticket.DoesNotExist`` (a 404) otherwise."""
    return tickets_visible_to(caller=caller).get(pk=ticket_id)


def may_join_conversation(*, user, ticket_id: int) -> bool:
    """The ticket's customer, its assigned agent and staff; nobody else."""
    if user is None or not user.is_authenticated or is_integration(user):
        return False
    return tickets_visible_to(caller=user).filter(pk=ticket_id).exists()


# --- the line ---------------------------------------------------------------


@dataclass(frozen=True)
class QueuePlace:
    position: int
    eta_seconds: int


def _lane(*, language: str, category: str) -> QuerySet[Ticket]:
    return Ticket.objects.filter(status__in=WAITING, language=language, category=category)


# The service rate moves slowly: each process keeps a lane's rate for
# QUEUE_ETA_CACHE_SECONDS rather than reading it for every response.
_rate_cache: dict[tuple[str, str], tuple[float, float]] = {}


def rate_cache_clear() -> None:
    _rate_cache.clear()


# One refresh of the rate at a time per process: otherwise, when the kept rate
# runs out, every request of that moment would count the window again, each in
# its own thread (dozens at once under a backlog of thousands).  The others
# keep using the rate that ran out until the refresh is done.
_rate_refreshing = threading.Lock()


def seconds_per_ticket(*, language: str, category: str, now: datetime | None = None) -> float:
    clock = monotonic()
    cached = _rate_cache.get((language, category))
    current = now is None  # only the rate as of now is kept
    if current and cached is not None:
        if cached[0] > clock:
            return cached[1]
        if not _rate_refreshing.acquire(blocking=False):
            return cached[1]  # another thread is counting it again
        try:
            return _count_rate(language=language, category=category, now=None, clock=clock)
        finally:
            _rate_refreshing.release()
    return _count_rate(language=language, category=category, now=now, clock=clock)


def _count_rate(*, language: str, category: str, now: datetime | None, clock: float) -> float:
    """The lane's seconds per ticket; kept when it is the rate as of now.

    Over the window when the lane served fewer than ``QUEUE_ETA_SAMPLES``
    tickets in it, else over the time its last ``QUEUE_ETA_SAMPLES`` took.
    """
    policy = settings.HUMANLINE
    current = now is None
    now = now or timezone.now()
    window = timedelta(minutes=policy["QUEUE_ETA_WINDOW_MINUTES"])
    # Never fewer than it takes to know the rate at all.
    samples = max(policy["QUEUE_ETA_SAMPLES"], policy["QUEUE_ETA_MIN_SAMPLES"], 1)
    served, earliest = served_in_lane(
        language=language, category=category, since=now - window, limit=samples
    )
    if served < policy["QUEUE_ETA_MIN_SAMPLES"]:
        rate = float(policy["QUEUE_ETA_FALLBACK_SECONDS"])
    elif served < samples:
        rate = window.total_seconds() / served
    else:
        rate = max((now - earliest).total_seconds(), 0.0) / served
    if current:
        _rate_cache[(language, category)] = (clock + policy["QUEUE_ETA_CACHE_SECONDS"], rate)
    return rate


def _served_sql() -> str:
    # The lane's newest assignments, read backwards through ticket_lane_served
    # ((language, category, assigned_at), tickets ever assigned) and no further
    # than the limit: the work is bounded by QUEUE_ETA_SAMPLES however busy
    # the lane and however long the window.
    return (
        "SELECT count(*), min(s.assigned_at) FROM"  # noqa: S608
        f" (SELECT t.assigned_at FROM {Ticket._meta.db_table} t"
        " WHERE t.language = %s AND t.category = %s AND t.assigned_at >= %s"
        " ORDER BY t.assigned_at DESC LIMIT %s) s"
    )


def served_in_lane(
    *, language: str, category: str, since: datetime, limit: int
) -> tuple[int, datetime | None]:
    """The lane's tickets assigned since then, newest first, ``limit`` at most.

    Returns how many (``limit`` when there are more) and when the earliest
    of them was assigned.  A ticket counts once, at its current assignment:
    one that went back to the line (``assigned_at`` cleared) no longer counts.
    """
    params = [language, category, connection.ops.adapt_datetimefield_value(since), limit]
    with connection.cursor() as cursor:
        cursor.execute(_served_sql(), params)
        served, earliest = cursor.fetchone()
    if isinstance(earliest, str):  # SQLite hands the aggregate back as text
        earliest = datetime.fromisoformat(earliest)
    if earliest is not None and timezone.is_naive(earliest):
        earliest = timezone.make_aware(earliest, timezone.get_fixed_timezone(0))
    return served, earliest


def _eta(position: int, per_ticket: float) -> int:
    return math.ceil(position * per_ticket)


_WAITING_SQL = ", ".join(f"'{status.value}'" for status in WAITING)
_TICKET = Ticket._meta.db_table


def _ahead_in_lane_sql(*, priority: str, queued_at: str, ticket: str, lane: str) -> str:
    """The count of the waiting tickets of a lane before a ticket, as SQL (``ahead_sql``)."""
    return (
        f"SELECT COUNT(*) FROM {_TICKET} x WHERE x.status IN ({_WAITING_SQL}) AND {lane}"  # noqa: S608
        f" AND {ahead_sql('x', priority=priority, queued_at=queued_at, ticket=ticket)}"
    )


# Whether a ticket that entered the queue before a moment still waits, queued,
# ahead of a ticket in its lane (dispatch: a new ticket must not jump it).
_QUEUED_AHEAD = (
    f"SELECT COUNT(*) FROM (SELECT 1 FROM {_TICKET} x"  # noqa: S608
    f" WHERE x.status = '{TicketStatus.QUEUED.value}' AND x.language = %(language)s"
    " AND x.category = %(category)s AND x.status_changed_at < %(before)s AND "
    + ahead_sql("x", priority="%(priority)s", queued_at="%(queued_at)s", ticket="%(id)s")
    + " LIMIT %(at_most)s) ahead"
)


# Run for every ticket opened, so prepared once per PostgreSQL connection:
# planning it cost PostgreSQL more than running it.
_QUEUED_AHEAD_STATEMENT = prepared.Statement("humanline_queued_ahead", _QUEUED_AHEAD)


def _one_row(statement: prepared.Statement, params: dict):
    with connection.cursor() as cursor:
        statement.execute(connection, cursor, params)
        return cursor.fetchone()


def _place(ahead: int, *, language: str, category: str) -> QueuePlace:
    position = ahead + 1
    per_ticket = seconds_per_ticket(language=language, category=category)
    return QueuePlace(position=position, eta_seconds=_eta(position, per_ticket))


# --- the lanes' order, kept per process ---------------------------------------


def _order_key(priority: str, queued_at: datetime, ticket_id: int) -> tuple:
    """A waiting ticket's place in ``queue_order`` as a sortable key."""
    return (-PRIORITY_RANK[priority], queued_at, ticket_id)


class _LaneOrder:
    __slots__ = ("keys", "read_at")

    def __init__(self, keys: list, read_at: float):
        self.keys = keys
        self.read_at = read_at


_orders: dict[tuple[str, str], _LaneOrder] = {}
# Guards the dict, each kept list and the journal while a change is applied.
_orders_lock = threading.Lock()
# One read of a lane at a time per process; meanwhile the others use the order kept.
_orders_reading = threading.Lock()
# The changes this process committed lately, oldest first: (when, lane, entered, key).
_journal: deque[tuple[float, tuple[str, str], bool, tuple]] = deque()
# How long a committed change is kept for the reads that began before it: far
# longer than any read of a lane takes.
JOURNAL_SECONDS = 60.0


def lane_orders_clear() -> None:
    with _orders_lock:
        _orders.clear()
        _journal.clear()


def _read_lane(language: str, category: str, *, limit: int | None = None) -> list:
    rows = (
        _lane(language=language, category=category)
        .order_by(*queue_order())
        .values_list("priority", "queued_at", "id")
    )
    keys = [_order_key(*row) for row in (rows[:limit] if limit else rows)]
    keys.sort()  # already the database's order; sorted here so the search may rely on it
    return keys


def _apply(keys: list, key: tuple, entered: bool) -> None:
    at = bisect_left(keys, key)
    present = at < len(keys) and keys[at] == key
    if entered and not present:
        keys.insert(at, key)
    elif not entered and present:
        del keys[at]


def _keep(lane: tuple[str, str], keys: list, began: float) -> None:
    """Keep a lane's order read by a statement that began at ``began``.

    The read's snapshot holds every change committed before it began.  A change
    this process committed since (while the statement ran, or before its result
    was kept here) is in the journal, and is applied to the order again: so a
    read never drops what this process wrote.  Called with ``_orders_lock`` held.
    """
    since = []
    for when, changed, entered, key in reversed(_journal):
        if when < began:
            break
        if changed == lane:
            since.append((key, entered))
    for key, entered in reversed(since):  # in the order they were committed
        _apply(keys, key, entered)
    _orders[lane] = _LaneOrder(keys, began)


def _lane_keys(language: str, category: str) -> list | None:
    """The lane's order as this process knows it, read again when it is too old;
    None while another thread reads it for the first time in this process (a
    line of 100,000 takes a second to read: the caller counts instead of waiting)."""
    lane, clock = (language, category), monotonic()
    kept = _orders.get(lane)
    if kept is not None:
        if clock - kept.read_at < order_age_limit(len(kept.keys)):
            return kept.keys
        if not _orders_reading.acquire(blocking=False):
            return kept.keys  # another thread is reading it again
    else:
        if not _orders_reading.acquire(blocking=False):
            return None
        kept = _orders.get(lane)
        if kept is not None:  # read by another thread meanwhile
            _orders_reading.release()
            return kept.keys
    try:
        keys = _read_lane(language, category)
        with _orders_lock:
            _keep(lane, keys, clock)
        return keys
    finally:
        _orders_reading.release()


def order_age_limit(waiting: int) -> float:
    """How old a lane's kept order may grow: ``QUEUE_ORDER_SECONDS``, or longer for a
    long line, read at ``QUEUE_ORDER_ROWS_PER_SECOND`` at most.  A line of 100,000
    costs about a tenth of a second to read; read every 20 s, its places may lag
    by the tickets served in 20 s, a fraction of a percent of such a place."""
    policy = settings.HUMANLINE
    return max(policy["QUEUE_ORDER_SECONDS"], waiting / policy["QUEUE_ORDER_ROWS_PER_SECOND"])


def _changed(lane: tuple[str, str], key: tuple, entered: bool) -> None:
    """Apply a change now, for the rest of its transaction, and again once it
    commits, journaled for the reads that began before the commit."""
    with _orders_lock:
        kept = _orders.get(lane)
        if kept is not None:
            _apply(kept.keys, key, entered)

    def committed() -> None:
        clock = monotonic()
        with _orders_lock:
            _journal.append((clock, lane, entered, key))
            while _journal and _journal[0][0] < clock - JOURNAL_SECONDS:
                _journal.popleft()
            kept = _orders.get(lane)
            if kept is not None:
                _apply(kept.keys, key, entered)

    transaction.on_commit(committed)


def lane_entered(ticket: Ticket) -> None:
    """This process wrote ``ticket`` into its lane's line (opened, requeued, moved)."""
    key = _order_key(ticket.priority, ticket.queued_at, ticket.pk)
    _changed((ticket.language, ticket.category), key, entered=True)


def lane_left(ticket: Ticket, *, language: str | None = None) -> None:
    """This process took ``ticket`` out of its lane's line (``language``: the lane
    it left, when the ticket has just moved to another)."""
    key = _order_key(ticket.priority, ticket.queued_at, ticket.pk)
    _changed((language or ticket.language, ticket.category), key, entered=False)


# The waiting tickets ahead of one in its lane, counted by the database: for the
# few requests that arrive while their process reads the lane for the first time.
_COUNT_AHEAD = _ahead_in_lane_sql(
    priority="%(priority)s",
    queued_at="%(queued_at)s",
    ticket="%(id)s",
    lane="x.language = %(language)s AND x.category = %(category)s",
)


def _counted_ahead(ticket: Ticket) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            _COUNT_AHEAD,
            {
                "language": ticket.language,
                "category": ticket.category,
                "priority": ticket.priority,
                "queued_at": connection.ops.adapt_datetimefield_value(ticket.queued_at),
                "id": ticket.pk,
            },
        )
        return cursor.fetchone()[0]


def _ahead(ticket: Ticket) -> int:
    keys = _lane_keys(ticket.language, ticket.category)
    if keys is None:
        return _counted_ahead(ticket)
    return bisect_left(keys, _order_key(ticket.priority, ticket.queued_at, ticket.pk))


def queue_place(*, ticket: Ticket) -> QueuePlace | None:
    """Where a waiting ticket stands in its lane; None once it is not waiting.

    A binary search in the lane's order (see "Places without counting the
    queue" above): no statement while the kept order is fresh.
    """
    if ticket.status not in WAITING or ticket.queued_at is None:
        return None
    return _place(_ahead(ticket), language=ticket.language, category=ticket.category)


def queued_ahead(*, ticket: Ticket, since_before: datetime, at_most: int) -> int:
    """How many tickets queued since before then still wait ahead of this one in its
    lane, counted up to ``at_most``."""
    at = connection.ops.adapt_datetimefield_value
    (found,) = _one_row(
        _QUEUED_AHEAD_STATEMENT,
        {
            "language": ticket.language,
            "category": ticket.category,
            "priority": ticket.priority,
            "queued_at": at(ticket.queued_at),
            "id": ticket.pk,
            "before": at(since_before),
            "at_most": at_most,
        },
    )
    return found


# One column by key, on every ticket's creation: the ORM's query for it cost
# more Python to compose than the statement costs to run (prepared: planning it
# cost PostgreSQL more than running it).
_STATUS = prepared.Statement(
    "humanline_ticket_status",
    f"SELECT status FROM {Ticket._meta.db_table} WHERE id = %s",  # noqa: S608
)


def ticket_standing(*, ticket: Ticket) -> tuple[str, QueuePlace | None]:
    """The ticket's status as committed now, and its place if it waits.

    For a ticket just written, whose status others (dispatch) may have moved
    since; its lane is the one in memory (a ticket's lane does not change
    while a request holds it).
    """
    row = _one_row(_STATUS, [ticket.pk])
    if row is None:
        raise Ticket.DoesNotExist(ticket.pk)
    (status,) = row
    if status not in WAITING:
        return status, None
    return status, _place(_ahead(ticket), language=ticket.language, category=ticket.category)


def lane_places(
    *, language: str, category: str, first: int | None = None
) -> list[tuple[int, QueuePlace]]:
    """The waiting tickets of a lane with their places, first in line first, read
    now: every one (which renews this process's order), or the ``first`` only."""
    per_ticket = seconds_per_ticket(language=language, category=category)
    began = monotonic()
    keys = _read_lane(language, category, limit=first)
    with _orders_lock:
        if first is None:
            _keep((language, category), keys, began)
        ids = [key[2] for key in keys]
    return [
        (ticket_id, QueuePlace(position=n, eta_seconds=_eta(n, per_ticket)))
        for n, ticket_id in enumerate(ids, start=1)
    ]


# --- conversation -----------------------------------------------------------


def messages_since(*, ticket: Ticket, since: int | datetime | None = None) -> QuerySet[Message]:
    """The ticket's messages after a cursor: a message id, or a time."""
    queryset = Message.objects.filter(ticket=ticket).select_related("author").order_by("id")
    if isinstance(since, datetime):
        queryset = queryset.filter(created_at__gt=since)
    elif since is not None:
        queryset = queryset.filter(id__gt=since)
    return queryset


def ticket_events(*, ticket: Ticket) -> QuerySet[TicketEvent]:
    return TicketEvent.objects.filter(ticket=ticket).select_related("actor").order_by("created_at")


# --- quality ----------------------------------------------------------------


@dataclass(frozen=True)
class Quality:
    """An agent's quality score, 0-100.  See ``agent_quality`` for the formula."""

    score: int
    average_rating: float | None
    ratings_count: int
    resolved_count: int
    reopened_count: int
    reopen_rate: float


# A new agent starts as if they had PRIOR_WEIGHT ratings of PRIOR_MEAN, so
# that one early 1-star (or 5-star) does not dominate their figure.
PRIOR_MEAN = 4.0
PRIOR_WEIGHT = 5


def agent_quality(*, agent: Agent | int, now: datetime | None = None) -> Quality:
    """Rolling quality: recent ratings, discounted by the recent reopen rate.

    - ratings: the agent's last ``QUALITY_RECENT_RATINGS`` ratings within
      ``QUALITY_WINDOW_DAYS``; ``smoothed = (sum + 5 * 4.0) / (n + 5)``.
    - reopen rate: of the tickets the agent resolved in the window, the share
      a customer reopened (``resolved → queued`` events naming the agent).
    - ``score = round(100 * (smoothed - 1) / 4 * (1 - reopen_rate))``.
    """
    policy = settings.HUMANLINE
    now = now or timezone.now()
    since = now - timedelta(days=policy["QUALITY_WINDOW_DAYS"])
    recent_ids = list(
        Rating.objects.filter(agent=agent, created_at__gte=since)
        .order_by("-created_at", "-id")
        .values_list("id", flat=True)[: policy["QUALITY_RECENT_RATINGS"]]
    )
    figures = Rating.objects.filter(id__in=recent_ids).aggregate(n=Count("id"), avg=Avg("score"))
    n = figures["n"] or 0
    average = float(figures["avg"]) if n else None
    smoothed = ((average or 0) * n + PRIOR_MEAN * PRIOR_WEIGHT) / (n + PRIOR_WEIGHT)

    events = TicketEvent.objects.filter(agent=agent, created_at__gte=since)
    resolved = events.filter(to_status=TicketStatus.RESOLVED).count()
    reopened = events.filter(
        from_status=TicketStatus.RESOLVED, to_status=TicketStatus.QUEUED
    ).count()
    reopen_rate = min(1.0, reopened / resolved) if resolved else 0.0
    score = round(100 * (smoothed - 1) / 4 * (1 - reopen_rate))
    return Quality(
        score=score,
        average_rating=round(average, 2) if average is not None else None,
        ratings_count=n,
        resolved_count=resolved,
        reopened_count=reopened,
        reopen_rate=round(reopen_rate, 4),
    )


# --- feedback and integrations ---------------------------------------------


def feedback_for_staff(
    *, kind: str | None = None, area: str | None = None, since: datetime | None = None
) -> QuerySet[Feedback]:
    queryset = Feedback.objects.select_related("agent__user", "ticket").order_by(
        "-created_at", "-id"
    )
    if kind:
        queryset = queryset.filter(kind=kind)
    if area:
        queryset = queryset.filter(area=area)
    if since:
        queryset = queryset.filter(created_at__gte=since)
    return queryset


def integration_keys() -> QuerySet[IntegrationApiKey]:
    return IntegrationApiKey.objects.select_related("integration").order_by("-created_at", "-id")


def customer_identities(*, user) -> QuerySet[IntegrationCustomer]:
    """What integrations know of this customer: the identities linked to the
    account, and, once its address is verified, those that claim the address
    and may be linked.  Each with ``tickets``, how many it holds, and ``linked``,
    whether it is this account's."""
    mine = Q(customer=user)
    if user.email_verified:
        mine |= Q(email=user.email.lower())
    opened = (
        Ticket.objects.filter(customer=OuterRef("customer"), integration=OuterRef("integration"))
        .order_by()
        .values("integration")
        .annotate(n=Count("id"))
        .values("n")
    )
    return (
        IntegrationCustomer.objects.filter(mine)
        .select_related("integration")
        .annotate(
            tickets=Coalesce(Subquery(opened), 0),
            linked=ExpressionWrapper(Q(customer=user), output_field=BooleanField()),
        )
        .order_by("-created_at", "-id")
    )
