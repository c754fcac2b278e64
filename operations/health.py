"""Readiness: can this process serve, and is the rest of the platform there?

``readiness()`` checks, each within ``READINESS_TIMEOUT_SECONDS``:

- ``database``: ``SELECT 1`` on a connection of its own, on a thread that is
  given up on after the timeout (a database that does not answer must not
  hold the probe).
- ``redis``: ``PING`` on a fresh connection with the timeout on connecting
  and reading, and no retries; the heartbeats are read in the same round trip.
- ``beat``: the time beat last sent the heartbeat task (written by the beat
  process itself as it sends it: ``operations.heartbeat``), at most
  ``HEARTBEAT_MAX_AGE_SECONDS`` ago.
- ``worker``: for each queue (the default one and dispatch's), the time a
  worker last ran the heartbeat task sent to it, at most as old.  Beat sends
  those tasks, so while beat is down the workers cannot be judged: ``worker``
  is then ``not_checked``, as are both while Redis does not answer.

In the embedded default (no ``REDIS_URL``; tasks run in process) Redis, the
worker and beat are ``not_configured``: nothing is wrong, the process does
their work itself.  The same holds for the worker and beat whenever tasks run
eagerly (``CELERY_TASK_ALWAYS_EAGER``).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import connections
from redis.backoff import NoBackoff
from redis.retry import Retry

OK, FAILING, NOT_CONFIGURED, NOT_CHECKED = "ok", "failing", "not_configured", "not_checked"

KEY_PREFIX = "hl:ops:heartbeat:"
KEY_TTL_SECONDS = 24 * 3600


@dataclass
class Check:
    status: str
    detail: str = ""
    ms: float | None = None

    def as_dict(self, *, detail: bool = True) -> dict:
        out = {"status": self.status}
        if detail and self.detail:
            out["detail"] = self.detail
        if self.ms is not None:
            out["ms"] = round(self.ms, 1)
        return out


def _timeout() -> float:
    return float(settings.OPERATIONS["READINESS_TIMEOUT_SECONDS"])


def celery_configured() -> bool:
    return bool(settings.REDIS_URL) and not settings.CELERY_TASK_ALWAYS_EAGER


def heartbeat_queues() -> list[str]:
    """The queues whose workers must be running: the default one, dispatch's and
    the webhook deliveries'."""
    return list(
        dict.fromkeys(
            [
                settings.CELERY_TASK_DEFAULT_QUEUE,
                settings.CELERY_DISPATCH_QUEUE,
                settings.CELERY_WEBHOOKS_QUEUE,
            ]
        )
    )


def redis_client() -> redis.Redis:
    """A client that gives up within the readiness timeout: no retries, no waiting pool."""
    timeout = _timeout()
    return redis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


def heartbeat_write(name: str) -> None:
    """Record that ``name`` (``beat``, ``worker:<queue>``) is alive now."""
    client = redis_client()
    try:
        client.set(KEY_PREFIX + name, repr(time.time()), ex=KEY_TTL_SECONDS)
    finally:
        client.close()


def database_started():
    """Start ``SELECT 1`` on a thread of its own; returns the function that waits for it.

    The thread is given up on (not waited for) after the timeout: a database
    that does not answer must not hold the probe.  It runs while Redis is
    checked, so the probe costs the slower of the two, not their sum.
    """
    outcome: dict[str, object] = {}

    def probe():
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
        except Exception as exc:
            outcome["error"] = exc
        finally:
            connections.close_all()  # this thread's own connection
            outcome["done"] = True

    started = time.monotonic()
    thread = threading.Thread(target=probe, name="readyz-database", daemon=True)
    thread.start()

    def result() -> Check:
        thread.join(max(0.0, _timeout() - (time.monotonic() - started)))
        ms = (time.monotonic() - started) * 1000
        if "done" not in outcome:
            return Check(FAILING, f"no answer within {_timeout():g} s", ms)
        if "error" in outcome:
            return Check(FAILING, _describe(outcome["error"]), ms)
        return Check(OK, ms=ms)

    return result


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _age(stamp: bytes | None, now: float) -> float | None:
    if stamp is None:
        return None
    try:
        return max(0.0, now - float(stamp))
    except ValueError:
        return None


def _judge(age: float | None, what: str) -> tuple[bool, str]:
    max_age = float(settings.OPERATIONS["HEARTBEAT_MAX_AGE_SECONDS"])
    if age is None:
        return False, f"{what}: no heartbeat yet"
    if age > max_age:
        return False, f"{what}: last heartbeat {age:.0f} s ago (at most {max_age:g} s)"
    return True, f"{what}: {age:.0f} s ago"


def redis_and_heartbeats() -> dict[str, Check]:
    if not settings.REDIS_URL:
        idle = "embedded default: no Redis; background work runs in process"
        return {
            "redis": Check(NOT_CONFIGURED, idle),
            "worker": Check(NOT_CONFIGURED, idle),
            "beat": Check(NOT_CONFIGURED, idle),
        }
    queues = heartbeat_queues()
    started = time.monotonic()
    client = redis_client()
    try:
        pipe = client.pipeline(transaction=False)
        pipe.ping()
        pipe.mget([KEY_PREFIX + "beat", *(KEY_PREFIX + f"worker:{queue}" for queue in queues)])
        _, stamps = pipe.execute()
    except (redis.RedisError, OSError) as exc:
        checks = {"redis": Check(FAILING, _describe(exc), (time.monotonic() - started) * 1000)}
        if celery_configured():
            checks["worker"] = Check(NOT_CHECKED, "its heartbeat is read from Redis")
            checks["beat"] = Check(NOT_CHECKED, "its heartbeat is read from Redis")
        else:
            checks["worker"] = checks["beat"] = Check(NOT_CONFIGURED, "tasks run in process")
        return checks
    finally:
        client.close()
    checks = {"redis": Check(OK, ms=(time.monotonic() - started) * 1000)}
    if not celery_configured():
        checks["worker"] = Check(NOT_CONFIGURED, "tasks run in process")
        checks["beat"] = Check(NOT_CONFIGURED, "tasks run in process")
        return checks
    now = time.time()
    beat_ok, beat_detail = _judge(_age(stamps[0], now), "beat")
    checks["beat"] = Check(OK if beat_ok else FAILING, beat_detail)
    if not beat_ok:
        checks["worker"] = Check(NOT_CHECKED, "the workers' heartbeat tasks are sent by beat")
        return checks
    judged = [
        _judge(_age(stamp, now), f"queue {queue}")
        for queue, stamp in zip(queues, stamps[1:], strict=True)
    ]
    workers_ok = all(ok for ok, _ in judged)
    checks["worker"] = Check(OK if workers_ok else FAILING, "; ".join(d for _, d in judged))
    return checks


def readiness() -> tuple[bool, dict[str, Check]]:
    """(ready, each component's check): ready unless a component is failing."""
    database = database_started()
    others = redis_and_heartbeats()
    checks = {"database": database(), **others}
    return all(check.status != FAILING for check in checks.values()), checks
