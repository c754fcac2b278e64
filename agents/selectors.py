"""Reads about people, always scoped to the caller."""

from datetime import datetime

from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from agents.models import (
    Agent,
    AgentDocument,
    AgentReviewEvent,
    AgentStatus,
    Presence,
    PresenceInterval,
    Skill,
    User,
)


def _agents() -> QuerySet[Agent]:
    return Agent.objects.select_related("user").prefetch_related("languages", "skills")


def agent_review_queue(*, status: str | None = None) -> QuerySet[Agent]:
    """Applications for staff; by default the ones waiting for a decision first."""
    queryset = _agents().prefetch_related(
        "documents",
        Prefetch("review_events", AgentReviewEvent.objects.select_related("actor")),
    )
    if status:
        queryset = queryset.filter(status=status)
    return queryset.order_by("applied_at", "id")


def agent_for_user(*, user: User) -> Agent | None:
    if not user.is_authenticated:
        return None
    return _agents().filter(user=user).first()


def document_for_staff(*, document_id) -> AgentDocument:
    return AgentDocument.objects.select_related("agent__user").get(pk=document_id)


def skill_catalog() -> QuerySet[Skill]:
    return Skill.objects.filter(is_active=True).order_by("slug")


def review_counts() -> dict[str, int]:
    from django.db.models import Count

    rows = Agent.objects.values("status").annotate(n=Count("id"))
    counts = {status: 0 for status in AgentStatus.values}
    counts.update({row["status"]: row["n"] for row in rows})
    return counts


# --- presence ----------------------------------------------------------------


def online_agents() -> QuerySet[Agent]:
    """Approved agents online now: dispatch's candidate pool (a partial index scan)."""
    return Agent.objects.filter(presence=Presence.ONLINE, status=AgentStatus.APPROVED)


def online_seconds_by_agent(
    *, agent_ids, start: datetime, end: datetime, status: str = Presence.ONLINE
) -> dict[int, int]:
    """Seconds each agent spent in ``status`` within [start, end); an open stretch runs to now."""
    now = timezone.now()
    totals: dict[int, int] = {}
    rows = (
        PresenceInterval.objects.filter(agent_id__in=agent_ids, status=status, started_at__lt=end)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=start))
        .values_list("agent_id", "started_at", "ended_at")
    )
    for agent_id, started_at, ended_at in rows:
        stop = min(ended_at or now, end)
        seconds = (stop - max(started_at, start)).total_seconds()
        if seconds > 0:
            totals[agent_id] = totals.get(agent_id, 0) + int(seconds)
    return totals


def online_seconds(*, agent_id: int, start: datetime, end: datetime) -> int:
    return online_seconds_by_agent(agent_ids=[agent_id], start=start, end=end).get(agent_id, 0)


def presence_history(*, agent: Agent, since: datetime) -> QuerySet[PresenceInterval]:
    return PresenceInterval.objects.filter(agent=agent).filter(
        Q(ended_at__isnull=True) | Q(ended_at__gt=since)
    )


# What an agent's socket sends on (re)connect, so that a reconnect loses nothing.
# The two lists below are hook points: the dispatch issue (offers) and the
# tickets issue (assignments) fill them in; until then they are empty.


def agent_pending_offers(*, agent: Agent) -> list[dict]:
    """The agent's pending ticket offers, as pushed in ``offer.created``."""
    from marketplace import events as marketplace_events
    from marketplace.models import Offer, OfferStatus

    offers = Offer.objects.select_related("ticket").filter(agent=agent, status=OfferStatus.PENDING)
    return [marketplace_events.offer_payload(offer) for offer in offers]


def agent_assigned_tickets(*, agent: Agent) -> list[dict]:
    """The tickets assigned to the agent and not yet resolved, hand-off included."""
    from marketplace import events as marketplace_events
    from tickets.models import Ticket, TicketStatus

    tickets = Ticket.objects.select_related("customer").filter(
        assigned_agent=agent, status=TicketStatus.ASSIGNED
    )
    return [marketplace_events.assigned_ticket_payload(ticket) for ticket in tickets]


def agent_snapshot(*, agent_id: int) -> dict:
    from agents import events

    agent = Agent.objects.get(pk=agent_id)
    return events.snapshot_message(
        agent=agent,
        pending_offers=agent_pending_offers(agent=agent),
        assigned_tickets=agent_assigned_tickets(agent=agent),
        now=timezone.now(),
    )


def agent_for_socket(*, user: User) -> Agent | None:
    """The approved agent behind a socket's user, or None (the socket is refused)."""
    if not (user and user.is_authenticated and user.is_agent):
        return None
    return Agent.objects.filter(user=user, status=AgentStatus.APPROVED).first()
