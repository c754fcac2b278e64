"""The agent socket ``/ws/agent/`` against the real ASGI app and channel layer.

With REDIS_URL set (as ``make test`` does) the layer is channels-redis on the
real Redis; one test swaps in the in-memory layer of the embedded default.
"""

from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from agents import events, presence, services
from agents.models import AgentConnection, Presence
from config.asgi import application
from tests.marketplace.factories import offer_to_online

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio,
    pytest.mark.usefixtures("short_lived_db_connections"),
]

ORIGIN = [(b"origin", b"http://testserver")]


async def _open(user, *, origin=ORIGIN, with_ticket=True):
    query = ""
    if with_ticket:
        value, _ = await database_sync_to_async(services.realtime_ticket_issue)(
            user=getattr(user, "user", user)
        )
        query = f"?ticket={value}"
    communicator = WebsocketCommunicator(application, f"/ws/agent/{query}", headers=origin)
    connected, code = await communicator.connect()
    if not connected:
        # A refused consumer still waits for the disconnect; end it cleanly so that
        # no task is left for the event loop's teardown to cancel.
        await communicator.disconnect()
    return communicator, connected, code


async def test_agent_gets_a_snapshot_of_their_state_on_connect(agent):
    await database_sync_to_async(presence.agent_presence_set)(agent_id=agent.pk, status="away")

    socket, connected, _ = await _open(agent)

    assert connected
    snapshot = await socket.receive_json_from()
    assert snapshot["type"] == "agent.snapshot"
    assert snapshot["agent"]["id"] == agent.pk
    assert snapshot["agent"]["presence"] == "away"
    assert snapshot["pending_offers"] == []
    assert snapshot["assigned_tickets"] == []
    assert (
        await database_sync_to_async(
            AgentConnection.objects.filter(agent=agent, closed_at__isnull=True).count
        )()
        == 1
    )
    await socket.disconnect()


async def test_ping_answers_pong_and_marks_the_socket_alive(agent):
    socket, _, _ = await _open(agent)
    await socket.receive_json_from()
    long_ago = timezone.now() - timedelta(minutes=10)
    await database_sync_to_async(AgentConnection.objects.filter(agent=agent).update)(
        last_seen_at=long_ago
    )

    await socket.send_json_to({"type": "ping"})

    assert await socket.receive_json_from() == {"type": "pong"}
    connection = await database_sync_to_async(AgentConnection.objects.get)(agent=agent)
    assert connection.last_seen_at > long_ago
    await socket.disconnect()


async def _forget_membership(agent) -> None:
    """What a Redis restarted without persistence does: the socket's group is gone."""
    row = await database_sync_to_async(AgentConnection.objects.get)(agent=agent)
    await get_channel_layer().group_discard(events.agent_group(agent.pk), row.channel_name)


async def _push_probe(agent) -> None:
    await get_channel_layer().group_send(
        events.agent_group(agent.pk), {"type": "agent.event", "message": {"type": "probe"}}
    )


async def test_a_ping_rejoins_the_group_that_a_restarted_redis_forgot(agent):
    socket, _, _ = await _open(agent)
    await socket.receive_json_from()
    await _forget_membership(agent)

    await socket.send_json_to({"type": "ping"})
    assert await socket.receive_json_from() == {"type": "pong"}
    await _push_probe(agent)

    # Before, the socket stayed open and deaf: every offer after the restart was lost.
    assert await socket.receive_json_from() == {"type": "probe"}
    await socket.disconnect()


async def test_a_resync_rejoins_the_group_too(agent):
    socket, _, _ = await _open(agent)
    await socket.receive_json_from()
    await _forget_membership(agent)

    await socket.send_json_to({"type": "resync"})
    assert (await socket.receive_json_from())["type"] == "agent.snapshot"
    await _push_probe(agent)

    assert await socket.receive_json_from() == {"type": "probe"}
    await socket.disconnect()


async def test_messages_are_handled_without_a_hop_to_close_connections(agent, monkeypatch):
    """Channels would hop to a shared thread before every message (config.realtime)."""
    import channels.consumer

    hops = []

    async def hop():
        hops.append(1)

    monkeypatch.setattr(channels.consumer, "aclose_old_connections", hop)
    socket, _, _ = await _open(agent)
    await socket.receive_json_from()

    await socket.send_json_to({"type": "ping"})

    assert await socket.receive_json_from() == {"type": "pong"}
    await socket.disconnect()
    assert hops == []


async def test_unknown_message_type_gets_an_error_not_a_crash(agent):
    socket, _, _ = await _open(agent)
    await socket.receive_json_from()
    await socket.send_json_to({"type": "dance"})
    assert (await socket.receive_json_from())["error"]["code"] == "unknown_type"
    await socket.disconnect()


@pytest.mark.parametrize("frame", [["ping"], "ping", 7, None])
@pytest.mark.parametrize("path", ["/ws/agent/", "/ws/ping/"])
async def test_a_frame_that_is_not_an_object_is_an_error_and_the_socket_stays_open(
    agent, path, frame
):
    # The liveness socket read .get() of whatever came, and a list dropped it.
    value, _ = await database_sync_to_async(services.realtime_ticket_issue)(user=agent.user)
    socket = WebsocketCommunicator(application, f"{path}?ticket={value}", headers=ORIGIN)
    assert (await socket.connect())[0]
    await socket.receive_json_from()  # the snapshot, or the hello

    await socket.send_json_to(frame)
    answer = await socket.receive_json_from()

    assert answer["type"] == "error"
    assert answer["error"]["code"] == "bad_frame"
    await socket.send_json_to({"type": "ping"})
    assert await socket.receive_json_from() == {"type": "pong"}
    await socket.disconnect()


