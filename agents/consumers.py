"""WebSocket consumers for people.  Transport only: authenticate, forward, never write."""

from channels.generic.websocket import AsyncJsonWebsocketConsumer


class PingConsumer(AsyncJsonWebsocketConsumer):
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
            await self.send_json({"type": "error", "error": {"code": "unknown_type"}})
