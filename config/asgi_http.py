"""HTTP under the ASGI server: Django's WSGI application, each request whole on
one thread of a fixed pool.

Django's ASGI handler runs a synchronous view and synchronous middleware by
hopping between the event loop and a thread made for the request: one new
thread per request, and with it a new database connection, since Django keeps
a persistent connection (``CONN_MAX_AGE``) per thread.  The views are
synchronous (the ORM is), so that is all overhead.  ``PooledASGIHandler``
serves HTTP as a threaded WSGI server does instead, through interfaces that
are all documented: the ASGI HTTP specification on the server's side, PEP
3333 and Django's WSGI application (``get_wsgi_application``) on the other.

What it buys: ``bench/http_handler.py`` (part of ``make bench``; its table is
in ``bench/results/latest.md``) serves the same API read with each handler in
turns, in one run.  Django's handler, with ``CONN_MAX_AGE`` 0 as Django
advises under ASGI, opens a PostgreSQL connection per request, costs about
twice the web CPU per request, and serves about a third of the requests per
second.  ``HTTP_HANDLER=django`` switches to it.

The event loop reads the body; one thread of the pool builds the WSGI
environ (as the ASGI specification's WSGI compatibility section maps it) and
calls the application, which runs ``request_started``, the middleware chain,
the view and, when the response is closed, ``request_finished`` (which closes
the thread's database connection if it is too old or broken, else the thread
keeps it for its next request).  A response of one chunk (every
non-streaming response) goes back to the loop, which sends it; a response of
more chunks (a streaming one) is sent from the thread, chunk by chunk, as it
is produced.

The request runs in a copy of the context of the loop's task, which holds
the server's loop (``config.channel_send.SERVER_LOOP``): pushes from a view
go through that loop.  The view runs to its end even if the client goes
away, as under any WSGI server; a response to a client that left is dropped
by the ASGI server.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from concurrent.futures import ThreadPoolExecutor
from tempfile import SpooledTemporaryFile

from django.conf import settings
from django.core.wsgi import get_wsgi_application

# A body up to this size is kept in memory while the request runs.
BODY_IN_MEMORY = 1024 * 1024


class PooledASGIHandler:
    """An ASGI application for HTTP: Django's WSGI application on a pool of threads."""

    def __init__(self, threads: int | None = None):
        self.application = get_wsgi_application()
        self.threads = threads or settings.HTTP_THREADS
        self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="http")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django serves HTTP here, not {scope['type']}.")
        with SpooledTemporaryFile(max_size=BODY_IN_MEMORY) as body:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return  # gone before the request was whole: nothing to answer
                body.write(message.get("body", b""))
                if not message.get("more_body", False):
                    break
            length = body.tell()
            body.seek(0)
            loop = asyncio.get_running_loop()
            context = contextvars.copy_context()
            whole = await loop.run_in_executor(
                self.pool, context.run, self.respond, loop, scope, body, length, send
            )
        if whole is not None:  # built on the thread in one chunk: send it from here
            start, content = whole
            await send(start)
            await send({"type": "http.response.body", "body": content})

    def respond(self, loop, scope, body, length, send):
        """On a pool thread: the whole request.

        Returns the response's start message and its one chunk for the loop
        to send, or None when the response was sent from here as produced.
        """
        started = {}

        def start_response(status, headers, exc_info=None):
            started["start"] = {
                "type": "http.response.start",
                "status": int(status.split(" ", 1)[0]),
                "headers": [
                    (name.encode("latin1"), value.encode("latin1")) for name, value in headers
                ],
            }

        result = self.application(wsgi_environ(scope, body, length), start_response)
        try:
            chunks = iter(result)
            first = next(chunks, b"")
            second = next(chunks, None)
            if second is None:
                return started["start"], first

            def out(message):
                asyncio.run_coroutine_threadsafe(send(message), loop).result()

            out(started["start"])
            for chunk in (first, second):
                out({"type": "http.response.body", "body": chunk, "more_body": True})
            for chunk in chunks:
                out({"type": "http.response.body", "body": chunk, "more_body": True})
            out({"type": "http.response.body"})
            return None
        finally:
            close = getattr(result, "close", None)  # PEP 3333: request_finished, here
            if close is not None:
                close()


def wsgi_environ(scope: dict, body, length: int = 0) -> dict:
    """The WSGI environ of an ASGI HTTP scope, as the ASGI specification maps it.

    ``length`` is the size of the body as received: a body sent without a
    ``Content-Length`` (chunked) gets it, since Django reads no more than
    ``CONTENT_LENGTH`` says.
    """
    root = scope.get("root_path", "")
    path = scope["path"]
    if root and path.startswith(root):
        path = path[len(root) :]
    server = scope.get("server") or ("localhost", 80)
    environ = {
        "REQUEST_METHOD": scope["method"],
        # PEP 3333: native strings holding the path's bytes, one per character.
        "SCRIPT_NAME": root.encode("utf8").decode("latin1"),
        "PATH_INFO": path.encode("utf8").decode("latin1"),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1] if server[1] is not None else 80),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": body,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    client = scope.get("client")
    if client:
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = client[0], str(client[1])
    for raw_name, raw_value in scope.get("headers", []):
        if b"_" in raw_name:
            # Dropped, as WSGI servers do: it would read as the header spelt
            # with a hyphen (X_Forwarded_For as X-Forwarded-For).
            continue
        name = raw_name.decode("latin1").upper().replace("-", "_")
        value = raw_value.decode("latin1")
        key = name if name in ("CONTENT_LENGTH", "CONTENT_TYPE") else f"HTTP_{name}"
        if key in environ:  # a repeated header: joined, as RFC 9110 allows
            value = environ[key] + ("; " if key == "HTTP_COOKIE" else ",") + value
        environ[key] = value
    if length and "CONTENT_LENGTH" not in environ:
        environ["CONTENT_LENGTH"] = str(length)
    return environ
