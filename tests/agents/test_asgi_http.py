"""HTTP under the ASGI server: every request whole on one thread of a fixed pool."""

import asyncio
import json
import threading

import pytest
from django.core import signals
from django.db import connection
from django.http import HttpResponse, StreamingHttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from rest_framework.authtoken.models import Token

from config import channel_send
from config.asgi_http import PooledASGIHandler
from tickets.models import Ticket


def probe(request):
    """Where the request ran, and the server loop its pushes would go through."""
    loop = channel_send.SERVER_LOOP.get()
    response = HttpResponse(
        json.dumps({"thread": threading.current_thread().name, "loop": loop and id(loop)}),
        content_type="application/json",
    )
    response.set_cookie("probe", "yes")
    return response


def stream(request):
    return StreamingHttpResponse(f"line {n}\n".encode() for n in range(3))


def broken(request):
    raise RuntimeError("the view failed")


def backend(request):
    """The PostgreSQL backend serving this request's thread."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return HttpResponse(str(cursor.fetchone()[0]))


def echo(request):
    return HttpResponse(request.path.encode())


@csrf_exempt
def echo_body(request):
    return HttpResponse(request.body)


urlpatterns = [
    path("probe/", probe),
    path("caf\u00e9/", echo),
    path("stream/", stream),
    path("body/", echo_body),
    path("broken/", broken),
    path("backend/", backend),
]


async def call(handler, method="GET", url="/probe/", body=b"", headers=(), chunks=None):
    """One request through the handler; returns (status, headers, body).

    ``chunks``: the body sent in these pieces instead (as a chunked upload is)."""
    pieces = chunks if chunks is not None else [body]
    pending = [
        {"type": "http.request", "body": piece, "more_body": n < len(pieces) - 1}
        for n, piece in enumerate(pieces)
    ]
    sent = []

    async def receive():
        if pending:
            return pending.pop(0)
        await asyncio.sleep(3600)  # the client stays connected

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": url,
        "raw_path": url.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    await handler(scope, receive, send)
    start, *bodies = sent
    assert start["type"] == "http.response.start"
    assert all(m["type"] == "http.response.body" for m in bodies)
    assert not bodies[-1].get("more_body", False)  # the response was finished
    return start["status"], dict(start["headers"]), b"".join(m.get("body", b"") for m in bodies)


@pytest.fixture
def probe_urls(settings):
    settings.ROOT_URLCONF = __name__


@pytest.fixture
def lifecycle():
    """The threads request_started and request_finished fire on, in order."""
    seen = []

    def started(**kwargs):
        seen.append(("started", threading.current_thread().name))

    def finished(**kwargs):
        seen.append(("finished", threading.current_thread().name))

    signals.request_started.connect(started)
    signals.request_finished.connect(finished)
    yield seen
    signals.request_started.disconnect(started)
    signals.request_finished.disconnect(finished)


@pytest.mark.asyncio
async def test_requests_run_whole_on_the_pools_reused_threads(probe_urls, lifecycle):
    handler = PooledASGIHandler(threads=2)

    replies = await asyncio.gather(*(call(handler) for _ in range(8)))

    assert {status for status, _, _ in replies} == {200}
    threads = {json.loads(body)["thread"] for _, _, body in replies}
    assert all(name.startswith("http") for name in threads)
    assert len(threads) <= 2  # 8 requests, no thread made for any of them
    # Each request's start and finish (the database connection's return) on its own thread.
    assert len(lifecycle) == 16
    for name in threads:
        mine = [event for event, thread in lifecycle if thread == name]
        assert mine == ["started", "finished"] * (len(mine) // 2)


@pytest.mark.asyncio
async def test_a_view_knows_the_servers_loop(probe_urls):
    handler = channel_send.serving(PooledASGIHandler(threads=1))

    status, headers, body = await call(handler)

    assert status == 200
    assert json.loads(body)["loop"] == id(asyncio.get_running_loop())
    assert b"probe=yes" in headers[b"Set-Cookie"]


@pytest.mark.asyncio
async def test_a_streaming_response_is_sent_as_it_is_produced(probe_urls, lifecycle):
    handler = PooledASGIHandler(threads=1)

    status, _, body = await call(handler, url="/stream/")

    assert status == 200
    assert body == b"line 0\nline 1\nline 2\n"
    assert [event for event, _ in lifecycle] == ["started", "finished"]


@pytest.mark.asyncio
async def test_a_failing_view_is_a_500_and_the_request_still_finishes(probe_urls, lifecycle):
    handler = PooledASGIHandler(threads=1)

    status, _, _ = await call(handler, url="/broken/")

    assert status == 500
    assert [event for event, _ in lifecycle] == ["started", "finished"]


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_api_opens_a_ticket_through_the_pooled_handler(customer):
    from asgiref.sync import sync_to_async

    token = await sync_to_async(lambda: Token.objects.create(user=customer).key)()
    handler = PooledASGIHandler(threads=2)
    body = json.dumps({"subject": "Refund", "body": "Where is my refund?"}).encode()

    status, headers, content = await call(
        handler,
        method="POST",
        url="/api/v1/tickets/",
        body=body,
        headers=[
            (b"authorization", f"Token {token}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    )

    assert status == 201, content
    assert headers[b"Content-Type"] == b"application/json"
    opened = json.loads(content)
    ticket = await sync_to_async(Ticket.objects.get)(pk=opened["id"])
    assert (ticket.subject, ticket.customer_id) == ("Refund", customer.pk)


async def _backends(max_age: int) -> set[bytes]:
    """The backends that served 12 requests on a pool of 2 threads, in rounds."""
    handler = PooledASGIHandler(threads=2)
    kept = connection.settings_dict["CONN_MAX_AGE"]
    connection.settings_dict["CONN_MAX_AGE"] = max_age  # every thread's wrapper reads it
    try:
        seen = set()
        for _ in range(3):
            replies = await asyncio.gather(*(call(handler, url="/backend/") for _ in range(4)))
            seen |= {body for _, _, body in replies}
        return seen
    finally:
        connection.settings_dict["CONN_MAX_AGE"] = kept
        handler.pool.shutdown()  # its threads end, and their connections with them


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres("counts PostgreSQL backends (pg_backend_pid)")
async def test_each_thread_keeps_its_database_connection_between_requests(probe_urls):
    """Persistent connections (CONN_MAX_AGE) on the pool's long-lived threads: as
    many as the threads, opened once, whatever the requests."""
    assert len(await _backends(max_age=60)) <= 2
    assert len(await _backends(max_age=0)) > 2  # one per request when none is kept


def test_the_wsgi_environ_follows_the_asgi_mapping():
    from config.asgi_http import wsgi_environ

    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": "/app/caf\u00e9/",
        "root_path": "/app",
        "query_string": b"q=1&r=%C3%A9",
        "headers": [
            (b"host", b"example.org"),
            (b"content-type", b"application/json"),
            (b"content-length", b"2"),
            (b"cookie", b"a=1"),
            (b"cookie", b"b=2"),
            (b"accept", b"text/html"),
            (b"accept", b"application/json"),
            (b"x_forwarded_for", b"10.0.0.1"),  # would read as X-Forwarded-For
        ],
        "client": ("192.0.2.7", 51000),
        "server": ("example.org", 443),
    }

    environ = wsgi_environ(scope, body=None)

    assert environ["REQUEST_METHOD"] == "POST"
    assert environ["SCRIPT_NAME"] == "/app"
    assert environ["PATH_INFO"] == "/caf\u00e9/".encode().decode("latin1")  # PEP 3333
    assert environ["QUERY_STRING"] == "q=1&r=%C3%A9"
    assert (environ["CONTENT_TYPE"], environ["CONTENT_LENGTH"]) == ("application/json", "2")
    assert environ["HTTP_COOKIE"] == "a=1; b=2"
    assert environ["HTTP_ACCEPT"] == "text/html,application/json"
    assert "HTTP_X_FORWARDED_FOR" not in environ
    assert (environ["REMOTE_ADDR"], environ["SERVER_NAME"], environ["SERVER_PORT"]) == (
        "192.0.2.7",
        "example.org",
        "443",
    )
    assert environ["wsgi.url_scheme"] == "https"


@pytest.mark.asyncio
async def test_a_body_sent_without_a_length_reaches_the_view_whole(probe_urls):
    pieces = [b"first,", b"second,", b"third"]
    status, _, body = await call(
        PooledASGIHandler(threads=1), method="POST", url="/body/", chunks=pieces
    )

    assert (status, body) == (200, b"first,second,third")


@pytest.mark.asyncio
async def test_a_non_ascii_path_reaches_the_view(probe_urls):
    status, _, body = await call(PooledASGIHandler(threads=1), url="/caf\u00e9/")

    assert (status, body.decode()) == (200, "/caf\u00e9/")


@pytest.mark.asyncio
async def test_djangos_own_handler_makes_a_thread_per_request(probe_urls):
    """What the pooled handler is for: Django's ASGI handler runs each request on
    a thread made for it (and so, with CONN_MAX_AGE, a database connection)."""
    from django.core.asgi import get_asgi_application

    handler = get_asgi_application()
    threads = set()
    for _ in range(3):
        _, _, body = await call(handler)
        threads.add(json.loads(body)["thread"])

    assert len(threads) == 3


@pytest.mark.asyncio
async def test_a_client_that_leaves_before_its_body_is_whole_gets_nothing_run(
    probe_urls, lifecycle
):
    messages = [
        {"type": "http.request", "body": b'{"sub', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent = []

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/probe/",
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
    }
    await PooledASGIHandler(threads=1)(scope, receive, send)

    assert sent == []  # nothing to answer
    assert lifecycle == []  # and the request never started
