"""The Redis cache: one connection pool per process, whatever the context."""

import contextvars

import pytest
import redis
from django.conf import settings
from django.core.cache import caches

from config import cache as shared

pytestmark = pytest.mark.redis("the Redis cache's one pool per process (config.cache)")


def _in_a_fresh_context(work):
    # Under ASGI each request and each sync_to_async call runs in a context of its own.
    return contextvars.Context().run(work)


def _cache_connections(name: str) -> int:
    """The connections Redis holds open under this client name."""
    admin = redis.Redis.from_url(settings.REDIS_URL)
    try:
        return sum(1 for client in admin.client_list() if client["name"] == name)
    finally:
        admin.close()


def test_caches_in_fresh_contexts_share_one_pool_and_one_connection(settings):
    name = "humanline-cache-probe"
    options = settings.CACHES["default"].get("OPTIONS", {})
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "OPTIONS": {**options, "client_name": name},
        }
    }
    made = shared.pools_made()

    def use_the_cache():
        cache = caches["default"]
        cache.set("probe", "yes", timeout=10)
        assert cache.get("probe") == "yes"
        return cache

    seen = [_in_a_fresh_context(use_the_cache) for _ in range(20)]

    assert len({id(cache) for cache in seen}) > 1  # Django's per-context instances...
    assert shared.pools_made() == made + 1  # ...share one pool for this configuration
    assert _cache_connections(name) == 1  # ...and so one connection, used in turn


def test_a_pool_is_made_per_url_and_options():
    first = shared.SharedConnectionPool.from_url("redis://127.0.0.1:6379/3", socket_timeout=1.0)
    again = shared.SharedConnectionPool.from_url("redis://127.0.0.1:6379/3", socket_timeout=1.0)
    other = shared.SharedConnectionPool.from_url("redis://127.0.0.1:6379/3", socket_timeout=2.0)

    assert first is again
    assert other is not first
