"""One Redis connection pool per process for Django's Redis cache, whatever the context.

Django keeps a cache instance per *context* (``caches`` is an asgiref
``Local``), and each instance's client makes its own connection pool on first
use.  Under ASGI every request, and every ``sync_to_async`` call from a
socket, runs in a fresh context: each one that touched the cache built a new
pool and opened a new connection to Redis (with redis-py's handshake).

Django's Redis cache takes the pool's class as an option (``OPTIONS
["pool_class"]``, documented) and asks it for a pool with
``pool_class.from_url(url, **options)``, redis-py's documented constructor.
``SharedConnectionPool.from_url`` hands back the process's pool for that URL
and those options, made once: every instance, in every context, shares it.
redis-py's pool is safe across threads and starts afresh in a forked child.

What it buys: ``bench/sync_redis.py`` (part of ``make bench``; its table is in
``bench/results/latest.md``) reads the cache once per fresh context with
Django's own pool and with this one, in turns in one run: with Django's, every
read opens a connection to Redis and costs several times the CPU.
``tests/agents/test_cache.py`` pins the behaviour this relies on: Django makes
a cache instance per context.
"""

import threading

import redis

POOLS: dict[tuple, "SharedConnectionPool"] = {}
POOLS_LOCK = threading.Lock()


class SharedConnectionPool(redis.ConnectionPool):
    @classmethod
    def from_url(cls, url, **kwargs):
        key = (url, tuple(sorted((name, repr(value)) for name, value in kwargs.items())))
        with POOLS_LOCK:
            pool = POOLS.get(key)
            if pool is None:
                pool = POOLS[key] = super().from_url(url, **kwargs)
        return pool


def pools_made() -> int:
    """How many pools this process has made (one per Redis URL and options)."""
    with POOLS_LOCK:
        return len(POOLS)
