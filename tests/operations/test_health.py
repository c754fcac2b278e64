"""/healthz (the process answers) and /readyz (the platform around it is there)."""

import socket
import time
from datetime import timedelta

import pytest
import redis
import time_machine
from celery import signals
from django.conf import settings
from django.utils import timezone

from operations import celery_signals, health
from operations.tasks import HEARTBEAT, heartbeat

pytestmark = pytest.mark.django_db


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def heartbeats():
    """Redis without heartbeats, with Celery run by workers and beat (not eagerly)."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = client.keys(health.KEY_PREFIX + "*")
    if keys:
        client.delete(*keys)
    yield client
    keys = client.keys(health.KEY_PREFIX + "*")
    if keys:
        client.delete(*keys)
    client.close()


def test_healthz_answers_without_asking_the_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_every_response_names_its_request(client):
    assert client.get("/readyz")["X-Request-ID"]


def test_on_the_embedded_default_redis_and_celery_are_not_configured(client, settings):
    settings.REDIS_URL = ""
    settings.CELERY_TASK_ALWAYS_EAGER = True

    response = client.get("/readyz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready" and body["failing"] == []
    assert body["checks"]["database"]["status"] == "ok"
    for component in ("redis", "worker", "beat"):
        assert body["checks"][component]["status"] == "not_configured"


def test_unreachable_redis_is_a_503_naming_redis_and_answers_fast(client, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    settings.CELERY_TASK_ALWAYS_EAGER = False

    started = time.monotonic()
    response = client.get("/readyz")
    took = time.monotonic() - started

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["failing"] == ["redis"]
    assert body["checks"]["database"]["status"] == "ok"
    # The heartbeats live in Redis: they cannot be judged, and are not blamed.
    assert body["checks"]["worker"]["status"] == "not_checked"
    assert body["checks"]["beat"]["status"] == "not_checked"
    assert took < 2 * settings.OPERATIONS["READINESS_TIMEOUT_SECONDS"]


def test_a_probe_from_outside_the_metrics_networks_gets_statuses_without_details(client, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"

    outside = client.get("/readyz", REMOTE_ADDR="203.0.113.9").json()
    inside = client.get("/readyz").json()

    assert outside["failing"] == inside["failing"] == ["redis"]
    assert "127.0.0.1" in inside["checks"]["redis"]["detail"]
    assert "detail" not in outside["checks"]["redis"]


def test_a_redis_that_never_answers_is_given_up_on_within_the_timeout(client, settings):
    """A listener that accepts and says nothing: the read times out, the probe answers."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        settings.REDIS_URL = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        settings.OPERATIONS = {**settings.OPERATIONS, "READINESS_TIMEOUT_SECONDS": 0.3}

        started = time.monotonic()
        response = client.get("/readyz")
        took = time.monotonic() - started

    assert response.status_code == 503
    assert response.json()["failing"] == ["redis"]
    assert took < 1.5


@pytest.mark.redis("the heartbeats are kept in Redis")
def test_ready_when_beat_and_a_worker_for_each_queue_beat(client, settings, heartbeats):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    health.heartbeat_write("beat")
    for queue in health.heartbeat_queues():
        health.heartbeat_write(f"worker:{queue}")

    response = client.get("/readyz")

    assert response.status_code == 200, response.json()
    checks = response.json()["checks"]
    assert {name: check["status"] for name, check in checks.items()} == {
        "database": "ok",
        "redis": "ok",
        "worker": "ok",
        "beat": "ok",
    }


@pytest.mark.redis("the heartbeats are kept in Redis")
def test_a_beat_heartbeat_older_than_the_max_age_is_a_503_naming_beat(client, settings, heartbeats):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    health.heartbeat_write("beat")
    for queue in health.heartbeat_queues():
        health.heartbeat_write(f"worker:{queue}")
    max_age = settings.OPERATIONS["HEARTBEAT_MAX_AGE_SECONDS"]

    with time_machine.travel(timezone.now() + timedelta(seconds=max_age + 1)):
        response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["beat"]
    assert "last heartbeat" in body["checks"]["beat"]["detail"]
    assert body["checks"]["worker"]["status"] == "not_checked"


@pytest.mark.redis("the heartbeats are kept in Redis")
def test_a_queue_no_worker_serves_is_a_503_naming_worker(client, settings, heartbeats):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    health.heartbeat_write("beat")
    health.heartbeat_write(f"worker:{settings.CELERY_TASK_DEFAULT_QUEUE}")

    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["worker"]
    assert (
        f"queue {settings.CELERY_DISPATCH_QUEUE}: no heartbeat yet"
        in (body["checks"]["worker"]["detail"])
    )


@pytest.mark.redis("the heartbeats are kept in Redis")
def test_nothing_yet_from_beat_is_a_503_naming_beat(client, settings, heartbeats):
    settings.CELERY_TASK_ALWAYS_EAGER = False

    body = client.get("/readyz").json()

    assert body["failing"] == ["beat"]
    assert body["checks"]["beat"]["detail"] == "beat: no heartbeat yet"


@pytest.mark.redis("the heartbeats are kept in Redis")
def test_the_heartbeat_task_records_its_queue_and_beat_records_sending_it(settings, heartbeats):
    # A worker running the task records the queue it came from.
    heartbeat.delay(settings.CELERY_DISPATCH_QUEUE)
    assert heartbeats.get(health.KEY_PREFIX + f"worker:{settings.CELERY_DISPATCH_QUEUE}")

    # In the beat process each send of the task records beat (and nothing else does).
    assert heartbeats.get(health.KEY_PREFIX + "beat") is None
    signals.beat_init.send(sender=None)
    try:
        signals.before_task_publish.send(sender="tickets.tasks.something_else", headers={})
        assert heartbeats.get(health.KEY_PREFIX + "beat") is None
        signals.before_task_publish.send(sender=HEARTBEAT, headers={})
        assert heartbeats.get(health.KEY_PREFIX + "beat") is not None
    finally:
        signals.before_task_publish.disconnect(celery_signals.beat_sent)
