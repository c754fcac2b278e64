"""What Humanline relies on in channels-redis's publish/subscribe layer, pinned
against the real Redis: an upgrade that changes any of it fails here.

Each server process holds its own layer; a push is a group send from any
process (a web thread, a Celery worker) and reaches every socket of that
group in every process, in the order sent, each as its own copy."""

import asyncio
import uuid

import pytest
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.redis("channels-redis: the publish/subscribe layer the settings configure"),
]


def process() -> RedisPubSubChannelLayer:
    """A layer as one process builds it from the settings."""
    assert settings.CHANNEL_LAYERS["default"]["BACKEND"] == (
        "channels_redis.pubsub.RedisPubSubChannelLayer"
    )
    return RedisPubSubChannelLayer(**settings.CHANNEL_LAYERS["default"]["CONFIG"])


def group() -> str:
    return f"probe.{uuid.uuid4().hex[:12]}"


async def receive(layer, channel: str, timeout: float = 5) -> dict:
    return await asyncio.wait_for(layer.receive(channel), timeout)


async def test_a_group_send_from_another_process_reaches_every_member_in_order():
    sender, server_a, server_b = process(), process(), process()
    agent, other = group(), group()
    ana = await server_a.new_channel()
    ben = await server_b.new_channel()
    cy = await server_b.new_channel()
    await server_a.group_add(agent, ana)
    await server_b.group_add(agent, ben)  # one agent, two tabs on two processes
    await server_b.group_add(other, cy)

    for n in range(1, 4):
        await sender.group_send(agent, {"type": "offer", "n": n})
    await sender.group_send(other, {"type": "offer", "n": 9})
    await sender.group_send(group(), {"type": "offer", "n": 0})  # nobody: no error

    assert [(await receive(server_a, ana))["n"] for _ in range(3)] == [1, 2, 3]
    assert [(await receive(server_b, ben))["n"] for _ in range(3)] == [1, 2, 3]
    assert (await receive(server_b, cy))["n"] == 9
    for layer in (sender, server_a, server_b):
        await layer.flush()


async def test_each_member_gets_its_own_copy():
    sender, server = process(), process()
    name = group()
    one, two = await server.new_channel(), await server.new_channel()
    await server.group_add(name, one)
    await server.group_add(name, two)

    await sender.group_send(name, {"type": "offer", "offer": {"id": 1}})
    first = await receive(server, one)
    first["offer"]["id"] = 2  # what a consumer does to its message

    assert (await receive(server, two))["offer"]["id"] == 1
    for layer in (sender, server):
        await layer.flush()


async def test_a_channel_that_left_its_group_is_sent_nothing_more():
    sender, server = process(), process()
    name = group()
    gone, staying = await server.new_channel(), await server.new_channel()
    await server.group_add(name, gone)
    await server.group_add(name, staying)
    await server.group_discard(name, gone)

    await sender.group_send(name, {"type": "offer", "n": 1})

    assert (await receive(server, staying))["n"] == 1
    with pytest.raises(TimeoutError):
        await receive(server, gone, timeout=0.5)
    for layer in (sender, server):
        await layer.flush()


async def test_a_message_is_not_kept_for_a_group_nobody_has_joined_yet():
    """Publish/subscribe keeps nothing: a socket that joins later reads the
    state from the database (the consumers send a snapshot on connect, and the
    console resyncs), never an old push."""
    sender, server = process(), process()
    name = group()
    await sender.group_send(name, {"type": "offer", "n": 1})
    late = await server.new_channel()
    await server.group_add(name, late)

    await sender.group_send(name, {"type": "offer", "n": 2})

    assert (await receive(server, late))["n"] == 2
    for layer in (sender, server):
        await layer.flush()


async def test_both_redis_clients_read_replies_with_hiredis():
    # hiredis (pyproject.toml): the pure-Python parser costs about a third more
    # CPU per reply, on every push and every message a server process receives.
    # redis-py's public names say which parser its connections default to.
    import redis.asyncio.connection
    import redis.connection
    import redis.utils

    assert redis.utils.HIREDIS_AVAILABLE
    assert "Hiredis" in redis.connection.DefaultParser.__name__  # the cache's
    assert "Hiredis" in redis.asyncio.connection.DefaultParser.__name__  # the layer's
