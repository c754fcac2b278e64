"""Shared fixtures: personas, API clients, a live ASGI server and a real browser.

Personas read like the people of the brief: ``customer`` and ``other_customer``,
``agent`` and ``other_agent`` (approved), ``applicant`` (applied), ``staff``.
"""

import os
import socket
import threading
import time

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from agents.models import AgentStatus, Role
from tests.api_fuzz import write_summary as write_fuzz_summary
from tests.factories import PASSWORD, AgentFactory, StaffFactory, UserFactory


@pytest.fixture(autouse=True)
def _private_media(settings, tmp_path):
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"


DB_FIXTURES = {"db", "transactional_db", "django_db_reset_sequences", "live_asgi"}


@pytest.fixture(autouse=True)
def _default_skills(request):
    """Transactional tests flush the database, data migrations included; put the
    default skills catalog and rate card back for every test that touches it."""
    if not (
        DB_FIXTURES & set(request.fixturenames) or request.node.get_closest_marker("django_db")
    ):
        return
    request.getfixturevalue("_django_db_helper")
    from agents.catalog import ensure_default_skills
    from marketplace.services.pricing import ensure_default_rates

    ensure_default_skills()
    ensure_default_rates()


@pytest.fixture(autouse=True)
def _side_effects_succeed(request):
    """A side effect that fails after a commit is only logged in service
    (``config.effects``); here it fails the test, unless the test is about that."""
    from config import effects

    before = effects.failures()
    yield
    if request.node.get_closest_marker("side_effects_fail") is None:
        assert effects.failures() == before, "a side effect failed after a commit (see the log)"


@pytest.fixture(autouse=True)
def _no_throttle_state():
    from django.core.cache import cache

    from marketplace.events import expiry_memo_clear
    from tickets.events import lane_memo_clear
    from tickets.selectors import lane_orders_clear, rate_cache_clear

    cache.clear()
    lane_memo_clear()  # what each process remembers of the pushes and expiries scheduled
    expiry_memo_clear()
    rate_cache_clear()  # and each lane with a fresh service rate
    lane_orders_clear()  # and with each lane's order read afresh
    yield


@pytest.fixture(scope="session", autouse=True)
def _close_stray_connections(django_db_setup, django_db_blocker):
    """Async tests and server threads leave connections open in their own threads;
    end them so that the test database can be dropped at the end."""
    yield
    from django.db import connection

    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )


@pytest.fixture
def customer(db):
    return UserFactory(email="carla@example.org", name="Carla Customer", role=Role.CUSTOMER)


@pytest.fixture
def other_customer(db):
    return UserFactory(email="oscar@example.org", name="Oscar Outsider", role=Role.CUSTOMER)


@pytest.fixture
def agent(db):
    return AgentFactory(
        user__email="aisha@example.org",
        user__name="Aisha Agent",
        languages=["en", "pt"],
        skills=["general", "payments"],
    )


@pytest.fixture
def other_agent(db):
    return AgentFactory(user__email="bruno@example.org", user__name="Bruno Agent")


@pytest.fixture
def applicant(db):
    return AgentFactory(
        user__email="april@example.org", user__name="April Applicant", status=AgentStatus.APPLIED
    )


@pytest.fixture
def staff(db):
    return StaffFactory(email="ops@example.org", name="Olivia Ops")


@pytest.fixture
def api():
    """An API client; ``api.as_(user)`` signs it in with a token."""

    client = APIClient()

    def as_(user):
        if user is None:
            client.credentials()
        else:
            token, _ = Token.objects.get_or_create(user=getattr(user, "user", user))
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    client.as_ = as_
    return client


@pytest.fixture
def password():
    return PASSWORD


# --- a live ASGI server (HTTP and WebSockets) for browser tests --------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveASGIServer:
    def __init__(self):
        import uvicorn

        from config.asgi import application

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            application,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            ws="websockets-sansio",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self):
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the ASGI test server did not start")
            time.sleep(0.02)  # waiting for a thread to bind a port, not for app behaviour

    def stop(self):
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_asgi(transactional_db, settings):
    """Humanline served over HTTP and WebSockets on a free loopback port."""
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
    # A fresh channel layer for each server: channels_redis binds receiving to
    # one event loop, and a consumer left waiting in an earlier loop (a socket
    # test cut short on a loaded machine) would make every later receive fail
    # with "Two event loops are trying to receive() on one channel layer".
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    server = LiveASGIServer()
    server.start()
    yield server
    server.stop()


# --- a real browser ----------------------------------------------------------

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def pytest_collection_modifyitems(config, items):
    _deselect_what_needs_a_missing_service(config, items)
    # Playwright's sync API keeps an event loop running in the main thread while
    # it is open, which async (Channels) tests cannot share: browser tests run
    # last, and each module closes its browser.
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.fixture(scope="module")
def _playwright():
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def browser(_playwright):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium is required for browser tests: {CHROMIUM} (make browser)")
    browser = _playwright.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    )
    yield browser
    browser.close()


