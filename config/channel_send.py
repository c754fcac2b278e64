"""Sending on the channel layer from synchronous code.

Views, services and tasks are synchronous; the channel layer is async.
Inside the ASGI server, synchronous code runs on threads for the server's
event loop (``SERVER_LOOP``, which every connection's context holds), and
the layer's Redis connections belong to that loop.  A push from such a
thread is handed to the loop's outbox and the thread goes on: one task on the
loop sends whatever the threads handed over meanwhile, in the order handed
over.  (Waiting for each send, as ``async_to_sync`` does, made every request
that pushes wait for Redis.)  Elsewhere (a Celery worker, the embedded
sweeper, a management command) ``async_to_sync`` would make a new event loop
per call, and channels-redis keeps its connections per loop: every push
would open and close its own Redis connection.  There, sends run on one
long-lived loop on a background thread, whose connections the layer keeps
for as long as the process lives.  The in-memory layer (the embedded
default) is sent on the server's loop, whose queues the sockets read, or
with ``async_to_sync`` outside the server.

Only the channel layer specification's own calls are used (``group_send``),
so any layer configured in ``CHANNEL_LAYERS`` works.

What it buys: ``bench/sync_redis.py`` (part of ``make bench``; its table is in
``bench/results/latest.md``) pushes from a worker thread with
``async_to_sync(layer.group_send)`` and with ``group_send_many``, in turns in
one run: the stock way opens a Redis connection per push and costs several
times the CPU.  ``tests/agents/test_channel_send.py`` pins the behaviour.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import threading
from contextlib import contextmanager

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from operations import counters

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_layer = None
_pid: int | None = None


# The event loop of the ASGI server whose request or socket this code serves.
# ``serving`` sets it for every connection; the context, and so the loop, goes
# with the connection's synchronous work to the thread that runs it (asgiref's
# ``sync_to_async`` and ``config.asgi_http`` run it in a copy of the context).
SERVER_LOOP: contextvars.ContextVar[asyncio.AbstractEventLoop | None] = contextvars.ContextVar(
    "server_loop", default=None
)


def serving(app):
    """The ASGI application ``app``, with ``SERVER_LOOP`` set for each connection."""

    async def application(scope, receive, send):
        SERVER_LOOP.set(asyncio.get_running_loop())
        return await app(scope, receive, send)

    return application


def _server_loop() -> asyncio.AbstractEventLoop | None:
    """The server's loop, when this is synchronous work of a request or socket."""
    loop = SERVER_LOOP.get()
    return loop if loop is not None and loop.is_running() else None


def _is_redis(layer) -> bool:
    from channels_redis.core import RedisChannelLayer
    from channels_redis.pubsub import RedisPubSubChannelLayer

    return isinstance(layer, RedisChannelLayer | RedisPubSubChannelLayer)


def sender():
    """The process's sending loop and its layer, started on first use (and after a fork)."""
    global _loop, _layer, _pid
    with _lock:
        if _loop is None or _pid != os.getpid() or _loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(
                target=loop.run_forever, name="channel-layer-sender", daemon=True
            ).start()
            _loop, _pid = loop, os.getpid()
            _layer = get_channel_layer()
        return _loop, _layer


class _Outbox:
    """Pushes from the server's threads, sent in order by one task on its loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, layer):
        self.loop, self.layer = loop, layer
        self._items: list[tuple[str, dict]] = []
        self._lock = threading.Lock()
        self._draining = False  # a drain is scheduled or running
        self._task: asyncio.Task | None = None  # kept: the loop holds tasks weakly

    def put(self, items: list[tuple[str, dict]]) -> None:
        with self._lock:
            self._items.extend(items)
            if self._draining:
                return  # the running drain takes them on its next round
            self._draining = True
        try:
            self.loop.call_soon_threadsafe(self._start)
        except RuntimeError:  # the loop has closed: the server is stopping
            with self._lock:
                dropped, self._items, self._draining = len(self._items), [], False
            logger.warning("the server loop has closed; %d push(es) not sent", dropped)
            counters.pushes_failed(dropped, reason="error")

    def _start(self) -> None:
        self._task = self.loop.create_task(self._drain())

    async def _drain(self) -> None:
        while True:
            with self._lock:
                items, self._items = self._items, []
                if not items:
                    self._draining = False
                    return
            try:
                await _send_all(self.layer, items)
            except Exception:
                # As the pushes' own senders do: the facts are committed, clients resync.
                logger.exception("sending %d pushes failed; clients resync", len(items))
                counters.pushes_failed(len(items), reason="error")


_outbox: _Outbox | None = None


async def _send_all(layer, items: list[tuple[str, dict]]) -> None:
    """Send each ``(group, message)`` on ``layer``; a failed send does not stop the others."""
    results = await asyncio.gather(
        *(layer.group_send(group, message) for group, message in items),
        return_exceptions=True,
    )
    failed = [result for result in results if isinstance(result, Exception)]
    if failed:
        logger.warning(
            "%d of %d pushes failed (%r); clients resync", len(failed), len(items), failed[0]
        )
    counters.pushes_failed(len(failed), reason="error")


def _server_outbox(layer) -> _Outbox:
    """The outbox of the loop this thread's synchronous work came from."""
    global _outbox
    loop = _server_loop()
    with _lock:
        if _outbox is None or _outbox.loop is not loop or _outbox.layer is not layer:
            _outbox = _Outbox(loop, layer)
        return _outbox


_batch: contextvars.ContextVar[list | None] = contextvars.ContextVar("channel_batch", default=None)


@contextmanager
def batched():
    """Hold every ``group_send_many`` of the block and send them as one at its end.

    One event often pushes to several audiences (an accepted offer: the agent
    and the ticket's watchers); off the server each send is a hop to the
    sending loop and a wait, so the block's sends go together.  Nested blocks
    join the outer one.  What the block held is sent even if the block fails
    part-way; a failure to send is logged, as the pushes' own senders do: the
    facts are committed and clients resync.
    """
    if _batch.get() is not None:
        yield
        return
    held: list[tuple[str, dict]] = []
    token = _batch.set(held)
    try:
        yield
    finally:
        # Sent even if the block failed part-way: what it pushed is committed.
        _batch.reset(token)
        try:
            group_send_many(held)
        except Exception:
            logger.exception("sending %d batched pushes failed; clients resync", len(held))


def group_send_many(items: list[tuple[str, dict]], *, timeout: float = 10.0) -> None:
    """Send each ``(group, message)``; one failed send does not stop the others.

    Inside ``batched()`` they are held and sent with the block's others.  On a
    thread of the ASGI server they go to the loop's outbox and this returns at
    once; elsewhere it returns once they are sent."""
    held = _batch.get()
    if held is not None:
        held.extend(items)
        return
    layer = get_channel_layer()
    if layer is None or not items:
        return
    if _server_loop() is not None:
        # On the server's loop, whose connections (or, in memory, queues) the
        # layer's receivers use; the thread goes on meanwhile.
        _server_outbox(layer).put(items)
        return
    try:
        if not _is_redis(layer):
            async_to_sync(_send_all)(layer, items)
            return
        loop, own = sender()
        asyncio.run_coroutine_threadsafe(_send_all(own, items), loop).result(timeout)
    except Exception:
        # The caller logs it (the facts are committed; clients resync).
        counters.pushes_failed(len(items), reason="error")
        raise
