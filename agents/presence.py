"""Writes about presence: online / away / offline, agent sockets, the presence sweeper.

``Agent.presence`` is the current state (cheap to filter on); every stretch of
online or away time is a ``PresenceInterval`` row, at most one open per agent.
Every change goes through ``_change`` with the agent row locked, so two
requests (or a request and the sweeper, or a suspension) take turns and the
interval history never overlaps.
"""

from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from agents import events, selectors
from agents.models import Agent, AgentConnection, AgentStatus, Presence, PresenceInterval
from config import effects
from config.errors import Forbidden, InvalidInput

# Called after commit with ``agent_id=`` whenever an agent becomes available
# for work (goes online).  Dispatch registers here from its
# AppConfig.ready(): ``marketplace.events.agent_available``.
AVAILABILITY_HOOKS: list[Callable[..., None]] = []


# Called after commit with ``agent_id=`` and ``presence=`` whenever an agent
# stops being available (leaves ``online``): dispatch withdraws their offers.
UNAVAILABILITY_HOOKS: list[Callable[..., None]] = []


def _policy(name: str) -> int:
    return settings.HUMANLINE[name]


def _change(*, agent: Agent, to: str, reason: str, now: datetime) -> bool:
    """Move a locked agent to ``to``; the caller holds the transaction.  False if unchanged."""
    if agent.presence == to:
        return False
    PresenceInterval.objects.filter(agent=agent, ended_at__isnull=True).update(
        ended_at=now, ended_reason=reason
    )
    if to != Presence.OFFLINE:
        PresenceInterval.objects.create(agent=agent, status=to, started_at=now)
    agent.presence = to
    agent.presence_changed_at = now
    agent.save(update_fields=["presence", "presence_changed_at"])
    effects.after_commit(
        lambda agent_id=agent.pk, to=to, reason=reason, now=now: events.presence_changed(
            agent_id=agent_id, presence=to, reason=reason, changed_at=now
        )
    )
    if to == Presence.ONLINE:
        for hook in AVAILABILITY_HOOKS:
            effects.after_commit(lambda hook=hook, agent_id=agent.pk: hook(agent_id=agent_id))
    else:
        for hook in UNAVAILABILITY_HOOKS:
            effects.after_commit(
                lambda hook=hook, agent_id=agent.pk, to=to: hook(agent_id=agent_id, presence=to)
            )
    return True


def _refuse_unless_allowed(*, agent: Agent, to: str, now: datetime) -> None:
    if to == Presence.OFFLINE:
        return
    if agent.status == AgentStatus.SUSPENDED:
        raise Forbidden(
            _("Your account is suspended; you cannot go online."), code="agent_suspended"
        )
    if agent.status != AgentStatus.APPROVED:
        raise Forbidden(
            _("Only approved agents can go %(presence)s; your application is %(status)s.")
            % {"presence": to, "status": agent.status},
            code="agent_not_approved",
        )
    if to == Presence.ONLINE:
        cap_hours = _policy("ONLINE_HOURS_PER_24H_CAP")
        online = selectors.online_seconds(
            agent_id=agent.pk, start=now - timedelta(hours=24), end=now
        )
        if online >= cap_hours * 3600:
            raise Forbidden(
                _("You have been online %(hours)s hours in the last 24; take a rest first.")
                % {"hours": cap_hours},
                code="online_hours_cap",
            )


@transaction.atomic
def agent_presence_set(*, agent_id: int, status: str, reason: str = "agent") -> Agent:
    """The agent (or a page acting for them) sets their presence."""
    if status not in Presence.values:
        message = _("Choose one of: %(choices)s.") % {"choices": ", ".join(Presence.values)}
        raise InvalidInput(message, fields={"status": [message]})
    now = timezone.now()
    agent = Agent.objects.select_for_update().get(pk=agent_id)
    _refuse_unless_allowed(agent=agent, to=status, now=now)
    _change(agent=agent, to=status, reason=reason, now=now)
    agent.last_seen_at = now
    agent.save(update_fields=["last_seen_at"])
    return agent


@transaction.atomic
def agent_presence_system(*, agent_id: int, status: str, reason: str) -> bool:
    """The platform changes an agent's presence (missed offers, for example).

    No permission checks: it only ever takes an agent *out* of ``online``.
    """
    if status == Presence.ONLINE:
        raise ValueError("The platform never puts an agent online.")
    agent = Agent.objects.select_for_update().get(pk=agent_id)
    return _change(agent=agent, to=status, reason=reason, now=timezone.now())


def presence_on_suspension(*, agent: Agent, actor) -> None:
    """SUSPENSION_HOOKS entry: runs inside the suspension's transaction, agent locked."""
    _change(agent=agent, to=Presence.OFFLINE, reason="suspended", now=timezone.now())


