"""With a broker, offers' expiry tasks are scheduled one per second of expiry times."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.cache import cache

from marketplace import events

pytestmark = pytest.mark.django_db

START = datetime(2027, 1, 4, 9, 0, 0, 200_000, tzinfo=UTC)


@pytest.fixture
def scheduled(settings, monkeypatch):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    countdowns = []
    monkeypatch.setattr(
        "marketplace.tasks.expire_offers.apply_async",
        lambda countdown: countdowns.append(round(countdown, 2)),
    )
    return countdowns


def _adds(monkeypatch) -> list:
    calls = []
    real = cache.add

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(cache, "add", counting)
    return calls


def test_one_task_and_one_round_trip_per_second_of_expiries(scheduled, monkeypatch):
    adds = _adds(monkeypatch)
    with time_machine.travel(START, tick=False):
        for ms in (0, 100, 700):  # expiring within one second
            events._schedule_expiry(START + timedelta(seconds=15, milliseconds=ms))
        events._schedule_expiry(START + timedelta(seconds=16))  # the next second

    assert scheduled == [15.85, 16.85]  # just after each second ends
    assert len(adds) == 2


@pytest.mark.redis("another process's schedule is seen through the shared Redis cache")
def test_a_second_another_process_scheduled_is_left_to_it(scheduled, monkeypatch):
    second = int((START + timedelta(seconds=15)).timestamp()) + 1
    cache.add(f"offers-expire:{second}", 1, timeout=120)  # another process's
    adds = _adds(monkeypatch)
    with time_machine.travel(START, tick=False):
        events._schedule_expiry(START + timedelta(seconds=15))
        events._schedule_expiry(START + timedelta(seconds=15, milliseconds=500))

    assert scheduled == []
    assert len(adds) == 1  # asked once, then remembered
