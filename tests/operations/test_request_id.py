"""The request id: on the response, on the request's log records, in the tasks it enqueues."""

import json
import logging
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from django.http import HttpResponse
from django.test import RequestFactory

from config.asgi_http import PooledASGIHandler
from config.celery import app as celery_app
from operations import requestid
from operations.requestid import RequestIdFilter, RequestIdMiddleware
from tests.agents.test_asgi_http import call

ROOT = Path(__file__).resolve().parents[2]

# What the worker saw, by the id the test gave its task.
seen: dict[str, dict] = {}
ran: dict[str, threading.Event] = {}


@celery_app.task(name="tests.operations.remember_request")
def remember_request(key: str) -> None:
    logging.getLogger("tests.operations.task").warning("task for %s runs", key)
    seen[key] = {"request_id": requestid.current()}
    ran[key].set()


def test_a_plausible_incoming_id_is_kept_and_returned(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="edge-7f3a9c1d-42")

    assert response["X-Request-ID"] == "edge-7f3a9c1d-42"


@pytest.mark.parametrize("sent", ["two words", "line\nbreak", "x" * 129, "<script>", ""], ids=repr)
def test_an_implausible_id_is_replaced_by_a_new_one(client, sent):
    response = client.get("/healthz", HTTP_X_REQUEST_ID=sent)

    returned = response["X-Request-ID"]
    assert returned != sent
    assert len(returned) == 32 and int(returned, 16) >= 0  # a fresh UUID, in hex


def test_each_request_without_one_gets_its_own(client):
    assert client.get("/healthz")["X-Request-ID"] != client.get("/healthz")["X-Request-ID"]


def test_the_asgi_server_path_carries_it_too():
    handler = PooledASGIHandler(threads=1)
    status, headers, _ = async_to_sync(call)(
        handler, url="/healthz", headers=[(b"x-request-id", b"asgi-req-1")]
    )

    assert status == 200
    assert headers[b"X-Request-ID"] == b"asgi-req-1"


def test_the_records_a_request_logs_carry_its_id_and_others_do_not(caplog):
    caplog.handler.addFilter(RequestIdFilter())

    def view(request):
        logging.getLogger("tests.operations.view").warning("inside the view")
        return HttpResponse("ok")

    request = RequestFactory().get("/", HTTP_X_REQUEST_ID="req-records-1")
    with caplog.at_level(logging.WARNING):
        RequestIdMiddleware(view)(request)
        logging.getLogger("tests.operations.view").warning("after the request")

    inside, after = caplog.records
    assert inside.request_id == "req-records-1"
    assert after.request_id == "-"


def test_a_task_a_request_enqueues_runs_in_a_worker_with_the_requests_id(caplog):
    """Published through the broker (not run eagerly), taken by a real worker thread."""
    from celery.contrib.testing.worker import start_worker

    key, queue = uuid.uuid4().hex, f"test-{uuid.uuid4().hex[:8]}"
    ran[key] = threading.Event()

    def view(request):
        remember_request.apply_async(args=(key,), queue=queue)
        return HttpResponse("queued")

    conf = celery_app.conf
    eager = conf.task_always_eager
    conf.task_always_eager = False
    try:
        with start_worker(
            celery_app, pool="solo", perform_ping_check=False, queues=[queue], loglevel="WARNING"
        ):
            # Added after the worker set logging up (from Django's LOGGING).
            records: list[logging.LogRecord] = []
            capture = logging.Handler()
            capture.emit = records.append
            capture.addFilter(RequestIdFilter())
            logging.getLogger("tests.operations.task").addHandler(capture)
            try:
                request = RequestFactory().get("/", HTTP_X_REQUEST_ID="req-into-task-1")
                response = RequestIdMiddleware(view)(request)
                assert ran[key].wait(20), "the worker did not run the task"
            finally:
                logging.getLogger("tests.operations.task").removeHandler(capture)
    finally:
        conf.task_always_eager = eager

    assert response["X-Request-ID"] == "req-into-task-1"
    assert seen[key]["request_id"] == "req-into-task-1"
    (record,) = [r for r in records if key in r.getMessage()]
    assert record.request_id == "req-into-task-1"
    assert threading.current_thread().name != record.threadName  # the worker's own thread
    assert requestid.current() is None  # nothing left behind


def test_with_log_format_json_each_line_is_an_object_with_the_request_id():
    """The settings as a process gets them: LOG_FORMAT=json in its environment."""
    script = (
        "import logging, django\n"
        "django.setup()\n"
        "from django.http import HttpResponse\n"
        "from django.test import RequestFactory\n"
        "from operations.requestid import RequestIdMiddleware\n"
        "def view(request):\n"
        "    logging.getLogger('humanline.demo').warning('ticket %s opened', 7)\n"
        "    return HttpResponse('ok')\n"
        "RequestIdMiddleware(view)(RequestFactory().get('/', HTTP_X_REQUEST_ID='json-req-1'))\n"
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "LOG_FORMAT")
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "HUMANLINE_TESTING": "1",
            "LOG_FORMAT": "json",
        }
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    (line,) = [line for line in lines if line.get("logger") == "humanline.demo"]
    assert line["message"] == "ticket 7 opened"
    assert line["level"] == "WARNING"
    assert line["request_id"] == "json-req-1"
    assert line["time"].endswith("+00:00")


def test_an_unknown_log_format_stops_the_start():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "LOG_FORMAT": "xml"}
    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode != 0
    assert "LOG_FORMAT must be text or json" in done.stderr