# --- sockets -----------------------------------------------------------------


@transaction.atomic
def agent_connection_open(*, agent_id: int, channel_name: str) -> AgentConnection:
    now = timezone.now()
    connection, _ = AgentConnection.objects.update_or_create(
        channel_name=channel_name,
        defaults={
            "agent_id": agent_id,
            "connected_at": now,
            "last_seen_at": now,
            "closed_at": None,
        },
    )
    Agent.objects.filter(pk=agent_id).update(last_seen_at=now)
    return connection


def agent_connection_seen(*, channel_name: str) -> bool:
    """A ping: the socket is alive.  Conditional updates only, no lock needed.

    Every open socket pings (every 20 s), so this is two plain statements: the
    socket's row, returning its agent, then the agent's row by key.  Through
    the ORM, in a transaction, with the second joining the connections in a
    subquery, a ping cost 1.5 ms of Python; now 0.15 ms.  No transaction:
    each statement is atomic alone, and a ``last_seen_at`` only moves forward.
    """
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(_SEEN_SQL, [now, channel_name])
        agents = [agent_id for (agent_id,) in cursor.fetchall()]
        if agents:
            cursor.execute(_AGENT_SEEN_SQL, [now, agents[0]])
    return bool(agents)


_SEEN_SQL = (
    f"UPDATE {AgentConnection._meta.db_table} SET last_seen_at = %s"  # noqa: S608 (table names only)
    " WHERE channel_name = %s AND closed_at IS NULL RETURNING agent_id"
)
_AGENT_SEEN_SQL = f"UPDATE {Agent._meta.db_table} SET last_seen_at = %s WHERE id = %s"  # noqa: S608


def agent_connection_close(*, channel_name: str) -> None:
    now = timezone.now()
    AgentConnection.objects.filter(channel_name=channel_name, closed_at__isnull=True).update(
        closed_at=now, last_seen_at=now
    )


# --- the sweeper -------------------------------------------------------------


def _gone_agents(*, now: datetime):
    """Agents shown present whose every socket has been gone longer than the grace period.

    A socket counts as alive while it is open and pinged within the stale
    limit (a dead worker never closes its rows).  Going online gives the same
    grace to open a first socket.
    """
    grace = now - timedelta(seconds=_policy("PRESENCE_GRACE_SECONDS"))
    stale = now - timedelta(seconds=_policy("AGENT_SOCKET_STALE_SECONDS"))
    alive = AgentConnection.objects.filter(
        agent=OuterRef("pk"), closed_at__isnull=True, last_seen_at__gte=stale
    )
    recent = AgentConnection.objects.filter(agent=OuterRef("pk"), last_seen_at__gte=grace)
    return (
        Agent.objects.exclude(presence=Presence.OFFLINE)
        .filter(presence_changed_at__lt=grace)
        .exclude(Exists(alive))
        .exclude(Exists(recent))
    )


def presence_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Set offline the agents whose sockets are gone and those past the online-hours cap."""
    now = now or timezone.now()
    gone = 0
    for agent_id in list(_gone_agents(now=now).values_list("pk", flat=True)):
        with transaction.atomic():
            # Re-check under the lock: a socket may have connected meanwhile.
            agent = _gone_agents(now=now).select_for_update().filter(pk=agent_id).first()
            if agent is not None:
                gone += _change(agent=agent, to=Presence.OFFLINE, reason="sweeper", now=now)

    tired = 0
    cap = _policy("ONLINE_HOURS_PER_24H_CAP") * 3600
    online_ids = list(selectors.online_agents().values_list("pk", flat=True))
    seconds = selectors.online_seconds_by_agent(
        agent_ids=online_ids, start=now - timedelta(hours=24), end=now
    )
    for agent_id in [pk for pk in online_ids if seconds.get(pk, 0) >= cap]:
        with transaction.atomic():
            agent = Agent.objects.select_for_update().get(pk=agent_id)
            if agent.presence == Presence.ONLINE:
                tired += _change(agent=agent, to=Presence.OFFLINE, reason="fatigue", now=now)

    # Housekeeping: close the rows of sockets whose worker died, forget old ones.
    stale = now - timedelta(seconds=_policy("AGENT_SOCKET_STALE_SECONDS"))
    AgentConnection.objects.filter(closed_at__isnull=True, last_seen_at__lt=stale).update(
        closed_at=F("last_seen_at")
    )
    AgentConnection.objects.filter(closed_at__lt=now - timedelta(days=1)).delete()
    return {"gone": gone, "fatigue": tired}
