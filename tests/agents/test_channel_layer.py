"""The batching Redis channel layer (config.channel_layer) against the real Redis:
many group messages in one batch reach exactly their groups' members, in order,
under each channel's capacity, and the stock channels-redis layer reads them."""

import asyncio

import pytest
from channels.layers import channel_layers
from channels_redis.core import RedisChannelLayer
from django.conf import settings

from config.channel_layer import SCRIPT_KEYS, BatchingRedisChannelLayer

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.redis("channels-redis: the batching layer (config.channel_layer)"),
]


def _config() -> dict:
    return settings.CHANNEL_LAYERS["default"]["CONFIG"]


def _layer(**config) -> BatchingRedisChannelLayer:
    return BatchingRedisChannelLayer(**{**_config(), "prefix": "hl-test-batch", **config})


async def test_a_batch_reaches_every_member_of_each_group_in_order():
    layer = _layer()
    await layer.flush()
    ana, ben, cy = [await layer.new_channel() for _ in range(3)]
    await layer.group_add("agent.1", ana)
    await layer.group_add("agent.1", ben)
    await layer.group_add("agent.2", cy)

    over = await layer.group_send_many(
        [
            ("agent.1", {"type": "offer", "n": 1}),
            ("agent.2", {"type": "offer", "n": 2}),
            ("agent.1", {"type": "offer", "n": 3}),
            ("nobody.here", {"type": "offer", "n": 4}),
        ]
    )

    assert over == 0
    assert [(await layer.receive(ana))["n"] for _ in range(2)] == [1, 3]
    assert [(await layer.receive(ben))["n"] for _ in range(2)] == [1, 3]
    assert (await layer.receive(cy))["n"] == 2
    await layer.flush()


async def test_the_stock_layer_receives_what_the_batch_sent():
    sender, receiver = (
        _layer(),
        RedisChannelLayer(
            **{**settings.CHANNEL_LAYERS["default"]["CONFIG"], "prefix": "hl-test-batch"}
        ),
    )
    await sender.flush()
    channel = await receiver.new_channel()
    await receiver.group_add("ticket.9", channel)

    await sender.group_send("ticket.9", {"type": "ticket.event", "event": {"status": "offered"}})

    assert (await receiver.receive(channel))["event"] == {"status": "offered"}
    await sender.flush()


async def test_a_full_channel_drops_the_excess_and_says_how_many():
    layer = _layer(capacity=2)
    await layer.flush()
    channel = await layer.new_channel()
    await layer.group_add("agent.3", channel)

    over = await layer.group_send_many([("agent.3", {"type": "t", "n": n}) for n in range(5)])

    assert over == 3
    assert [(await layer.receive(channel))["n"] for _ in range(2)] == [0, 1]
    await layer.flush()


async def test_one_process_inbox_takes_a_push_to_each_of_hundreds_of_sockets():
    # Every socket of a server process shares one Redis inbox; at the stock
    # capacity (100) a dispatch pass to 300 agents would lose 200 offers.
    layer = _layer()
    await layer.flush()
    sockets = [await layer.new_channel() for _ in range(300)]
    for n, channel in enumerate(sockets):
        await layer.group_add(f"agent.{n}", channel)

    over = await layer.group_send_many(
        [(f"agent.{n}", {"type": "offer", "n": n}) for n in range(len(sockets))]
    )

    assert over == 0
    assert [(await layer.receive(channel))["n"] for channel in sockets] == list(range(300))
    await layer.flush()


async def test_a_batch_larger_than_one_script_call_arrives_whole():
    layer = _layer()
    await layer.flush()
    # Named channels, a Redis key each (a process's "!" channels share one key,
    # whose capacity a batch this size would exceed).
    channels = [f"probe.batch{n}" for n in range(SCRIPT_KEYS + 20)]
    for n, channel in enumerate(channels):
        await layer.group_add(f"agent.{n}", channel)

    await layer.group_send_many(
        [(f"agent.{n}", {"type": "t", "n": n}) for n in range(len(channels))]
    )

    assert [(await layer.receive(c))["n"] for c in channels] == list(range(len(channels)))
    await layer.flush()


async def test_every_socket_of_a_process_receives_its_own_messages_in_order():
    # As consumers do: every socket of the process waits on receive() at once,
    # and one inbox reader hands each its messages (sent by the stock layer).
    layer, stock = _layer(), RedisChannelLayer(**{**_config(), "prefix": "hl-test-batch"})
    await layer.flush()
    sockets = [await layer.new_channel() for _ in range(60)]

    async def two(channel):
        return [(await layer.receive(channel))["n"] for _ in range(2)]

    waiting = [asyncio.ensure_future(two(channel)) for channel in sockets]
    for round_ in range(2):
        for n, channel in enumerate(sockets):
            await stock.send(channel, {"type": "t", "n": 100 * round_ + n})

    received = await asyncio.wait_for(asyncio.gather(*waiting), timeout=10)

    assert received == [[n, 100 + n] for n in range(len(sockets))]
    assert not layer.receive_buffer  # nothing left behind once delivered
    await stock.close_pools()
    await layer.flush()


