"""Sends from synchronous code: one long-lived loop in workers, the server's loop in the server."""

import asyncio

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async

from config import channel_send

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.redis("sends on channels-redis from synchronous code (config.channel_send)"),
]


def on_the_server() -> asyncio.AbstractEventLoop:
    """This test's task is a connection of the server on its loop, as
    ``channel_send.serving`` makes every connection of config.asgi."""
    loop = asyncio.get_running_loop()
    channel_send.SERVER_LOOP.set(loop)
    return loop


@pytest_asyncio.fixture
async def receiver(settings):
    """A socket's end of the layer, as another server process holds it."""
    from channels_redis.pubsub import RedisPubSubChannelLayer

    layer = RedisPubSubChannelLayer(**settings.CHANNEL_LAYERS["default"]["CONFIG"])
    assert channel_send._is_redis(layer), "the suite runs on Redis"
    yield layer
    await layer.flush()


async def member(receiver, group: str) -> str:
    channel = await receiver.new_channel()
    await receiver.group_add(group, channel)
    return channel


async def received(receiver, channel: str, count: int = 1) -> list:
    return [(await asyncio.wait_for(receiver.receive(channel), 10))["n"] for _ in range(count)]


def in_a_thread(function, *args):
    """Run synchronous code on a thread of its own while this loop goes on."""
    return sync_to_async(function, thread_sensitive=False)(*args)


async def test_a_worker_thread_sends_on_one_long_lived_loop_of_its_own(receiver):
    channel = await member(receiver, "probe-worker")
    senders = []

    def worker():
        for n in range(3):
            channel_send.group_send_many([("probe-worker", {"type": "probe", "n": n})])
            senders.append(channel_send.sender())

    await in_a_thread(worker)

    assert await received(receiver, channel, 3) == [0, 1, 2]
    assert len({id(loop) for loop, _ in senders}) == 1  # one loop for every send
    loop, layer = senders[0]
    assert loop.is_running()
    assert channel_send._is_redis(layer)  # the process's Redis layer, on a loop of its own


async def test_inside_the_server_a_send_uses_the_servers_loop(receiver):
    channel = await member(receiver, "probe-server")

    def handler():
        # What a view or a socket handler does: synchronous code on a pool thread.
        assert channel_send._server_loop() is server
        channel_send.group_send_many([("probe-server", {"type": "probe", "n": 7})])

    server = on_the_server()
    await in_a_thread(handler)

    assert await received(receiver, channel) == [7]


@pytest.fixture
def sends(monkeypatch):
    """Every send of a batch of pushes, recorded as the numbers it carries."""
    real = channel_send._send_all
    calls = []

    async def recorded(layer, items):
        calls.append([message["n"] for _, message in items])
        await real(layer, items)

    monkeypatch.setattr(channel_send, "_send_all", recorded)
    return calls


async def test_sends_inside_a_batch_go_as_one_at_its_end_in_order(receiver, sends):
    channel = await member(receiver, "probe-batch")
    before_the_end = []

    def worker():
        with channel_send.batched():
            channel_send.group_send_many([("probe-batch", {"type": "probe", "n": 1})])
            with channel_send.batched():  # a nested block joins the outer one
                channel_send.group_send_many([("probe-batch", {"type": "probe", "n": 2})])
            before_the_end.extend(sends)
            channel_send.group_send_many([("probe-batch", {"type": "probe", "n": 3})])

    await in_a_thread(worker)

    assert await received(receiver, channel, 3) == [1, 2, 3]
    assert before_the_end == []  # nothing sent before the block ended
    assert sends == [[1, 2, 3]]  # then one send for the three


async def test_what_a_failing_batch_held_is_still_sent(receiver):
    channel = await member(receiver, "probe-batch-failing")

    def worker():
        with pytest.raises(RuntimeError), channel_send.batched():
            channel_send.group_send_many([("probe-batch-failing", {"type": "probe", "n": 1})])
            raise RuntimeError("a later step of the event failed")

    await in_a_thread(worker)

    assert await received(receiver, channel) == [1]


# --- the server's outbox -------------------------------------------------------


async def _until(condition, timeout: float = 10) -> None:
    """Let the loop turn until ``condition()`` holds; fail after ``timeout`` seconds."""

    async def turns():
        while not condition():
            await asyncio.sleep(0)  # one turn of the loop, no time

    await asyncio.wait_for(turns(), timeout)


@pytest.fixture
def held(monkeypatch):
    """The outbox's sends, recorded; each waits until the test releases it."""
    real = channel_send._send_all
    state = {"calls": [], "release": None}

    async def held_send(layer, items):
        state["calls"].append([message["n"] for _, message in items])
        await state["release"].wait()
        await real(layer, items)

    monkeypatch.setattr(channel_send, "_send_all", held_send)
    return state


async def test_a_server_thread_hands_its_pushes_over_and_goes_on(held, receiver):
    on_the_server()
    held["release"] = asyncio.Event()
    channel = await member(receiver, "probe-outbox")

    def handler():
        channel_send.group_send_many([("probe-outbox", {"type": "probe", "n": 1})])
        return "returned"

    # Had the thread waited for its send, this would time out: the send is
    # held until the handler has returned.
    assert await asyncio.wait_for(in_a_thread(handler), 5) == "returned"
    held["release"].set()

    assert await received(receiver, channel) == [1]


async def test_pushes_handed_over_during_a_send_go_together_next_in_order(held, receiver):
    on_the_server()
    held["release"] = asyncio.Event()
    channel = await member(receiver, "probe-outbox-order")

    def push(n):
        channel_send.group_send_many([("probe-outbox-order", {"type": "probe", "n": n})])

    await in_a_thread(push, 1)
    await _until(lambda: held["calls"])  # the first send has started, and is held
    for n in (2, 3, 4):  # from three threads, one after another
        await in_a_thread(push, n)
    held["release"].set()

    assert await received(receiver, channel, 4) == [1, 2, 3, 4]
    assert held["calls"] == [[1], [2, 3, 4]]


async def test_a_failed_send_is_logged_and_the_next_pushes_still_go(receiver, monkeypatch, caplog):
    on_the_server()
    real = channel_send._send_all
    failures = [RuntimeError("Redis went away")]

    async def flaky(layer, items):
        if failures:
            raise failures.pop()
        await real(layer, items)

    monkeypatch.setattr(channel_send, "_send_all", flaky)
    channel = await member(receiver, "probe-outbox-failing")

    def push(n):
        channel_send.group_send_many([("probe-outbox-failing", {"type": "probe", "n": n})])

    await in_a_thread(push, 1)
    await _until(lambda: not failures)  # the first send was tried, and failed
    await in_a_thread(push, 2)

    assert await received(receiver, channel) == [2]
    assert "sending 1 pushes failed" in caplog.text


async def test_one_push_that_cannot_be_sent_does_not_stop_the_others(receiver, caplog):
    channel = await member(receiver, "probe-unsendable")
    unsendable = {"type": "probe", "n": 0, "lock": asyncio.Lock()}  # no serializer takes it

    def worker():
        channel_send.group_send_many(
            [("probe-unsendable", unsendable), ("probe-unsendable", {"type": "probe", "n": 1})]
        )

    await in_a_thread(worker)

    assert await received(receiver, channel) == [1]
    assert "1 of 2 pushes failed" in caplog.text
