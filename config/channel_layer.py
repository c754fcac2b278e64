"""The Redis channel layer, with group sends batched.

channels-redis sends a group message in four round trips to Redis: drop
expired members, read the members, drop each member's expired messages, then
a script that adds the message under each member's capacity.  A dispatch pass
pushes hundreds of messages (an offer to each agent, a status to each ticket),
and one accepted offer pushes three: the round trips, not Redis, were most of
the sender's time (docs/architecture.md, "Dispatch performance").

``group_send_many`` sends any number of group messages in two round trips per
Redis host: one script call drops expired members and reads every group's
members, one script call per 500 channel keys (pipelined when there are
several) drops expired messages and adds the new ones under capacity.  (A
pipeline of the four commands per group cost redis-py twice the Python of
one script call.)  The stored data is exactly what channels-redis writes and reads
(its own key names and serializer), so a process running the stock layer
interoperates.  ``group_send`` is a batch of one.

Receiving on a process's own channels (every WebSocket consumer's) goes
through one inbox reader per process.  channels-redis receives one message per
four round trips (a clean-up script, a blocking pop, a backup copy, its
removal), in turn, with every consumer of the process racing for one lock per
message: under load, a server process with a hundred agents drained its inbox
more slowly than dispatch filled it, and offers reached agents seconds late.
The reader takes everything waiting, up to ``INBOX_BATCH`` messages, in one
round trip (a blocking pop and a pop of the rest, pipelined) and hands each to
its consumer's queue.  A message the reader popped is lost if the process dies
before the consumer sends it on, as it is with channels-redis once its backup
copy is cleaned; clients resync from the database on reconnect.

A group message for a socket of this very process (its channel carries the
process's prefix) is handed to that socket's queue at once, without the trip
through Redis and back: an accepted offer's ``ticket.assigned`` goes to the
agent whose socket sent the accept, and half the offers of two server
processes are for their own sockets.  Only on the loop the sockets receive on, as a copy (through
the same serializer) per socket, and under the same capacity: a full socket
refuses the new message, as Redis does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict

from channels_redis.core import RedisChannelLayer
from redis.exceptions import RedisError

# Per channel key: drop messages past expiry, then add the message unless the
# channel is at capacity.  KEYS: channel keys; ARGV: the messages, their
# channels' capacities, their scores, then now and the expiry.  Returns how
# many were over capacity.
SEND_SCRIPT = """
local n = #KEYS
local now = tonumber(ARGV[3 * n + 1])
local expiry = tonumber(ARGV[3 * n + 2])
local over = 0
for i = 1, n do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, math.floor(now) - expiry)
    if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[n + i]) then
        redis.call('ZADD', KEYS[i], ARGV[2 * n + i], ARGV[i])
        redis.call('EXPIRE', KEYS[i], expiry)
    else
        over = over + 1
    end
end
return over
"""

# Per group key: drop members past the group expiry, then read the rest.
# KEYS: group keys; ARGV: the cutoff.  Returns each group's members.
MEMBERS_SCRIPT = """
local members = {}
for i = 1, #KEYS do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, ARGV[1])
    members[i] = redis.call('ZRANGE', KEYS[i], 0, -1)