async def test_a_socket_that_stops_receiving_does_not_hold_up_the_others():
    layer = _layer()
    await layer.flush()
    gone, staying = await layer.new_channel(), await layer.new_channel()
    abandoned = asyncio.ensure_future(layer.receive(gone))
    kept = asyncio.ensure_future(layer.receive(staying))
    await layer.group_add("ticket.5", staying)  # meanwhile both start waiting on the inbox
    assert layer._inbox_waiting == 2
    abandoned.cancel()

    await layer.group_send("ticket.5", {"type": "ticket.event", "n": 5})

    assert (await asyncio.wait_for(kept, timeout=10))["n"] == 5
    assert abandoned.cancelled()
    assert gone not in layer.receive_buffer
    await layer.flush()


async def test_the_inbox_reader_stops_once_its_last_socket_has_its_message():
    layer = _layer()
    await layer.flush()
    socket = await layer.new_channel()
    await layer.group_add("ticket.6", socket)
    await layer.group_send("ticket.6", {"type": "ticket.event", "n": 6})

    assert (await asyncio.wait_for(layer.receive(socket), timeout=10))["n"] == 6
    for _ in range(5):  # a few turns of the loop, no time: it must not wait on Redis
        await asyncio.sleep(0)
    # Had it looked before the socket stopped waiting, it would sit in a
    # blocking pop for nobody (5 s), holding up a server's shutdown.
    assert layer._inbox_reader.done()
    await layer.flush()


async def test_an_unreadable_message_in_the_inbox_does_not_stop_the_sockets():
    layer = _layer()
    await layer.flush()
    socket = await layer.new_channel()
    waiting = asyncio.ensure_future(layer.receive(socket))
    inbox = layer.prefix + layer.non_local_name(socket)
    redis = layer.connection(layer.consistent_hash(layer.non_local_name(socket)))
    # Written by something else: no channel name inside.
    await redis.zadd(inbox, {layer.serialize({"type": "stray"}): 1.0})
    await layer.send(socket, {"type": "t", "n": 1})

    assert (await asyncio.wait_for(waiting, timeout=10))["n"] == 1
    await layer.flush()


async def _receiving_here(layer) -> None:
    """Make ``layer`` a process whose sockets receive on this loop, then stop its
    inbox reader: from now on only a delivery here can reach its queues."""
    idle = asyncio.ensure_future(layer.receive(await layer.new_channel()))
    await asyncio.sleep(0)  # let receive() start
    idle.cancel()
    reader = layer._inbox_reader
    reader.cancel()
    await asyncio.gather(idle, reader, return_exceptions=True)


async def _in_redis(layer, channel) -> int:
    inbox = layer.non_local_name(channel)
    return await layer.connection(layer.consistent_hash(inbox)).zcard(layer.prefix + inbox)


async def test_a_group_message_for_a_socket_of_this_process_skips_redis():
    here, elsewhere = _layer(), _layer()  # two server processes
    await here.flush()
    await _receiving_here(here)
    mine, mine_too, theirs = (
        await here.new_channel(),
        await here.new_channel(),
        await elsewhere.new_channel(),
    )
    for channel in (mine, mine_too, theirs):
        await here.group_add("agent.7", channel)

    over = await here.group_send_many([("agent.7", {"type": "offer", "pay": {"amount": "4.00"}})])

    assert over == 0
    first, second = (here.receive_buffer[c].get_nowait() for c in (mine, mine_too))
    assert first == second == {"type": "offer", "pay": {"amount": "4.00"}}
    assert first is not second and first["pay"] is not second["pay"]  # each its own copy
    assert await _in_redis(here, mine) == 0  # never went through Redis
    assert await _in_redis(elsewhere, theirs) == 1  # the other process's, through Redis
    assert (await elsewhere.receive(theirs))["pay"] == {"amount": "4.00"}
    await here.flush()


async def test_a_full_socket_of_this_process_refuses_the_new_message():
    layer = _layer(capacity=2)
    await layer.flush()
    await _receiving_here(layer)
    channel = await layer.new_channel()
    await layer.group_add("agent.8", channel)

    over = await layer.group_send_many([("agent.8", {"type": "t", "n": n}) for n in range(5)])

    assert over == 3
    assert [layer.receive_buffer[channel].get_nowait()["n"] for _ in range(2)] == [0, 1]
    await layer.flush()


async def test_the_platform_runs_the_batching_layer_on_redis():
    channel_layers.backends.clear()
    assert isinstance(channel_layers["default"], BatchingRedisChannelLayer)


async def test_redis_replies_are_read_by_the_c_parser():
    # hiredis (pyproject.toml): the pure-Python parser cost about a third more CPU
    # per round trip, on every push and every read of the sockets' inbox.
    # redis-py's public names say which parser its connections default to.
    import redis.asyncio.connection
    import redis.connection
    import redis.utils

    assert redis.utils.HIREDIS_AVAILABLE
    assert "Hiredis" in redis.connection.DefaultParser.__name__  # the cache's
    assert "Hiredis" in redis.asyncio.connection.DefaultParser.__name__  # the layer's
