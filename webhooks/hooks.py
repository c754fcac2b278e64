"""What an integration hears of its tickets: each runs inside the transaction of the change."""

from webhooks.services import emit


def on_status(*, ticket, from_status: str, agent) -> None:
    from agents.models import Agent
    from tickets.models import WAITING, TicketStatus

    if ticket.integration_id is None:
        return
    if ticket.status == TicketStatus.ASSIGNED:
        agent = Agent.objects.select_related("user").filter(pk=ticket.assigned_agent_id).first()
        first_name = agent.user.first_name if agent is not None else ""
        emit(ticket=ticket, type="ticket.assigned", data={"agent": {"first_name": first_name}})
    elif ticket.status in (TicketStatus.RESOLVED, TicketStatus.CLOSED, TicketStatus.CANCELLED):
        emit(ticket=ticket, type="ticket.status", data={"status": ticket.status})
    elif from_status == TicketStatus.RESOLVED and ticket.status in WAITING:
        emit(ticket=ticket, type="ticket.status", data={"status": "reopened"})


def on_message(*, message) -> None:
    from tickets.models import AuthorRole

    if message.author_role != AuthorRole.AGENT or message.ticket.integration_id is None:
        return
    emit(
        ticket=message.ticket,
        type="ticket.message",
        data={
            "message": {
                "id": message.pk,
                "body": message.body,
                "created_at": message.created_at.isoformat().replace("+00:00", "Z"),
                "author": {"role": "agent", "first_name": message.author.first_name},
            }
        },
    )


def on_rated(*, rating) -> None:
    ticket = rating.ticket
    if ticket.integration_id is None:
        return
    emit(
        ticket=ticket,
        type="ticket.rating",
        data={"rating": {"score": rating.score, "comment": rating.comment}},
    )


def on_waiting(*, ticket, notice: dict) -> None:
    if ticket.integration_id is None:
        return
    emit(ticket=ticket, type="ticket.waiting", data={"waiting": notice})
