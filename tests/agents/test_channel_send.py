"""Sends from synchronous code: one long-lived loop in workers, the server's loop in the server."""

import asyncio
import threading

import pytest
import pytest_asyncio
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers, get_channel_layer

from config import channel_send

pytestmark = pytest.mark.redis(
    "sends on channels-redis from synchronous code (config.channel_send)"
)


def on_the_server() -> asyncio.AbstractEventLoop:
    """This test's task is a connection of the server on its loop, as
    ``channel_send.serving`` makes every connection of config.asgi."""
    loop = asyncio.get_running_loop()
    channel_send.SERVER_LOOP.set(loop)
    return loop


@pytest.fixture
def layer():
    layer = get_channel_layer()
    assert channel_send._is_redis(layer), "the suite runs on Redis"
    return layer


def test_a_worker_thread_sends_on_one_long_lived_loop_of_its_own(layer):
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("probe-worker", channel)
    senders = []

    def worker():
        for n in range(3):
            channel_send.group_send_many([("probe-worker", {"type": "probe", "n": n})])
            senders.append(channel_send.sender())

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(10)

    async def receive_three():
        return [(await layer.receive(channel))["n"] for _ in range(3)]

    received = async_to_sync(receive_three)()

    assert received == [0, 1, 2]
    assert len({id(loop) for loop, _ in senders}) == 1  # one loop for every send
    loop, own_layer = senders[0]
    assert loop.is_running()
    assert own_layer is not layer  # the shared instance's pools are left alone


@pytest.mark.asyncio
async def test_inside_the_server_a_send_uses_the_servers_loop(layer):
    channel = await layer.new_channel()
    await layer.group_add("probe-server", channel)

    def handler():
        # What a view or a socket handler does: synchronous code on a pool thread.
        assert channel_send._server_loop() is server
        channel_send.group_send_many([("probe-server", {"type": "probe", "n": 7})])

    server = on_the_server()
    await sync_to_async(handler, thread_sensitive=False)()

    assert (await layer.receive(channel))["n"] == 7


def test_sends_inside_a_batch_go_as_one_at_its_end_in_order(layer, monkeypatch):
    from config.channel_layer import BatchingRedisChannelLayer

    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("probe-batch", channel)
    calls = []
    real = BatchingRedisChannelLayer.group_send_many

    async def counted(self, items):
        calls.append(len(items))
        return await real(self, items)

    monkeypatch.setattr(BatchingRedisChannelLayer, "group_send_many", counted)
    before_the_end = []

    def worker():
        with channel_send.batched():
            channel_send.group_send_many([("probe-batch", {"type": "probe", "n": 1})])
            with channel_send.batched():  # a nested block joins the outer one
                channel_send.group_send_many([("probe-batch", {"type": "probe", "n": 2})])
            before_the_end.extend(calls)
            channel_send.group_send_many([("probe-batch", {"type": "probe", "n": 3})])

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(10)

    async def receive_three():
        return [(await layer.receive(channel))["n"] for _ in range(3)]

    assert async_to_sync(receive_three)() == [1, 2, 3]
    assert before_the_end == []  # nothing sent before the block ended
    assert calls == [3]  # then one send for the three


def test_what_a_failing_batch_held_is_still_sent(layer):
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("probe-batch-failing", channel)

    def worker():
        with pytest.raises(RuntimeError), channel_send.batched():
            channel_send.group_send_many([("probe-batch-failing", {"type": "probe", "n": 1})])
            raise RuntimeError("a later step of the event failed")

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(10)

    async def receive_one():
        return (await asyncio.wait_for(layer.receive(channel), 8))["n"]

    assert async_to_sync(receive_one)() == 1


# --- the server's outbox -------------------------------------------------------


async def _until(condition, timeout: float = 10) -> None:
    """Let the loop turn until ``condition()`` holds; fail after ``timeout`` seconds."""

    async def turns():
        while not condition():
            await asyncio.sleep(0)  # one turn of the loop, no time

    await asyncio.wait_for(turns(), timeout)


@pytest_asyncio.fixture
async def receiver():
    """Receives through Redis, as another server process does.

    A socket of this process would be handed the push directly, leaving the
    shared layer's inbox reader in a blocking pop that delays the loop's end.
    """
    receiver = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
    yield receiver
    await receiver.close_pools()


@pytest.fixture
def held_sends(layer, monkeypatch):
    """The batching layer's sends, recorded; each waits until the test releases it."""
    from config.channel_layer import BatchingRedisChannelLayer

    real = BatchingRedisChannelLayer.group_send_many
    sends = {"calls": [], "release": None}

    async def held(self, items):
        sends["calls"].append([message["n"] for _, message in items])
        await sends["release"].wait()
        return await real(self, items)

    monkeypatch.setattr(BatchingRedisChannelLayer, "group_send_many", held)
    return sends


@pytest.mark.asyncio
async def test_a_server_thread_hands_its_pushes_over_and_goes_on(held_sends, receiver):
    on_the_server()
    held_sends["release"] = asyncio.Event()
    channel = await receiver.new_channel()
    await receiver.group_add("probe-outbox", channel)

    def handler():
        channel_send.group_send_many([("probe-outbox", {"type": "probe", "n": 1})])
        return "returned"

    # Had the thread waited for its send, this would time out: the send is
    # held until the handler has returned.
    assert await asyncio.wait_for(sync_to_async(handler, thread_sensitive=False)(), 5) == "returned"
    held_sends["release"].set()

    assert (await asyncio.wait_for(receiver.receive(channel), 10))["n"] == 1


@pytest.mark.asyncio
async def test_pushes_handed_over_during_a_send_go_together_next_in_order(held_sends, receiver):
    on_the_server()
    held_sends["release"] = asyncio.Event()
    channel = await receiver.new_channel()
    await receiver.group_add("probe-outbox-order", channel)

    def push(n):
        channel_send.group_send_many([("probe-outbox-order", {"type": "probe", "n": n})])

    await sync_to_async(push, thread_sensitive=False)(1)
    await _until(lambda: held_sends["calls"])  # the first send has started, and is held
    for n in (2, 3, 4):  # from three threads, one after another
        await sync_to_async(push, thread_sensitive=False)(n)
    held_sends["release"].set()

    received = [(await asyncio.wait_for(receiver.receive(channel), 10))["n"] for _ in range(4)]
    assert received == [1, 2, 3, 4]
    assert held_sends["calls"] == [[1], [2, 3, 4]]


@pytest.mark.asyncio
async def test_a_failed_send_is_logged_and_the_next_pushes_still_go(receiver, monkeypatch, caplog):
    on_the_server()
    from config.channel_layer import BatchingRedisChannelLayer

    real = BatchingRedisChannelLayer.group_send_many
    failures = [RuntimeError("Redis went away")]

    async def flaky(self, items):
        if failures:
            raise failures.pop()
        return await real(self, items)

    monkeypatch.setattr(BatchingRedisChannelLayer, "group_send_many", flaky)
    channel = await receiver.new_channel()
    await receiver.group_add("probe-outbox-failing", channel)

    def push(n):
        channel_send.group_send_many([("probe-outbox-failing", {"type": "probe", "n": n})])

    await sync_to_async(push, thread_sensitive=False)(1)
    await _until(lambda: not failures)  # the first send was tried, and failed
    await sync_to_async(push, thread_sensitive=False)(2)

    assert (await asyncio.wait_for(receiver.receive(channel), 10))["n"] == 2
    assert "sending 1 pushes failed" in caplog.text