async def test_a_decline_note_holding_a_nul_is_an_error_and_the_offer_stays_open(agent):
    offer = await database_sync_to_async(offer_to_online)(agent)
    socket, _, _ = await _open(agent)
    await socket.receive_json_from()

    await socket.send_json_to({"type": "offer.decline", "offer_id": offer.pk, "note": "a\x00b"})
    answer = await socket.receive_json_from()

    assert answer["error"]["code"] == "bad_frame"
    await offer.arefresh_from_db()
    assert offer.status == "pending"
    await socket.send_json_to({"type": "ping"})
    assert await socket.receive_json_from() == {"type": "pong"}
    await socket.disconnect()


@pytest.mark.redis("the presence push through channels-redis")
async def test_presence_change_is_pushed_live_over_redis(agent, settings):
    assert "Redis" in settings.CHANNEL_LAYERS["default"]["BACKEND"]
    socket, _, _ = await _open(agent)
    await socket.receive_json_from()

    await database_sync_to_async(presence.agent_presence_set)(agent_id=agent.pk, status="online")

    message = await socket.receive_json_from(timeout=5)
    assert message["type"] == "presence.changed"
    assert message["presence"] == "online"
    await socket.disconnect()


async def test_pushes_reach_only_the_agent_they_are_for(agent, other_agent):
    mine, _, _ = await _open(agent)
    theirs, _, _ = await _open(other_agent)
    await mine.receive_json_from()
    await theirs.receive_json_from()

    await database_sync_to_async(presence.agent_presence_set)(agent_id=agent.pk, status="online")

    assert (await mine.receive_json_from(timeout=5))["type"] == "presence.changed"
    assert await theirs.receive_nothing(timeout=0.3)
    await mine.disconnect()
    await theirs.disconnect()


async def test_reconnect_snapshot_carries_what_changed_while_away(agent):
    socket, _, _ = await _open(agent)
    await socket.receive_json_from()
    await socket.disconnect()

    await database_sync_to_async(presence.agent_presence_set)(agent_id=agent.pk, status="online")
    again, _, _ = await _open(agent)

    assert (await again.receive_json_from())["agent"]["presence"] == "online"
    await again.disconnect()


async def test_disconnect_closes_the_connection_row(agent):
    socket, _, _ = await _open(agent)
    await socket.receive_json_from()
    await socket.disconnect()

    connection = await database_sync_to_async(AgentConnection.objects.get)(agent=agent)
    assert connection.closed_at is not None


async def test_suspension_pushes_offline_and_closes_the_socket(agent, staff):
    await database_sync_to_async(presence.agent_presence_set)(agent_id=agent.pk, status="online")
    socket, _, _ = await _open(agent)
    await socket.receive_json_from()

    await database_sync_to_async(services.agent_suspend)(
        actor=staff, agent_id=agent.pk, reason="Policy breach."
    )

    message = await socket.receive_json_from(timeout=5)
    assert (message["presence"], message["reason"]) == ("offline", "suspended")
    closed = await socket.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": 4403}
    await agent.arefresh_from_db()
    assert agent.presence == Presence.OFFLINE


async def test_customer_is_refused(customer):
    _, connected, code = await _open(customer)
    assert (connected, code) == (False, 4403)


async def test_applicant_is_refused(applicant):
    _, connected, code = await _open(applicant)
    assert (connected, code) == (False, 4403)


async def test_staff_are_refused(staff):
    _, connected, code = await _open(staff)
    assert (connected, code) == (False, 4403)


async def test_anonymous_is_refused():
    _, connected, code = await _open(None, with_ticket=False)
    assert (connected, code) == (False, 4401)


async def test_a_used_ticket_does_not_open_a_second_socket(agent):
    value, _ = await database_sync_to_async(services.realtime_ticket_issue)(user=agent.user)
    first = WebsocketCommunicator(application, f"/ws/agent/?ticket={value}", headers=ORIGIN)
    assert (await first.connect())[0]
    second = WebsocketCommunicator(application, f"/ws/agent/?ticket={value}", headers=ORIGIN)
    assert (await second.connect()) == (False, 4401)
    await first.disconnect()


async def test_a_foreign_origin_is_refused(agent):
    _, connected, _ = await _open(agent, origin=[(b"origin", b"https://evil.example")])
    assert not connected


async def test_the_socket_works_on_the_in_memory_layer_of_the_embedded_default(agent, settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    socket, _, _ = await _open(agent)
    assert (await socket.receive_json_from())["type"] == "agent.snapshot"

    await database_sync_to_async(presence.agent_presence_set)(agent_id=agent.pk, status="online")

    assert (await socket.receive_json_from(timeout=5))["presence"] == "online"
    await socket.disconnect()


@pytest.mark.asyncio
async def test_channels_own_dispatch_only_adds_the_stale_connection_hop(monkeypatch):
    """config.realtime.JsonConsumer.dispatch is Channels' dispatch without the
    hop that closes stale database connections: pinned, so that an upgrade
    that gives Channels' dispatch another duty fails here."""
    import channels.consumer
    from channels.consumer import AsyncConsumer

    from config.realtime import handler_name

    hops, handled = [], []

    async def hop():
        hops.append(1)

    class Probe(AsyncConsumer):
        async def offer_created(self, message):
            handled.append(message["n"])

    monkeypatch.setattr(channels.consumer, "aclose_old_connections", hop)
    await Probe().dispatch({"type": "offer.created", "n": 1})

    assert (hops, handled) == ([1], [1])
    assert handler_name({"type": "offer.created"}) == "offer_created"
    with pytest.raises(ValueError):
        handler_name({"type": "._private"})