end
return members
"""

# A channel's messages are read in score order; the messages of one batch get
# scores a microsecond apart, so two for the same channel keep their order.
STEP = 1e-6

SCRIPT_KEYS = 500  # channel keys per script call
INBOX_BATCH = 500  # messages the inbox reader takes per round trip

logger = logging.getLogger(__name__)


class BatchingRedisChannelLayer(RedisChannelLayer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._inbox_reader: asyncio.Task | None = None
        self._inbox_waiting = 0  # receive() calls on this process's channels, pending
        self._receive_loop: asyncio.AbstractEventLoop | None = None  # where sockets receive

    async def receive(self, channel):
        if "!" not in channel:
            return await super().receive(channel)
        assert self.require_valid_channel_name(channel), "Channel name not valid"
        inbox = self.non_local_name(channel)
        assert inbox.endswith(self.client_prefix + "!"), "Wrong client prefix"
        queue = self.receive_buffer[channel]
        self._receive_loop = asyncio.get_running_loop()
        self._inbox_waiting += 1
        try:
            self._inbox_start(inbox)
            return await queue.get()
        finally:
            self._inbox_waiting -= 1
            # No await since get() returned: the reader cannot have added to it.
            if queue.empty() and self.receive_buffer.get(channel) is queue:
                del self.receive_buffer[channel]

    def _inbox_start(self, inbox: str) -> None:
        reader = self._inbox_reader
        if reader is None or reader.done() or reader.get_loop() is not asyncio.get_running_loop():
            self._inbox_reader = asyncio.get_running_loop().create_task(self._inbox_read(inbox))

    async def _inbox_read(self, inbox: str) -> None:
        """Move the process's messages from Redis to its consumers' queues while any wait."""
        key = self.prefix + inbox
        connection = self.connection(self.consistent_hash(inbox))
        failures = 0
        while self._inbox_waiting:
            pipe = connection.pipeline(transaction=False)
            pipe.bzpopmin(key, timeout=self.brpop_timeout)
            pipe.zpopmin(key, INBOX_BATCH - 1)
            try:
                first, rest = await pipe.execute()
            except (OSError, RedisError) as exc:
                # Redis went away: keep the consumers waiting and try again,
                # backing off up to a second between attempts.
                failures += 1
                logger.warning("channel layer inbox read failed (%s); retrying", exc)
                await asyncio.sleep(min(0.05 * 2**failures, 1.0))
                continue
            failures = 0
            contents = ([first[1]] if first else []) + [member for member, _ in rest]
            for content in contents:
                try:
                    message = self.deserialize(content)
                    channels = message.pop("__asgi_channel__")
                except Exception:
                    # One unreadable message must not stop the process's sockets.
                    logger.exception("channel layer inbox: skipped an unreadable message")
                    continue
                for channel in channels if isinstance(channels, list) else [channels]:
                    self.receive_buffer[channel].put_nowait(message)
            if contents:
                # Let the consumers just handed a message run first: those that
                # stop waiting are not counted when the loop looks again, so
                # the reader does not start a blocking pop for nobody.
                await asyncio.sleep(0)

    async def close_pools(self):
        reader, self._inbox_reader = self._inbox_reader, None
        if reader is not None and not reader.done():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        await super().close_pools()

    async def group_send(self, group, message):
        await self.group_send_many([(group, message)])

    async def group_send_many(self, items: list[tuple[str, dict]]) -> int:
        """Send each ``(group, message)``; returns how many deliveries hit a full channel."""
        members = await self._members([group for group, _ in items])
        per_connection: dict[int, list[tuple[bytes, bytes, int]]] = defaultdict(list)
        over = 0
        here = self._receive_loop is not None and asyncio.get_running_loop() is self._receive_loop
        for (_, message), channels in zip(items, members, strict=True):
            if here and channels:
                channels, refused = self._deliver_here(channels, message)
                over += refused
            if not channels:
                continue
            by_connection, messages, capacities = self._map_channel_keys_to_connection(
                channels, message
            )
            for index, keys in by_connection.items():
                per_connection[index].extend((key, messages[key], capacities[key]) for key in keys)
        now = time.time()
        for index, sends in per_connection.items():
            calls = [
                (
                    SEND_SCRIPT,
                    len(chunk),
                    *(key for key, _, _ in chunk),
                    *(body for _, body, _ in chunk),
                    *(capacity for _, _, capacity in chunk),
                    *(repr(now + (start + n) * STEP) for n in range(len(chunk))),
                    now,
                    int(self.expiry),
                )
                for start in range(0, len(sends), SCRIPT_KEYS)
                for chunk in [sends[start : start + SCRIPT_KEYS]]
            ]
            over += sum(await _evals(self.connection(index), calls))
        if over:
            # The client resyncs from the database, but an offer it never saw
            # waits out its window: say so, a full inbox is a setting to raise.
            logger.warning("channel layer dropped %d message(s): inbox at capacity", over)
        return over

    def _deliver_here(self, channels: list[str], message: dict) -> tuple[list[str], int]:
        """Queue ``message`` for this process's own channels; (the others, how many refused)."""
        mine = "." + self.client_prefix
        others, body, refused = [], None, 0
        for channel in channels:
            if not channel.partition("!")[0].endswith(mine):
                others.append(channel)
                continue
            queue = self.receive_buffer[channel]
            if queue.full():
                refused += 1
                continue
            body = body or self.serialize(message)
            queue.put_nowait(self.deserialize(body))  # a copy of its own, as from Redis
        return others, refused

    async def _members(self, groups: list[str]) -> list[list[str]]:
        """Every group's live members, expired ones dropped first: one script call per host."""
        cutoff = int(time.time()) - self.group_expiry
        by_connection: dict[int, list[int]] = defaultdict(list)
        for position, group in enumerate(groups):
            assert self.require_valid_group_name(group), "Group name not valid"
            by_connection[self.consistent_hash(group)].append(position)
        members: list[list[str]] = [[] for _ in groups]
        for index, positions in by_connection.items():
            keys = [self._group_key(groups[position]) for position in positions]
            replies = await self.connection(index).eval(MEMBERS_SCRIPT, len(keys), *keys, cutoff)
            for position, names in zip(positions, replies, strict=True):
                members[position] = [name.decode("utf8") for name in names]
        return members


async def _evals(connection, calls: list[tuple]) -> list:
    """Run script calls on one connection: one alone, several in a pipeline.

    A call costs redis-py far less alone than in a pipeline of one.
    """
    if len(calls) == 1:
        return [await connection.eval(*calls[0])]
    pipe = connection.pipeline(transaction=False)
    for call in calls:
        pipe.eval(*call)
    return await pipe.execute()
