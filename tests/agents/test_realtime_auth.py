"""WebSocket authentication: one-time realtime tickets, sessions and origins."""

import pytest
import time_machine
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from agents.services import realtime_ticket_issue, realtime_ticket_redeem
from config.asgi import application

ORIGIN = [(b"origin", b"http://testserver")]


def test_a_realtime_ticket_is_issued_to_a_signed_in_user(api, customer, db):
    response = api.as_(customer).post("/api/v1/realtime/tickets/")
    assert response.status_code == 201
    assert realtime_ticket_redeem(value=response.json()["ticket"]) == customer


def test_anonymous_callers_get_no_realtime_ticket(api, db):
    assert api.post("/api/v1/realtime/tickets/").status_code in (401, 403)


def test_a_realtime_ticket_works_once(customer, db):
    value, _ = realtime_ticket_issue(user=customer)
    assert realtime_ticket_redeem(value=value) == customer
    assert realtime_ticket_redeem(value=value) is None


def test_a_realtime_ticket_expires_after_sixty_seconds(customer, db):
    value, _ = realtime_ticket_issue(user=customer)
    with time_machine.travel(timezone.now() + timezone.timedelta(seconds=61)):
        assert realtime_ticket_redeem(value=value) is None


def test_a_made_up_ticket_is_refused(db):
    assert realtime_ticket_redeem(value="guess") is None
    assert realtime_ticket_redeem(value="") is None


async def _connect(path, headers=ORIGIN):
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await communicator.connect()
    if not connected:
        # A refused consumer still waits for the disconnect; end it cleanly so that
        # no task is left for the event loop's teardown to cancel.
        await communicator.disconnect()
    return communicator, connected, code


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_socket_accepts_a_ticket_and_answers_ping(customer):
    value, _ = await database_sync_to_async(realtime_ticket_issue)(user=customer)
    communicator, connected, _ = await _connect(f"/ws/ping/?ticket={value}")
    assert connected
    assert await communicator.receive_json_from() == {"type": "hello", "user": customer.email}
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from() == {"type": "pong"}
    await communicator.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_socket_without_credentials_is_refused():
    _, connected, code = await _connect("/ws/ping/")
    assert not connected
    assert code == 4401


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_socket_ticket_cannot_be_replayed(customer):
    value, _ = await database_sync_to_async(realtime_ticket_issue)(user=customer)
    first, connected, _ = await _connect(f"/ws/ping/?ticket={value}")
    assert connected
    await first.disconnect()
    _, connected_again, _ = await _connect(f"/ws/ping/?ticket={value}")
    assert not connected_again


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_socket_from_a_foreign_origin_is_refused(customer):
    value, _ = await database_sync_to_async(realtime_ticket_issue)(user=customer)
    _, connected, _ = await _connect(
        f"/ws/ping/?ticket={value}", headers=[(b"origin", b"https://evil.example")]
    )
    assert not connected


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_socket_accepts_a_session_cookie(customer, settings):
    from django.test import Client

    client = Client()
    await database_sync_to_async(client.force_login)(customer)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    communicator, connected, _ = await _connect(
        "/ws/ping/", headers=[*ORIGIN, (b"cookie", cookie.encode())]
    )
    assert connected
    assert (await communicator.receive_json_from())["user"] == customer.email
    await communicator.disconnect()
