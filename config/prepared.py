"""Hand-written hot statements as PostgreSQL prepared statements.

The three statements every ticket runs (dispatch's ranking, the fast path's
offer and the accept) are long, and PostgreSQL parsed and planned each of them
again on every call: about a third of its CPU for them (0.6 ms of the
ranking's 1.2 ms).  Prepared once per connection (``PREPARE``), each call is an
``EXECUTE`` with the values.  Connections live long (``CONN_MAX_AGE``), so
the preparing is paid once per connection; prepared statements survive
rollbacks, and PostgreSQL replans them itself after a schema change.

The statements keep Django's placeholders (``%(name)s`` or ``%s``) so that
the same text runs unprepared elsewhere (SQLite, the embedded default), and
with ``PREPARED_STATEMENTS=false``: behind a connection pooler in transaction
mode (PgBouncer), which would hand a prepared statement's session to another
client, they must run unprepared.

What it buys: ``bench/prepared.py`` (part of ``make bench``; its table is in
``bench/results/latest.md``) runs the ranking of a new ticket's agents and a
freed agent's pull, prepared and not, in turns in one run, and prints the CPU
of PostgreSQL and of Python per call.  The library alternative would be
psycopg 3's automatic server-side preparing (``prepare_threshold``); the
project stays on psycopg2, which has none.
"""

from __future__ import annotations

import re
import threading
import weakref

from django.conf import settings

_NAMED = re.compile(r"%\((\w+)\)s")
_POSITIONAL = re.compile(r"%s")

# Raw connection -> the names prepared on it.  Kept by name, not per Statement
# object: the modules make theirs on first use, and two threads may both make
# one; the second must not PREPARE a name its twin already prepared there.
_prepared: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_lock = threading.Lock()


class Statement:
    """One statement, prepared on each PostgreSQL connection the first time it runs there."""

    def __init__(self, name: str, sql: str):
        self.name = name
        self.sql = sql  # Django's placeholders: how it runs where it is not prepared
        self.names: list[str] = []
        if _NAMED.search(sql):

            def number(match):
                if match.group(1) not in self.names:
                    self.names.append(match.group(1))
                return f"${self.names.index(match.group(1)) + 1}"

            text = _NAMED.sub(number, sql)
            count = len(self.names)
        else:
            count = 0

            def number(match):
                nonlocal count
                count += 1
                return f"${count}"

            text = _POSITIONAL.sub(number, sql)
        self.prepare_sql = f"PREPARE {name} AS {text}"
        self.execute_sql = (
            f"EXECUTE {name}({', '.join(['%s'] * count)})" if count else (f"EXECUTE {name}")
        )

    def execute(self, connection, cursor, params) -> None:
        """Run on ``cursor`` (of Django's ``connection``) with ``params`` (a dict or a list)."""
        cursor.execute(*self.prepared(connection, cursor, params))

    def prepared(self, connection, cursor, params) -> tuple[str, list | dict]:
        """The SQL and values that run the statement on ``connection`` (for a cursor,
        or ``QuerySet.raw()``): ``EXECUTE``, prepared there first with ``cursor``
        if it was not yet; where statements are not prepared, the statement itself."""
        if connection.vendor != "postgresql" or not settings.PREPARED_STATEMENTS:
            return self.sql, params
        connection.ensure_connection()
        raw = connection.connection
        with _lock:
            prepared = self.name in _prepared.get(raw, ())
        if not prepared:
            cursor.execute(self.prepare_sql)
            with _lock:
                _prepared.setdefault(raw, set()).add(self.name)
        values = [params[name] for name in self.names] if self.names else list(params)
        return self.execute_sql, values


def literal(value: str) -> str:
    """A status or other constant of the code, written into a statement as SQL text.

    Constants are written in rather than passed as parameters so that a
    prepared statement's one plan can use the partial indexes (``status =
    'pending'``, the waiting tickets); no value from a request goes this way.
    """
    if not value.replace("_", "").isalnum():
        raise ValueError(f"not a constant: {value!r}")
    return f"'{value}'"
