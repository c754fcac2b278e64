"""The ticket body written out by hand is the body DRF's model serializer builds."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework import serializers

from tests.factories import AgentFactory
from tests.tickets.factories import HANDOFF, TicketFactory
from tickets.models import Rating, Ticket, TicketStatus
from tickets.serializers import HandoffOutput, TicketOutput

pytestmark = pytest.mark.django_db


def _tickets():
    agent = AgentFactory(user__name="Paula Pay")
    now = timezone.now()
    queued = TicketFactory(
        handoff_transcript=[
            {"role": "user", "text": "Charged twice", "at": "2025-01-01T10:00:00Z"},
            {"role": "bot", "text": "Two payments.", "at": None},
        ],
        handoff_summary=HANDOFF["summary"],
        handoff_intent=HANDOFF["intent"],
    )
    assigned = TicketFactory(
        status=TicketStatus.ASSIGNED, assigned_agent=agent, assigned_at=now, reopen_count=1
    )
    resolved = TicketFactory(
        status=TicketStatus.RESOLVED,
        assigned_agent=agent,
        assigned_at=now - timedelta(minutes=20),
        resolved_at=now,
    )
    Rating.objects.create(ticket=resolved, agent=agent, score=4, comment="Quick and kind")
    closed = TicketFactory(status=TicketStatus.CLOSED, closed_at=now, queued_at=None)
    ids = [queued.pk, assigned.pk, resolved.pk, closed.pk]
    return list(
        Ticket.objects.select_related("customer", "assigned_agent__user", "rating")
        .filter(pk__in=ids)
        .order_by("pk")
    )


def test_each_ticket_reads_as_drfs_model_serializer_renders_it():
    for ticket in _tickets():
        generic = serializers.ModelSerializer.to_representation(TicketOutput(ticket), ticket)
        generic["handoff"] = HandoffOutput(ticket).data if ticket.has_handoff else None

        assert TicketOutput(ticket).data == generic, ticket.status


def test_a_list_renders_each_ticket_the_same_way():
    tickets = _tickets()

    listed = TicketOutput(tickets, many=True).data

    assert listed == [TicketOutput(ticket).data for ticket in tickets]
    assert [t["status"] for t in listed] == ["queued", "assigned", "resolved", "closed"]
    assert listed[2]["rating"] == {"score": 4, "comment": "Quick and kind"}
    assert listed[1]["agent"]["name"] == "Paula Pay"
