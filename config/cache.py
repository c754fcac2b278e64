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
"""

import threading

from django.core.cache.backends.redis import RedisCache
from django.utils.functional import cached_property

_clients: dict[tuple, object] = {}
_lock = threading.Lock()


class SharedRedisCache(RedisCache):
    @cached_property
    def _cache(self):
        key = (tuple(self._servers), repr(sorted(self._options.items())))
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = self._class(self._servers, **self._options)
        return client
