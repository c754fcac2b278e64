"""The ticket's socket ``/ws/tickets/<id>/``: who may listen, live pushes, resync.

These run the real ASGI application with the real channel layer (channels-redis
on the test Redis), and one test on the in-memory layer.
"""

from datetime import timedelta

import pytest
import pytest_asyncio
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.utils import timezone

from agents.services import realtime_ticket_issue
from config.asgi import application
from tests.tickets.factories import TicketFactory, assigned
from tickets import events, services
from tickets.models import Message, Rung

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

ORIGIN = [(b"origin", b"http://testserver")]


async def _open(person, ticket_id: int, since: int | str | None = None, origin=ORIGIN):
    user = getattr(person, "user", person)
    path = f"/ws/tickets/{ticket_id}/"
    if user is not None:
        value, _ = await database_sync_to_async(realtime_ticket_issue)(user=user)
        path += f"?ticket={value}"
        if since is not None:
            path += f"&since={since}"
    communicator = WebsocketCommunicator(application, path, headers=origin)
    connected, code = await communicator.connect()
    if not connected:
        # A refused consumer still waits for the disconnect; end it cleanly so that
        # no task is left for the event loop's teardown to cancel.
        await communicator.disconnect()
    return communicator, connected, code


async def _drain(communicator) -> list[dict]:
    """What the socket sent so far (the connect snapshot, pushes already delivered)."""
    received = []
    while not await communicator.receive_nothing(timeout=0.3):
        received.append(await communicator.receive_json_from())
    return received


@pytest_asyncio.fixture
async def _flush_layer():
    yield
    layer = get_channel_layer()
    if hasattr(layer, "flush"):
        await layer.flush()
    # The consumers' database thread keeps a connection; the test database must drop cleanly.
    await database_sync_to_async(connections.close_all)()


