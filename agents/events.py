"""Side effects of agent changes, built in one place and run after commit.

Every message pushed to an agent's socket is built here (``*_message``) and
sent through ``push_to_agent``, so a test can capture exactly what a service
emitted.  Redis may lose a push; the socket's snapshot on (re)connect is the
recovery path, so a failed push is logged, never raised into the caller.
"""

import logging
from datetime import datetime

from config import channel_send

logger = logging.getLogger(__name__)


# --- the agent socket --------------------------------------------------------


def agent_group(agent_id: int) -> str:
    return f"agent.{agent_id}"


def push_to_agent(*, agent_id: int, message: dict) -> None:
    push_many_to_agents([(agent_id, message)])


def push_many_to_agents(items: list[tuple[int, dict]]) -> None:
    """Send many (agent id, message) pushes in one trip to the channel layer."""
    try:
        channel_send.group_send_many(
            [
                (agent_group(agent_id), {"type": "agent.event", "message": message})
                for agent_id, message in items
            ]
        )
    except Exception:
        logger.exception("pushing %d agent messages failed; clients resync", len(items))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# What the agent is told when the platform, not they, changed their presence.
PRESENCE_EXPLANATIONS = {
    "missed_offers": (
        "You let several offers in a row expire, so we set you away. "
        "Go online again when you're ready to take tickets."
    ),
    "suspended": "Your account has been suspended.",
    "sweeper": "You were disconnected for a while, so we set you offline.",
    "fatigue": "You reached the daily online-hours limit; time for a rest.",
}


def presence_message(*, presence: str, reason: str, changed_at: datetime | None) -> dict:
    return {
        "type": "presence.changed",
        "presence": presence,
        "reason": reason,
        "message": PRESENCE_EXPLANATIONS.get(reason, ""),
        "changed_at": _iso(changed_at),
    }


def snapshot_message(*, agent, pending_offers: list, assigned_tickets: list, now: datetime) -> dict:
    return {
        "type": "agent.snapshot",
        "agent": {
            "id": agent.pk,
            "status": agent.status,
            "presence": agent.presence,
            "presence_changed_at": _iso(agent.presence_changed_at),
            "capacity": agent.capacity,
        },
        "pending_offers": pending_offers,
        "assigned_tickets": assigned_tickets,
        "server_time": _iso(now),
    }


def presence_changed(
    *, agent_id: int, presence: str, reason: str, changed_at: datetime | None
) -> None:
    push_to_agent(
        agent_id=agent_id,
        message=presence_message(presence=presence, reason=reason, changed_at=changed_at),
    )
