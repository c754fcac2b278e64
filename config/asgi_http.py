"""HTTP under the ASGI server: each request runs whole on one pooled thread.

Django's own ASGI handler runs a synchronous view and synchronous middleware
by hopping between the event loop and a thread made for the request: one new
thread per request, and a hop in and out for each middleware that is not
async (WhiteNoise is not, and ``MiddlewareMixin`` runs its hooks in the thread
either way).  With the views synchronous (the ORM is), all of that is overhead:
on the dispatch benchmark, starting threads and handing work between them
was about a fifth of the web processes' CPU.

``PooledASGIHandler`` does what a WSGI server does instead.  The event loop
reads the body, then one thread of a fixed pool runs the request from end to
end with the plain synchronous middleware chain (as under WSGI):
``request_started``, the view, the response, ``request_finished`` (which
closes the thread's database connection if it is too old or broken; else
the thread keeps it for its next request, ``CONN_MAX_AGE``).  The loop
then sends what came back.  A streaming response is sent from the thread as
it is produced, chunk by chunk.

The request runs in a copy of the context of the loop's task, which holds
the server's loop (``config.channel_send.SERVER_LOOP``): pushes from a view
go through that loop and its long-lived Redis connections.

The view runs to its end even if the client goes away (as under WSGI); a
response to a client that left is dropped by the server.
"""

from __future__ import annotations

import asyncio
import contextvars
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.http import FileResponse
from django.urls import set_script_prefix


class PooledASGIHandler(ASGIHandler):
    """Django's ASGI handler with every request run whole on one thread of a pool."""

    def __init__(self, threads: int | None = None):
        BaseHandler.__init__(self)
        self.load_middleware(is_async=False)  # one synchronous chain, as under WSGI
        self.threads = threads or settings.HTTP_THREADS
        self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="http")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django serves HTTP here, not {scope['type']}.")
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        try:
            sent = await loop.run_in_executor(
                self.pool, context.run, self.respond, loop, scope, body_file, send
            )
        finally:
            body_file.close()
        if sent is not None:  # a whole response, built on the thread: send it from here
            start, body = sent
            await send(start)
            for chunk, last in self.chunk_bytes(body):
                await send({"type": "http.response.body", "body": chunk, "more_body": not last})

    def respond(self, loop, scope, body_file, send):
        """On a pool thread: the whole request.

        Returns the response's start message and body for the loop to send, or
        None when a streaming response was sent from here as it was produced.
        """
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self.get_response(request)
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size
        try:
            start = {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": self.headers_of(response),
            }
            if not response.streaming:
                return start, response.content
            self.stream(loop, send, start, response)
            return None
        finally:
            response.close()  # request_finished, on the request's own thread

    def stream(self, loop, send, start, response) -> None:
        def out(message):
            asyncio.run_coroutine_threadsafe(send(message), loop).result()

        if response.is_async:
            # An async iterator is consumed on the loop, by Django's own sender.
            asyncio.run_coroutine_threadsafe(self.send_response(response, send), loop).result()
            return
        out(start)
        for part in response.streaming_content:
            for chunk, _ in self.chunk_bytes(part):
                out({"type": "http.response.body", "body": chunk, "more_body": True})
        out({"type": "http.response.body"})

    @staticmethod
    def headers_of(response) -> list[tuple[bytes, bytes]]:
        headers = [
            (
                header.encode("ascii") if isinstance(header, str) else bytes(header),
                value.encode("latin1") if isinstance(value, str) else bytes(value),
            )
            for header, value in response.items()
        ]
        headers.extend(
            (b"Set-Cookie", cookie.output(header="").encode("ascii").strip())
            for cookie in response.cookies.values()
        )
        return headers
