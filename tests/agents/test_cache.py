"""The Redis cache: one client and connection pool per process, whatever the context."""

import contextvars

import pytest
from django.core.cache import caches

from config.cache import SharedRedisCache

pytestmark = pytest.mark.redis("the Redis cache's one client per process (config.cache)")


def _in_a_fresh_context(work):
    # Under ASGI each request and each sync_to_async call runs in a context of its own.
    return contextvars.Context().run(work)


def test_every_context_gets_its_own_cache_object_but_one_connection_pool():
    def use_the_cache():
        cache = caches["default"]
        cache.set("probe", "yes", timeout=10)
        assert cache.get("probe") == "yes"
        return cache, cache._cache.get_client(write=True).connection_pool

    first, first_pool = _in_a_fresh_context(use_the_cache)
    second, second_pool = _in_a_fresh_context(use_the_cache)

    assert isinstance(first, SharedRedisCache), "the suite runs on Redis"
    assert first is not second  # Django's per-context instances...
    assert first_pool is second_pool  # ...share the process's pool


def test_one_redis_client_object_serves_every_operation():
    cache = caches["default"]

    first = cache._cache.get_client(write=True)
    cache.set("probe", 1, timeout=10)
    assert cache.get("probe") == 1

    assert cache._cache.get_client(write=True) is first
    assert cache._cache.get_client(write=False) is first  # one server: reads go there too