@pytest.fixture
def person(request):
    """A persona named by the test's parameter, resolved outside the event loop."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def ticket(customer, agent):
    return assigned(TicketFactory(customer=customer), agent)


@pytest.mark.parametrize("person", ["customer", "agent", "staff"], indirect=True)
async def test_customer_assigned_agent_and_staff_may_listen(person, ticket, _flush_layer):
    communicator, connected, _ = await _open(person, ticket.pk)

    assert connected
    snapshot = await _drain(communicator)
    assert snapshot[0] == {
        "type": "ticket.status",
        "ticket_id": ticket.pk,
        "status": "assigned",
        "reason": "",
    }
    assert snapshot[1]["type"] == "ticket.assigned"
    await communicator.disconnect()


@pytest.mark.parametrize("person", ["other_customer", "other_agent", "applicant"], indirect=True)
async def test_anyone_else_is_refused_at_the_handshake(person, ticket, _flush_layer):
    _, connected, code = await _open(person, ticket.pk)

    assert not connected
    assert code == 4403


async def test_an_agent_merely_offered_the_ticket_is_refused_at_the_handshake(
    customer, other_agent, _flush_layer
):
    # The conversation opens with the accept, not with the offer.
    from marketplace.models import Offer

    waiting = await database_sync_to_async(TicketFactory)(customer=customer)
    await database_sync_to_async(Offer.objects.create)(
        ticket=waiting,
        agent=other_agent,
        base_amount=2,
        surge_multiplier=1,
        amount=2,
        currency="EUR",
        expires_at=timezone.now() + timedelta(seconds=30),
    )

    _, connected, code = await _open(other_agent, waiting.pk)

    assert not connected
    assert code == 4403


async def test_an_anonymous_socket_is_refused(ticket, _flush_layer):
    _, connected, code = await _open(None, ticket.pk)

    assert not connected and code == 4401


async def test_a_foreign_origin_is_refused(customer, ticket, _flush_layer):
    _, connected, _ = await _open(customer, ticket.pk, origin=[(b"origin", b"http://evil.example")])

    assert not connected


async def test_a_waiting_customer_gets_the_place_in_line_on_connect(customer, _flush_layer):
    waiting = await database_sync_to_async(TicketFactory)(customer=customer)

    communicator, connected, _ = await _open(customer, waiting.pk)

    assert connected
    snapshot = await _drain(communicator)
    assert [e["type"] for e in snapshot] == ["ticket.status", "queue.position"]
    assert snapshot[1]["queue_position"] == 1 and snapshot[1]["eta_seconds"] == 180
    await communicator.disconnect()


async def test_a_customer_told_why_they_wait_hears_it_again_on_connect(customer, _flush_layer):
    # given: a ticket past the rung where its customer is told, nobody online
    waiting = await database_sync_to_async(TicketFactory)(
        customer=customer,
        escalation=Rung.CUSTOMER_NOTICE,
        queued_at=timezone.now() - timedelta(minutes=5),
    )

    communicator, connected, _ = await _open(customer, waiting.pk)

    assert connected
    snapshot = await _drain(communicator)
    assert [e["type"] for e in snapshot] == ["ticket.status", "queue.position", "ticket.waiting"]
    assert snapshot[2] == {
        "type": "ticket.waiting",
        "ticket_id": waiting.pk,
        "waiting_reason": {
            "code": "no_agent_online",
            "message": "No agent is online right now. You keep your place in line.",
            "languages": [],
        },
    }
    await communicator.disconnect()


async def test_an_agents_message_reaches_the_customer_live(customer, agent, ticket, _flush_layer):
    listening, _, _ = await _open(customer, ticket.pk)
    await _drain(listening)

    message = await database_sync_to_async(services.message_post)(
        ticket_id=ticket.pk, caller=agent.user, body="Hi Carla, I'm on it."
    )

    event = await listening.receive_json_from(timeout=3)
    assert event["type"] == "ticket.message"
    assert event["message"]["id"] == message.pk
    assert event["message"]["body"] == "Hi Carla, I'm on it."
    await listening.disconnect()


async def test_a_message_sent_over_the_socket_is_stored_and_reaches_both(
    customer, agent, ticket, _flush_layer
):
    customer_socket, _, _ = await _open(customer, ticket.pk)
    agent_socket, _, _ = await _open(agent, ticket.pk)
    await _drain(customer_socket)
    await _drain(agent_socket)

    await customer_socket.send_json_to({"type": "ticket.message", "body": "Still there?"})

    for socket in (customer_socket, agent_socket):
        event = await socket.receive_json_from(timeout=3)
        assert event["type"] == "ticket.message"
        assert event["message"]["body"] == "Still there?"
        assert event["message"]["author_role"] == "customer"
    stored = await database_sync_to_async(
        lambda: list(Message.objects.values_list("body", "author"))
    )()
    assert stored == [("Still there?", customer.pk)]
    await customer_socket.disconnect()
    await agent_socket.disconnect()


async def test_staff_sending_over_the_socket_get_an_error_and_nothing_is_stored(
    staff, ticket, _flush_layer
):
    socket, _, _ = await _open(staff, ticket.pk)
    await _drain(socket)

    await socket.send_json_to({"type": "ticket.message", "body": "I'm staff"})

    event = await socket.receive_json_from(timeout=3)
    assert event["type"] == "error" and event["error"]["code"] == "forbidden"
    assert not await database_sync_to_async(Message.objects.exists)()
    await socket.disconnect()


async def test_ping_is_answered(customer, ticket, _flush_layer):
    socket, _, _ = await _open(customer, ticket.pk)
    await _drain(socket)

    await socket.send_json_to({"type": "ping"})

    assert await socket.receive_json_from(timeout=3) == {"type": "pong"}
    await socket.disconnect()


async def test_an_open_socket_keeps_its_ticket_watched_on_connect_and_each_ping(
    customer, _flush_layer
):
    """Places in line are pushed only to watched tickets (``events.watched_places``)."""
    from django.core.cache import cache

    waiting = await database_sync_to_async(TicketFactory)(customer=customer)
    mark = f"ticket-watched:{waiting.pk}"
    watched = database_sync_to_async(
        lambda: [t for t, _ in events.watched_places([(waiting.pk, None)])]
    )
    assert await watched() == []

    socket, _, _ = await _open(customer, waiting.pk)
    await _drain(socket)
    assert await watched() == [waiting.pk]

    await database_sync_to_async(cache.delete)(mark)  # as if the mark had run out
    await socket.send_json_to({"type": "ping"})
    assert await socket.receive_json_from(timeout=3) == {"type": "pong"}
    assert await watched() == [waiting.pk]
    await socket.disconnect()


@pytest.mark.side_effects_fail
async def test_a_cache_that_fails_costs_the_watch_mark_never_the_socket(
    customer, monkeypatch, _flush_layer
):
    from config import effects

    def unreachable(ticket_id):
        raise ConnectionError("cache down")

    monkeypatch.setattr(events, "watching", unreachable)
    waiting = await database_sync_to_async(TicketFactory)(customer=customer)
    before = sum(effects.failures().values())

    socket, connected, _ = await _open(customer, waiting.pk)
    assert connected
    assert [e["type"] for e in await _drain(socket)] == ["ticket.status", "queue.position"]
    await socket.send_json_to({"type": "ping"})

    assert await socket.receive_json_from(timeout=3) == {"type": "pong"}
    assert sum(effects.failures().values()) == before + 2  # on connect and on the ping
    await socket.disconnect()


async def test_a_client_that_reconnects_loses_nothing(customer, agent, ticket, _flush_layer):
    # given: the customer saw the first message, then lost the connection
    first = await database_sync_to_async(services.message_post)(
        ticket_id=ticket.pk, caller=agent.user, body="one"
    )
    socket, _, _ = await _open(customer, ticket.pk)
    await _drain(socket)
    await socket.disconnect()
    # ... while away, two more messages were written
    for body in ("two", "three"):
        await database_sync_to_async(services.message_post)(
            ticket_id=ticket.pk, caller=agent.user, body=body
        )

    # when: it reconnects from the last message it saw
    socket, connected, _ = await _open(customer, ticket.pk, since=first.pk)

    # then
    assert connected
    received = await _drain(socket)
    assert [e["message"]["body"] for e in received if e["type"] == "ticket.message"] == [
        "two",
        "three",
    ]
    await socket.disconnect()


async def test_an_agent_the_ticket_was_taken_from_is_disconnected(agent, ticket, _flush_layer):
    socket, _, _ = await _open(agent, ticket.pk)
    await _drain(socket)

    await database_sync_to_async(services.ticket_requeue)(
        ticket_id=ticket.pk, reason="Agent went silent."
    )

    event = await socket.receive_json_from(timeout=3)
    assert event["type"] == "ticket.status" and event["status"] == "queued"
    closed = await socket.receive_output(timeout=3)
    assert closed == {"type": "websocket.close", "code": 4403}


async def test_pushes_work_on_the_in_memory_layer(settings, customer, agent, ticket, _flush_layer):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    socket, _, _ = await _open(customer, ticket.pk)
    await _drain(socket)

    await database_sync_to_async(services.message_post)(
        ticket_id=ticket.pk, caller=agent.user, body="in memory"
    )

    event = await socket.receive_json_from(timeout=3)
    assert event["message"]["body"] == "in memory"
    assert type(get_channel_layer()).__name__ == "InMemoryChannelLayer"
    await socket.disconnect()


async def test_a_malformed_since_is_an_error_frame_and_the_socket_stays_open(
    customer, ticket, _flush_layer
):
    # "²" passes str.isdigit and then fails int(): it crashed the consumer.
    socket, connected, _ = await _open(customer, ticket.pk, since="²")

    assert connected
    received = await _drain(socket)
    errors = [m for m in received if m["type"] == "error"]
    assert [e["error"]["code"] for e in errors] == ["invalid_parameter"]
    assert any(m["type"] == "ticket.status" for m in received)  # the snapshot all the same
    await socket.send_json_to({"type": "ping"})
    assert await socket.receive_json_from() == {"type": "pong"}
    await socket.disconnect()


async def test_a_frame_that_is_not_json_is_an_error_frame_and_the_socket_stays_open(
    customer, ticket, _flush_layer
):
    # Channels' JSON consumer raised on these and dropped the connection.
    socket, connected, _ = await _open(customer, ticket.pk)
    assert connected
    await _drain(socket)

    await socket.send_to(text_data="{not json")
    first = await socket.receive_json_from()
    await socket.send_to(bytes_data=b"\x00\x01")
    second = await socket.receive_json_from()
    await socket.send_json_to(["not", "an", "object"])
    third = await socket.receive_json_from()

    assert [first["error"]["code"], second["error"]["code"], third["error"]["code"]] == [
        "bad_frame",
        "bad_frame",
        "bad_frame",
    ]
    await socket.send_json_to({"type": "ping"})
    assert await socket.receive_json_from() == {"type": "pong"}
    await socket.disconnect()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("a\x00b", "bad_frame"),  # PostgreSQL refuses NUL in text: it dropped the socket
        ({"text": "hi"}, "invalid"),  # was stored as the text of a dict
        (["hi"], "invalid"),
        (None, "invalid"),
    ],
)
async def test_a_crafted_message_is_an_error_frame_stores_nothing_and_the_socket_stays_open(
    customer, ticket, body, code, _flush_layer
):
    socket, connected, _ = await _open(customer, ticket.pk)
    assert connected
    await _drain(socket)

    await socket.send_json_to({"type": "ticket.message", "body": body})
    answer = await socket.receive_json_from()

    assert answer["type"] == "error"
    assert answer["error"]["code"] == code
    assert not await database_sync_to_async(Message.objects.filter(ticket=ticket).exists)()
    await socket.send_json_to({"type": "ping"})
    assert await socket.receive_json_from() == {"type": "pong"}
    await socket.disconnect()
