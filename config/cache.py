"""Django's Redis cache with one client, and so one connection pool, per process.

Django keeps a cache instance per *context* (``caches`` is an asgiref
``Local``), and each instance makes its own Redis client and connection pool.
Under ASGI every request, and every ``sync_to_async`` call from a socket, runs
in a fresh context: each one that touched the cache built a new pool and
opened a new connection (with redis-py's handshake, and its driver-version
lookup through package metadata).  On the dispatch benchmark that was most of
what asking a running dispatch pass to go round again cost.  Here the
instances of one configuration share one client; redis-py's pool is safe
across threads and resets itself in a forked child.

Django's client also builds a new ``redis.Redis`` object for every operation
(with its table of response callbacks, about 4% of a web process's CPU on
the benchmark); ``SharedClient`` keeps one per connection pool, as redis-py
objects are safe to share between threads.
"""

import threading

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.utils.functional import cached_property

_clients: dict[tuple, object] = {}
_lock = threading.Lock()


class SharedClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._redis: dict[int, object] = {}
        self._redis_lock = threading.Lock()

    def _pool_at(self, index: int):
        if index not in self._pools:
            self._pools[index] = self._pool_class.from_url(
                self._servers[index], **self._pool_options
            )
        return self._pools[index]

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._redis.get(index)
        if client is None:
            with self._redis_lock:
                client = self._redis.get(index)
                if client is None:
                    client = self._redis[index] = self._client(connection_pool=self._pool_at(index))
        return client


class SharedRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = SharedClient

    @cached_property
    def _cache(self):
        key = (tuple(self._servers), repr(sorted(self._options.items())))
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = self._class(self._servers, **self._options)
        return client