@pytest.fixture
def new_page(browser, live_asgi):
    """Open a fresh browser context (its own cookies) on the live server."""
    contexts = []

    def make(viewport=None, **options):
        # options: Playwright's new_context arguments, such as locale="fr-FR"
        # (which also sets the Accept-Language header).
        context = browser.new_context(
            base_url=live_asgi.url, viewport=viewport or {"width": 1280, "height": 900}, **options
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def sign_in(page, email: str, password: str = PASSWORD) -> None:
    page.goto("/login/")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


# --- pushes and time (shifts and presence) ------------------------------------


@pytest.fixture
def pushes(monkeypatch):
    """Every message pushed to an agent's socket, as (agent_id, message) pairs."""
    sent = []
    monkeypatch.setattr(
        "agents.events.push_to_agent",
        lambda *, agent_id, message: sent.append((agent_id, message)),
    )
    monkeypatch.setattr("agents.events.push_many_to_agents", sent.extend)
    return sent


@pytest.fixture
def clock():
    """Time stands still at Monday 2030-01-07 09:00 UTC until the test moves it."""
    from datetime import UTC, datetime

    import time_machine

    with time_machine.travel(datetime(2030, 1, 7, 9, 0, tzinfo=UTC), tick=False) as traveller:
        yield traveller


@pytest.fixture
def short_lived_db_connections():
    """Close each thread's DB connection after use (sockets, live server threads).

    Otherwise a worker thread keeps its connection (CONN_MAX_AGE) and the test
    database cannot be dropped at the end of the run.
    """
    from django.db import connections

    settings_dict = connections["default"].settings_dict
    before = settings_dict["CONN_MAX_AGE"]
    settings_dict["CONN_MAX_AGE"] = 0
    yield
    settings_dict["CONN_MAX_AGE"] = before


# --- the two passes: PostgreSQL + Redis, and the embedded default (SQLite) ----

# A test that can only mean something on PostgreSQL, on Redis or on SQLite says
# so with a reason: @pytest.mark.postgres("SKIP LOCKED row locks under concurrent
# threads").  Where that database or service is not configured it is deselected,
# not skipped: a `postgres` or `redis` test runs in the PostgreSQL + Redis pass of
# `make test`, a `sqlite` one in the pass on the embedded default.
SERVICE_MARKS = ("postgres", "redis", "sqlite")
_deselected = pytest.StashKey[dict[tuple[str, str], int]]()


def _missing_services() -> set[str]:
    from django.conf import settings
    from django.db import connection

    missing = set()
    if connection.vendor != "postgresql":
        missing.add("postgres")
    if connection.vendor != "sqlite":
        missing.add("sqlite")
    if not settings.REDIS_URL:
        missing.add("redis")
    return missing


def _reason(item, mark) -> str:
    reason = mark.args[0] if len(mark.args) == 1 and not mark.kwargs else None
    if not isinstance(reason, str) or not reason.strip():
        raise pytest.UsageError(
            f"{item.nodeid}: @pytest.mark.{mark.name} needs one argument, the reason the test"
            f' cannot run without it: @pytest.mark.{mark.name}("SKIP LOCKED row locks")'
        )
    return reason.strip()


def _deselect_what_needs_a_missing_service(config, items):
    missing = _missing_services()
    keep, drop = [], []
    counts: dict[tuple[str, str], int] = {}
    for item in items:
        needs = [
            (mark.name, _reason(item, mark))
            for mark in item.iter_markers()
            if mark.name in SERVICE_MARKS
        ]
        unmet = [need for need in needs if need[0] in missing]
        if unmet:
            drop.append(item)
            counts[unmet[0]] = counts.get(unmet[0], 0) + 1
        else:
            keep.append(item)
    config.stash[_deselected] = counts
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_terminal_summary(terminalreporter, config):
    write_fuzz_summary(terminalreporter, config)
    counts = config.stash.get(_deselected, {})
    if not counts:
        return
    total = sum(counts.values())
    terminalreporter.write_sep(
        "=", f"{total} deselected: they need a database or service this run does not use"
    )
    for (name, reason), count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        terminalreporter.write_line(f"{count:4d}  @{name}: {reason}")


def pytest_sessionfinish(session, exitstatus):
    # A selection whose every test needs PostgreSQL (PYTEST_ARGS=tests/agents/test_prepared.py)
    # has nothing to run in the SQLite pass: that is not a failure.
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and session.config.stash.get(
        _deselected, {}
    ):
        session.exitstatus = pytest.ExitCode.OK
