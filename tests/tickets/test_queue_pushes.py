"""Places in line are pushed without flooding: the head every time, a long tail now and then."""

import pytest
import time_machine
from django.core.cache import cache

from tests.tickets.factories import TicketFactory
from tickets import events

pytestmark = pytest.mark.django_db


def test_the_head_of_a_long_lane_gets_every_push_the_tail_now_and_then(settings, pushed):
    settings.HUMANLINE = {**settings.HUMANLINE, "QUEUE_PUSH_HEAD": 2}
    tickets = [TicketFactory(category="general") for _ in range(5)]
    cache.clear()
    for ticket in tickets:
        events.watching(ticket.pk)

    events.push_lane_positions(language="en", category="general")
    first = [(ticket_id, event["queue_position"]) for ticket_id, event in pushed]
    pushed.clear()
    events.push_lane_positions(language="en", category="general")
    second = [(ticket_id, event["queue_position"]) for ticket_id, event in pushed]

    assert first == [(t.pk, n) for n, t in enumerate(tickets, start=1)]
    assert second == [(tickets[0].pk, 1), (tickets[1].pk, 2)]


def test_only_tickets_with_a_socket_open_are_told(pushed):
    tickets = [TicketFactory(category="general") for _ in range(4)]
    cache.clear()
    events.watching(tickets[1].pk)
    events.watching(tickets[3].pk)

    told = events.push_lane_positions(language="en", category="general")

    assert [(ticket_id, event["queue_position"]) for ticket_id, event in pushed] == [
        (tickets[1].pk, 2),
        (tickets[3].pk, 4),
    ]
    assert told == 2


def test_watched_marks_are_read_in_chunks(monkeypatch):
    monkeypatch.setattr(events, "WATCHED_READ", 2)
    cache.clear()
    for ticket_id in (11, 14, 15):
        events.watching(ticket_id)
    places = [(ticket_id, None) for ticket_id in range(10, 16)]

    assert [t for t, _ in events.watched_places(places)] == [11, 14, 15]


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


def _counted(monkeypatch, calls: list):
    """Count the cache's round trips (each still goes to Redis)."""
    for name in ("add", "get"):
        real = getattr(cache, name)

        def counting(*args, _real=real, _name=name, **kwargs):
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(cache, name, counting)


def test_a_process_asks_redis_once_per_push_it_knows_is_coming(settings, monkeypatch):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.HUMANLINE = {**settings.HUMANLINE, "QUEUE_PUSH_INTERVAL_SECONDS": 1.0}
    scheduled, calls = [], []
    monkeypatch.setattr(
        "tickets.tasks.push_queue_positions.apply_async",
        lambda args, countdown: scheduled.append(args),
    )
    _counted(monkeypatch, calls)

    with time_machine.travel(1_800_000_000.0, tick=False) as clock:
        for _ in range(5):
            events.lane_changed(language="en", category="general")
        assert (scheduled, calls) == ([("en", "general")], ["add"])

        clock.shift(0.95)  # inside the clock margin before the push is due: ask again
        events.lane_changed(language="en", category="general")
        assert calls == ["add", "add", "get"] and len(scheduled) == 1

        clock.shift(0.1)  # the push ran (it drops the key first), then a change
        cache.delete(events._lane_key("en", "general"))
        events.lane_changed(language="en", category="general")
        assert len(scheduled) == 2


def test_a_push_another_process_scheduled_covers_this_one_s_changes(settings, monkeypatch):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    scheduled, calls = [], []
    monkeypatch.setattr(
        "tickets.tasks.push_queue_positions.apply_async",
        lambda args, countdown: scheduled.append(args),
    )
    with time_machine.travel(1_800_000_000.0, tick=False):
        cache.set(events._lane_key("en", "general"), 1_800_000_000.0 + 0.8)  # theirs, due soon
        _counted(monkeypatch, calls)
        for _ in range(3):
            events.lane_changed(language="en", category="general")
        events.lane_changed(language="pt", category="general")  # another lane: its own push

    assert scheduled == [("pt", "general")]
    assert calls == ["add", "get", "add"]


def test_a_long_lane_is_told_whole_less_often(settings):
    settings.HUMANLINE = {
        **settings.HUMANLINE,
        "QUEUE_PUSH_FULL_SECONDS": 10,
        "QUEUE_PUSH_FULL_RATE": 2000,
    }

    assert events.full_push_every(50) == 10
    assert events.full_push_every(20_000) == 10
    assert events.full_push_every(100_000) == 50


def test_a_long_lanes_order_is_kept_longer():
    from tickets.selectors import order_age_limit

    assert order_age_limit(0) == 2.0
    assert order_age_limit(10_000) == 2.0
    assert order_age_limit(100_000) == 20.0
