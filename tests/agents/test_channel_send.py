"""Sends from synchronous code: one long-lived loop in workers, the server's loop in the server."""

import threading

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from config import channel_send


@pytest.fixture
def layer(settings):
    layer = get_channel_layer()
    assert type(layer).__module__.startswith("channels_redis"), "the suite runs on Redis"
    return layer


def test_a_worker_thread_sends_on_one_long_lived_loop(layer):
    channel = channel_send.run(layer, layer.new_channel)
    loops, received = [], []

    def worker():
        for n in range(3):
            channel_send.run(layer, layer.send, channel, {"type": "probe", "n": n})
            loops.append(channel_send.sender_loop())

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(10)
    for _ in range(3):
        received.append(channel_send.run(layer, layer.receive, channel)["n"])

    assert received == [0, 1, 2]
    assert len({id(loop) for loop in loops}) == 1
    assert loops[0].is_running()


@pytest.mark.asyncio
async def test_inside_the_server_a_send_uses_the_servers_loop(layer):
    channel = await layer.new_channel()

    def handler():
        # What a view or a socket handler does: synchronous code on a pool thread.
        assert channel_send._server_loop_running()
        channel_send.run(layer, layer.send, channel, {"type": "probe", "n": 7})

    await sync_to_async(handler, thread_sensitive=False)()

    assert (await layer.receive(channel))["n"] == 7
