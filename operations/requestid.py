"""One id per HTTP request, on its response, in its log records and in the tasks it enqueues.

``RequestIdMiddleware`` (first in ``MIDDLEWARE``, so it runs under the test
client, WSGI and ``config.asgi_http`` alike) takes the client's or proxy's
``X-Request-ID`` when it is a plausible id, else makes one, and sets it on
the response.  While the request runs the id is in a context variable that
``RequestIdFilter`` copies onto every log record.  A task published meanwhile
carries it in a message header (Celery's ``before_task_publish``); the worker
puts it back into the context variable around the task (``task_prerun`` /
``task_postrun``), so the task's log records carry the request's id.  A task
run eagerly (the embedded default, the test suite) runs inside the request's
context and sees the id directly.
"""

from __future__ import annotations

import contextvars
import logging
import re
import uuid

from celery import signals

HEADER = "X-Request-ID"
# The message header a task carries the id in.
TASK_HEADER = "humanline_request_id"
NONE = "-"

# Letters, digits and the punctuation ids are made of (UUIDs, trace ids, a
# proxy's $request_id); nothing that could break a log line or a header.
_PLAUSIBLE = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


def current() -> str | None:
    """The id of the request (or of the request that enqueued the task) running now."""
    return _current.get()


def plausible(value: str | None) -> str | None:
    """``value`` when it can serve as a request id, else None."""
    if value and _PLAUSIBLE.fullmatch(value):
        return value
    return None


def new() -> str:
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Give each request an id: the incoming ``X-Request-ID`` when plausible, else a new one.

    An implausible header (too long, spaces, control characters) is replaced,
    not refused: a correlation id is no reason to fail a request, and what the
    client sent never reaches a log line or the response.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = plausible(request.headers.get(HEADER)) or new()
        request.request_id = request_id
        token = _current.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            _current.reset(token)
        response[HEADER] = request_id
        return response


class RequestIdFilter(logging.Filter):
    """Puts ``request_id`` on every record (``-`` outside a request or its tasks)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _current.get() or NONE
        return True


# --- Celery: the id travels with the task ---------------------------------------------


@signals.before_task_publish.connect(weak=False)
def _stamp(sender=None, headers=None, **kwargs) -> None:
    request_id = _current.get()
    if request_id and headers is not None and TASK_HEADER not in headers:
        headers[TASK_HEADER] = request_id


# task id -> the context token to restore once the task has run.
_tokens: dict[str, contextvars.Token] = {}


@signals.task_prerun.connect(weak=False)
def _enter(sender=None, task_id=None, task=None, **kwargs) -> None:
    request_id = plausible(task.request.get(TASK_HEADER)) if task is not None else None
    if request_id and task_id:
        _tokens[task_id] = _current.set(request_id)


@signals.task_postrun.connect(weak=False)
def _leave(sender=None, task_id=None, **kwargs) -> None:
    token = _tokens.pop(task_id, None) if task_id else None
    if token is not None:
        _current.reset(token)
