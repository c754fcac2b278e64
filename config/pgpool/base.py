"""PostgreSQL (psycopg2) with a small per-process pool of open connections.

Under ASGI, Django runs each request's synchronous code on a thread of its
own, and a Django connection belongs to a thread.  With ``CONN_MAX_AGE > 0``
every such thread would keep a connection (PostgreSQL runs out of slots);
with 0 every request opens one and closes it, which costs a backend process
start and a handshake: a few milliseconds of CPU on both sides, on every
request and every socket message.

This backend keeps Django's ``CONN_MAX_AGE = 0`` behaviour (the connection is
given up at the end of each request or task), but giving it up hands the
psycopg2 connection, rolled back to idle, to a pool shared by the process's
threads; the next thread that needs one takes it from there.  At most
``POOL_SIZE`` idle connections are kept (more may be open while busy; those
are closed when returned), and one idle longer than ``POOL_MAX_IDLE_SECONDS``
is closed rather than reused, as is one whose server ended its session while
it waited (a restart).  Settings: ``ENGINE = "config.pgpool"`` and
``OPTIONS`` untouched; the sizes come from the database's ``POOL`` dict.
"""

from __future__ import annotations

import contextlib
import select
import threading
import time

from django.db.backends.postgresql import base
from psycopg2 import extensions

DEFAULTS = {"SIZE": 20, "MAX_IDLE_SECONDS": 300}


class ConnectionPool:
    """Idle psycopg2 connections by connection parameters, last returned first out."""

    def __init__(self):
        self._lock = threading.Lock()
        self._idle: dict[str, list[tuple[object, float]]] = {}

    def take(self, key: str, *, max_idle: float):
        now = time.monotonic()
        while True:
            with self._lock:
                stack = self._idle.get(key)
                if not stack:
                    return None
                connection, returned_at = stack.pop()
            if connection.closed or now - returned_at > max_idle or _has_word(connection):
                _close_quietly(connection)
                continue
            return connection

    def give(self, key: str, connection, *, size: int) -> bool:
        """Keep the connection for reuse; False if it was closed instead."""
        if connection.closed:
            return False
        try:
            if connection.get_transaction_status() != extensions.TRANSACTION_STATUS_IDLE:
                connection.rollback()
        except Exception:
            _close_quietly(connection)
            return False
        with self._lock:
            stack = self._idle.setdefault(key, [])
            if len(stack) < size:
                stack.append((connection, time.monotonic()))
                return True
        _close_quietly(connection)
        return False

    def idle_count(self, key: str | None = None) -> int:
        with self._lock:
            if key is not None:
                return len(self._idle.get(key, ()))
            return sum(len(stack) for stack in self._idle.values())

    def clear(self) -> None:
        with self._lock:
            stacks, self._idle = list(self._idle.values()), {}
        for stack in stacks:
            for connection, _ in stack:
                _close_quietly(connection)


def _has_word(connection) -> bool:
    """Has the server said something to a connection that sat idle in the pool?

    An idle session's server speaks only to end it: a restart, a shutdown or
    ``pg_terminate_backend`` sends a FATAL notice and closes the socket, which
    psycopg2 notices only at the next query (a 500 for that request, once per
    pooled connection).  Readable means the session is over, or at least not
    idle; either way the pool drops it.  One ``poll`` without waiting, no
    round trip (Go's database/sql checks its idle connections the same way).
    """
    try:
        descriptor = connection.fileno()
    except Exception:  # closed under us
        return True
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(descriptor, select.POLLIN)
        return bool(poller.poll(0))
    readable, _, _ = select.select([descriptor], [], [], 0)
    return bool(readable)


def _close_quietly(connection) -> None:
    with contextlib.suppress(Exception):  # a dead connection has nothing left to close
        connection.close()


POOL = ConnectionPool()


class DatabaseWrapper(base.DatabaseWrapper):
    def _pool_settings(self) -> dict:
        return {**DEFAULTS, **self.settings_dict.get("POOL", {})}

    @staticmethod
    def _pool_key(conn_params: dict) -> str:
        return repr(sorted((name, repr(value)) for name, value in conn_params.items()))

    def get_new_connection(self, conn_params):
        self._pool_key_in_use = self._pool_key(conn_params)
        connection = POOL.take(
            self._pool_key_in_use, max_idle=self._pool_settings()["MAX_IDLE_SECONDS"]
        )
        if connection is None:
            return super().get_new_connection(conn_params)
        # What the parent does after connecting; psycopg2 keeps the jsonb loader.
        level = self.settings_dict["OPTIONS"].get("isolation_level")
        if level is None:
            self.isolation_level = base.IsolationLevel.READ_COMMITTED
        else:
            self.isolation_level = base.IsolationLevel(level)
            connection.isolation_level = self.isolation_level
        return connection

    def _close(self):
        if self.connection is None:
            return
        key = getattr(self, "_pool_key_in_use", None)
        if key is None:
            super()._close()
            return
        with self.wrap_database_errors:
            POOL.give(key, self.connection, size=self._pool_settings()["SIZE"])
