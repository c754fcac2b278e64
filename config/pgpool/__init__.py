"""A per-process pool of PostgreSQL connections (``base``), and its default size."""

import os


def default_size(http_threads: int, cpus: int | None = None) -> int:
    """Idle connections a process keeps by default: one per thread of a web
    process that can hold one, so that none is closed only to be opened again.

    Those threads are the HTTP threads (``HTTP_THREADS``), the threads of the
    event loop's default executor (socket work run with
    ``thread_sensitive=False``, as an accepted offer is; asyncio sizes it
    ``min(32, cores + 4)``) and asgiref's one thread for the rest of the
    sockets' database work.  With fewer kept than that, every burst that
    busied more threads than the pool holds closed the extra connections
    afterwards and the next burst opened them again: a backend started, a
    handshake, and every prepared statement parsed and planned anew, while
    the stack was already short of CPU.  A Celery worker never has that many
    threads at once, so the size only caps it.
    """
    cpus = cpus or os.cpu_count() or 1
    return http_threads + min(32, cpus + 4) + 1
