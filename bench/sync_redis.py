"""Redis from synchronous code: the project's two adapters against the stock way.

- The cache (``config/cache.py``): Django keeps a cache instance per context,
  and under ASGI every request runs in a fresh one.  Reads the cache once per
  fresh context with Django's own connection pool (``OPTIONS`` without
  ``pool_class``) and with ``SharedConnectionPool``.
- Pushes from a worker (``config/channel_send.py``): a Celery task sends
  each push from synchronous code.  Sends group messages one at a time with
  ``async_to_sync(layer.group_send)`` (Channels' documented way) and with
  ``channel_send.group_send_many``.

Both in turns in one run, on the configured Redis; the table gives the time
and this process's CPU per call, and the connections Redis accepted meanwhile
(``INFO stats``).

Usage: ``make bench`` or ``python bench/sync_redis.py --calls 1000``.
"""

import argparse
import contextvars
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def connections_received(client) -> int:
    return client.info("stats")["total_connections_received"]


def timed(call, calls: int, admin) -> tuple[float, float, int]:
    """(wall ms, CPU ms) per call, and the connections Redis accepted meanwhile."""
    call()  # the first call makes what later calls reuse
    opened = connections_received(admin)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        call()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return 1000 * wall / calls, 1000 * cpu / calls, connections_received(admin) - opened


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--turns", type=int, default=2)
    args = parser.parse_args()
    if not os.environ.get("REDIS_URL"):
        print("sync_redis: needs REDIS_URL", file=sys.stderr)
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-production-0123456789-abcdefgh")
    os.environ.setdefault("SECURE", "0")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    import redis
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer
    from django.conf import settings
    from django.core.cache import caches
    from django.test.utils import override_settings

    from config import channel_send

    admin = redis.Redis.from_url(settings.REDIS_URL)
    configured = settings.CACHES["default"]
    stock_options = {k: v for k, v in configured["OPTIONS"].items() if k != "pool_class"}
    layer = get_channel_layer()
    message = {"type": "bench.event", "n": 1}

    def cache_read():
        # A fresh context, as each ASGI request and sync_to_async call runs in.
        contextvars.Context().run(lambda: caches["default"].get("bench-probe"))

    def with_cache(options):
        def run():
            with override_settings(CACHES={"default": {**configured, "OPTIONS": options}}):
                return timed(cache_read, args.calls, admin)

        return run

    rows = []
    for _ in range(args.turns):
        for name, run in (
            ("cache read in a fresh context: Django's pool", with_cache(stock_options)),
            (
                "cache read in a fresh context: SharedConnectionPool",
                with_cache(configured["OPTIONS"]),
            ),
            (
                "push from a worker: async_to_sync(group_send)",
                lambda: timed(
                    lambda: async_to_sync(layer.group_send)("bench-nobody", message),
                    args.calls,
                    admin,
                ),
            ),
            (
                "push from a worker: channel_send.group_send_many",
                lambda: timed(
                    lambda: channel_send.group_send_many([("bench-nobody", message)]),
                    args.calls,
                    admin,
                ),
            ),
        ):
            rows.append((name, *run()))
    print(f"Redis from synchronous code: {args.calls} calls per row, {args.turns} turns")
    print("| what | ms per call | CPU ms per call | Redis connections opened |")
    print("|---|---|---|---|")
    for name, wall, cpu, opened in rows:
        print(f"| {name} | {wall:.3f} | {cpu:.3f} | {opened} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
