"""Sending on the channel layer from synchronous code.

Inside the ASGI server, synchronous code runs on threads that asgiref's
``async_to_sync`` hops back to the server's event loop, whose Redis
connections live as long as the process.  Elsewhere (a Celery worker, the
embedded sweeper, a management command) ``async_to_sync`` makes a new event
loop per call, and channels-redis keeps a connection pool per loop: every push
opened and closed its own Redis connection, which was most of a worker's push
time.  There, sends run on one long-lived loop on a background thread instead.
The in-memory layer (the embedded default) keeps ``async_to_sync``: its queues
belong to the server's loop.
"""

from __future__ import annotations

import asyncio
import os
import threading

from asgiref.sync import SyncToAsync, async_to_sync

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None


def _server_loop_running() -> bool:
    """Is this a thread the ASGI server's loop handed synchronous work to?"""
    if getattr(SyncToAsync.threadlocal, "main_event_loop_pid", None) != os.getpid():
        return False
    loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    return loop is not None and loop.is_running()


def sender_loop() -> asyncio.AbstractEventLoop:
    """The process's long-lived sending loop, started on first use (and after a fork)."""
    global _loop, _loop_pid
    with _lock:
        if _loop is None or _loop_pid != os.getpid() or _loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(
                target=loop.run_forever, name="channel-layer-sender", daemon=True
            ).start()
            _loop, _loop_pid = loop, os.getpid()
        return _loop


def _is_redis(layer) -> bool:
    return type(layer).__module__.startswith("channels_redis")


def run(layer, async_fn, *args, timeout: float = 10.0):
    """Run ``async_fn(*args)`` (a send on ``layer``) from synchronous code; its result."""
    if _server_loop_running() or not _is_redis(layer):
        return async_to_sync(async_fn)(*args)
    future = asyncio.run_coroutine_threadsafe(async_fn(*args), sender_loop())
    return future.result(timeout)
