"""Places in line are pushed without flooding: the head every time, a long tail now and then."""

import pytest
from django.core.cache import cache

from tests.tickets.factories import TicketFactory
from tickets import events

pytestmark = pytest.mark.django_db


def test_the_head_of_a_long_lane_gets_every_push_the_tail_now_and_then(settings, pushed):
    settings.HUMANLINE = {**settings.HUMANLINE, "QUEUE_PUSH_HEAD": 2}
    tickets = [TicketFactory(category="general") for _ in range(5)]
    cache.clear()

    events.push_lane_positions(language="en", category="general")
    first = [(ticket_id, event["queue_position"]) for ticket_id, event in pushed]
    pushed.clear()
    events.push_lane_positions(language="en", category="general")
    second = [(ticket_id, event["queue_position"]) for ticket_id, event in pushed]

    assert first == [(t.pk, n) for n, t in enumerate(tickets, start=1)]
    assert second == [(tickets[0].pk, 1), (tickets[1].pk, 2)]


def test_with_a_broker_lane_changes_are_coalesced_into_one_push(settings, monkeypatch):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.HUMANLINE = {**settings.HUMANLINE, "QUEUE_PUSH_INTERVAL_SECONDS": 0.5}
    scheduled = []
    monkeypatch.setattr(
        "tickets.tasks.push_queue_positions.apply_async",
        lambda args, countdown: scheduled.append((args, countdown)),
    )
    cache.clear()
    for _ in range(5):
        events.lane_changed(language="en", category="general")
    assert scheduled == [(("en", "general"), 0.5)]
