"""WebSocket consumers for people.  Transport only: authenticate, forward, never write."""

from channels.db import database_sync_to_async
from django.utils.translation import gettext as _

from agents import events, presence, selectors
from config import params
from config.realtime import JsonConsumer


class PingConsumer(JsonConsumer):
    """A liveness socket for signed-in users: answers ``ping`` with ``pong``.

    It exercises the whole WebSocket stack (origin check, session or one-time
    ticket authentication) that the agent and ticket sockets build on.
    """

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        await self.accept()
        await self.send_json({"type": "hello", "user": user.email})

    async def receive_json(self, content, **kwargs):
        if content.get("type") == "ping":
            await self.send_json({"type": "pong"})
        else:
            await self.send_json(_error("unknown_type", _("Unknown type.")))


class AgentConsumer(JsonConsumer):
    """``/ws/agent/``: an approved agent's live channel (presence now; offers and assignments next).

    On connect it joins the agent's group *before* building the snapshot, so an
    event raised in between is delivered rather than lost; the snapshot then
    gives the client the whole state, which is how a reconnect catches up on
    whatever Redis dropped.  Pings keep the connection row fresh so that the
    presence sweeper can tell a quiet agent from a vanished one.
    """

    group: str | None = None

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        agent = await database_sync_to_async(selectors.agent_for_socket)(user=user)
        if agent is None:
            await self.close(code=4403)
            return
        self.agent_id = agent.pk
        self.group = events.agent_group(agent.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await database_sync_to_async(presence.agent_connection_open)(
            agent_id=agent.pk, channel_name=self.channel_name
        )
        snapshot = await database_sync_to_async(selectors.agent_snapshot)(agent_id=agent.pk)
        await self.send_json(snapshot)

    async def receive_json(self, content, **kwargs):
        kind = content.get("type")  # an object: config.realtime refuses any other frame
        if kind == "ping":
            await self.rejoin(self.group)
            await database_sync_to_async(presence.agent_connection_seen)(
                channel_name=self.channel_name
            )
            await self.send_json({"type": "pong"})
        elif kind in ("offer.accept", "offer.decline"):
            await self.send_json(await self._answer_offer(kind, content))
        elif kind == "offer.seen":
            problem = await self._acknowledge_offer(content)
            if problem is not None:
                await self.send_json(problem)
        elif kind == "resync":
            await self.rejoin(self.group)
            snapshot = await database_sync_to_async(selectors.agent_snapshot)(
                agent_id=self.agent_id
            )
            await self.send_json(snapshot)
        else:
            await self.send_json(_error("unknown_type", _("Unknown type.")))

    async def _answer_offer(self, kind: str, content: dict) -> dict:
        """Answer an offer through the same services as the HTTP API."""
        from config.errors import DomainError
        from marketplace.models import Offer
        from marketplace.services import dispatch

        offer_id = content.get("offer_id")
        if not _is_id(offer_id):
            return _error("invalid", _("Give the offer_id as an integer."), offer_id=offer_id)
        answer = {"offer_id": offer_id, "user": self.scope["user"]}
        if kind == "offer.accept":
            action = dispatch.offer_accept
        else:
            action = dispatch.offer_decline
            reason, note = content.get("reason") or "", content.get("note") or ""
            if not isinstance(reason, str) or not isinstance(note, str):
                return _error("invalid", _("Give the reason and note as text."), offer_id=offer_id)
            answer.update(reason=reason, note=note)
        try:
            # thread_sensitive=False: answers from many sockets run side by side in
            # the thread pool instead of queueing behind one shared thread.
            offer = await database_sync_to_async(action, thread_sensitive=False)(**answer)
        except Offer.DoesNotExist:
            return _error("not_found", _("No such offer."), offer_id=offer_id)
        except DomainError as exc:
            return _error(exc.code, exc.message, offer_id=offer_id)
        return {"type": "offer.answered", "offer_id": offer.pk, "status": offer.status}

    async def _acknowledge_offer(self, content: dict) -> dict | None:
        """``offer.seen``: the console shows the offer.  Nothing is sent back unless wrong."""
        from marketplace.models import Offer
        from marketplace.services import dispatch

        offer_id = content.get("offer_id")
        if not _is_id(offer_id):
            return _error("invalid", _("Give the offer_id as an integer."), offer_id=offer_id)
        try:
            await database_sync_to_async(dispatch.offer_seen, thread_sensitive=False)(
                offer_id=offer_id, user=self.scope["user"]
            )
        except Offer.DoesNotExist:
            return _error("not_found", _("No such offer."), offer_id=offer_id)
        return None

    async def disconnect(self, code):
        if self.group is None:
            return
        await self.channel_layer.group_discard(self.group, self.channel_name)
        await database_sync_to_async(presence.agent_connection_close)(
            channel_name=self.channel_name
        )

    async def agent_event(self, event):
        message = event["message"]
        await self.send_json(message)
        if message.get("type") == "presence.changed" and message.get("reason") == "suspended":
            # A suspended agent keeps no live channel; reconnecting is refused.
            await self.close(code=4403)


def _is_id(value) -> bool:
    """An id some object could have: an integer (not a boolean) within the ids' range."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= params.MAX_ID


def _error(code: str, message: str, **extra) -> dict:
    return {"type": "error", "error": {"code": code, "message": message}, **extra}
