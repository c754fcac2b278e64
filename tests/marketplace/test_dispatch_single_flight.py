"""One dispatch pass at a time (a lock in the Redis cache), and requests for a
dispatch that arrive while a pass runs: the pass goes round once more."""

import pytest
from django.core.cache import cache

from marketplace import events
from marketplace.services import dispatch

pytestmark = pytest.mark.postgres("dispatch core: reviewed in the dispatch rewrite")


def test_a_request_while_a_pass_runs_asks_that_pass_to_go_round_again():
    cache.add(dispatch.LOCK_KEY, 1, timeout=30)  # a pass is running

    assert dispatch.dispatch_ask_running_pass() is True
    assert cache.get(dispatch.AGAIN_KEY) == 1


def test_with_no_pass_running_a_request_is_left_to_a_task():
    assert dispatch.dispatch_ask_running_pass() is False
    assert cache.get(dispatch.AGAIN_KEY) is None


def test_a_request_during_a_pass_runs_it_again_and_leaves_no_lock(monkeypatch):
    passes = []

    def one_pass():
        passes.append(cache.get(dispatch.LOCK_KEY))
        if len(passes) == 1:
            # An offer is accepted in another process while this pass runs.
            assert dispatch.dispatch_ask_running_pass() is True
        return 1

    monkeypatch.setattr(dispatch, "dispatch", one_pass)

    assert dispatch.dispatch_single_flight() == 2
    assert passes == [1, 1]  # both under the lock
    assert cache.get(dispatch.LOCK_KEY) is None
    assert cache.get(dispatch.AGAIN_KEY) is None


def test_a_request_that_finds_the_lock_released_queues_a_task(settings, monkeypatch):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    queued = []
    monkeypatch.setattr(events.tasks.dispatch, "delay", lambda: queued.append(1))

    events.dispatch_soon()  # nothing running
    cache.add(dispatch.LOCK_KEY, 1, timeout=30)
    events.dispatch_soon()  # a pass is running: it is asked instead

    assert queued == [1]
    assert cache.get(dispatch.AGAIN_KEY) == 1


def test_without_redis_every_request_queues_a_task(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

    assert dispatch.dispatch_ask_running_pass() is False


def test_passes_run_back_to_back_start_the_set_interval_apart(settings, monkeypatch):
    settings.HUMANLINE = {**settings.HUMANLINE, "DISPATCH_PASS_INTERVAL_MS": 40}
    passes, pauses = [], []

    def one_pass():
        passes.append(1)
        if len(passes) < 3:
            dispatch.dispatch_ask_running_pass()  # accepts keep asking meanwhile
        return 1

    monkeypatch.setattr(dispatch, "dispatch", one_pass)

    assert dispatch.dispatch_single_flight(pause=pauses.append) == 3
    assert len(pauses) == 2  # before the second and the third pass, not after the last
    assert all(0 < rest <= 0.040 for rest in pauses)


def test_no_interval_no_pause(settings, monkeypatch):
    settings.HUMANLINE = {**settings.HUMANLINE, "DISPATCH_PASS_INTERVAL_MS": 0}
    passes, pauses = [], []

    def one_pass():
        passes.append(1)
        if len(passes) < 2:
            dispatch.dispatch_ask_running_pass()
        return 1

    monkeypatch.setattr(dispatch, "dispatch", one_pass)

    assert dispatch.dispatch_single_flight(pause=pauses.append) == 2
    assert pauses == []
