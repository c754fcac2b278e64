"""One dispatch pass at a time (a lock in the cache), and requests for a pass that
arrive while one runs: that pass goes round once more instead of a task being queued."""

import pytest
from django.core.cache import cache

from marketplace import tasks
from marketplace.services import dispatch


@pytest.fixture
def queued(settings, monkeypatch):
    """Tasks queued for a pass (with a broker: not run here)."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    sent = []
    monkeypatch.setattr(tasks.dispatch, "delay", lambda: sent.append(1))
    return sent


def test_a_request_while_a_pass_runs_asks_that_pass_to_go_round_again(queued):
    cache.add(dispatch.LOCK_KEY, 1, timeout=30)  # a pass is running

    dispatch.pass_request()

    assert cache.get(dispatch.AGAIN_KEY) == 1
    assert queued == []


def test_with_no_pass_running_a_request_queues_a_task(queued):
    dispatch.pass_request()

    assert queued == [1]
    assert cache.get(dispatch.AGAIN_KEY) is None


def test_a_request_that_sees_the_lock_released_after_flagging_queues_a_task(queued, monkeypatch):
    """The holder drops the lock between the asker's two looks: the asker queues a task."""
    cache.add(dispatch.LOCK_KEY, 1, timeout=30)
    real_set = cache.set

    def set_then_release(key, *args, **kwargs):
        real_set(key, *args, **kwargs)
        cache.delete(dispatch.LOCK_KEY)  # the pass ends right after the flag is set

    monkeypatch.setattr(cache, "set", set_then_release)

    dispatch.pass_request()

    assert queued == [1]


def test_a_caller_that_saw_the_pass_running_is_not_asked_again_before_flagging(queued, monkeypatch):
    """A freed agent's ``agent_free`` has just looked at the lock: the request flags
    the running pass without a second look first, and still looks once after
    flagging, so a pass that ended meanwhile is followed by a task."""
    looks = []
    monkeypatch.setattr(dispatch, "pass_running", lambda: looks.append(1) or False)

    dispatch.pass_request(running=True)

    assert cache.get(dispatch.AGAIN_KEY) == 1
    assert looks == [1]  # only the look after the flag
    assert queued == [1]  # that look found the pass ended: a task is queued


def test_run_eagerly_every_request_runs_a_pass(settings, monkeypatch):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    passes = []
    monkeypatch.setattr(dispatch, "dispatch_pass", lambda: passes.append(1) or 0)
    cache.add(dispatch.LOCK_KEY, 1, timeout=30)  # ignored: no broker, no other process

    dispatch.pass_request()
    cache.delete(dispatch.LOCK_KEY)
    dispatch.pass_request()

    assert passes == [1]  # the first found the lock held and flagged it; the second ran


def test_a_request_during_a_pass_runs_it_again_and_leaves_no_lock(queued, monkeypatch):
    passes = []

    def one_pass():
        passes.append(cache.get(dispatch.LOCK_KEY))
        if len(passes) == 1:
            # An offer is accepted in another process while this pass runs.
            dispatch.pass_request()
        return 1

    monkeypatch.setattr(dispatch, "dispatch_pass", one_pass)

    assert dispatch.dispatch_single_flight() == 2
    assert passes == [1, 1]  # both under the lock
    assert queued == []
    assert cache.get(dispatch.LOCK_KEY) is None
    assert cache.get(dispatch.AGAIN_KEY) is None


def test_passes_run_back_to_back_start_the_set_interval_apart(settings, queued, monkeypatch):
    settings.HUMANLINE = {**settings.HUMANLINE, "DISPATCH_PASS_INTERVAL_MS": 40}
    passes, pauses = [], []

    def one_pass():
        passes.append(1)
        if len(passes) < 3:
            dispatch.pass_request()  # accepts keep asking meanwhile
        return 1

    monkeypatch.setattr(dispatch, "dispatch_pass", one_pass)

    assert dispatch.dispatch_single_flight(pause=pauses.append) == 3
    assert len(pauses) == 2  # before the second and the third pass, not after the last
    assert all(0 < rest <= 0.040 for rest in pauses)


def test_no_interval_no_pause(settings, queued, monkeypatch):
    settings.HUMANLINE = {**settings.HUMANLINE, "DISPATCH_PASS_INTERVAL_MS": 0}
    passes, pauses = [], []

    def one_pass():
        passes.append(1)
        if len(passes) < 2:
            dispatch.pass_request()
        return 1

    monkeypatch.setattr(dispatch, "dispatch_pass", one_pass)

    assert dispatch.dispatch_single_flight(pause=pauses.append) == 2
    assert pauses == []
