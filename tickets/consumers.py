"""The ticket's conversation socket, ``/ws/tickets/<id>/``.  Transport only.

Who may connect: the ticket's customer, its assigned agent and staff; anyone
else is refused at the handshake.  On connect the socket sends the ticket's
status and place in line (and, once its customer is told, why nobody has
taken it yet), and every message after ``?since=<message id>`` so that a
client that reconnects loses nothing.  Messages sent here go through
``tickets.services.message_post`` like the API's.
"""

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.utils.translation import gettext as _

from config import effects, params
from config.errors import DomainError
from config.realtime import JsonConsumer
from tickets import events, selectors, services
from tickets.models import Ticket

# Close codes (4000-4999 are the application's): not signed in, not allowed.
UNAUTHENTICATED = 4401
FORBIDDEN = 4403


class TicketConsumer(JsonConsumer):
    async def connect(self):
        self.ticket_id = int(self.scope["url_route"]["kwargs"]["ticket_id"])
        self.group = events.group_name(self.ticket_id)
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=UNAUTHENTICATED)
            return
        if not await self._may_join(user):
            await self.close(code=FORBIDDEN)
            return
        # Join before reading the snapshot: an event committed in between is
        # then delivered twice rather than lost; clients dedupe by message id.
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        try:
            since = self._since()
        except params.ParameterError as exc:
            # A bad ``since`` costs the resync, not the connection.
            since = None
            await self.send_json(
                {"type": "error", "error": {"code": exc.code, "message": exc.message}}
            )
        for event in await self._snapshot(since):
            await self.send_json(event)

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        kind = content.get("type")  # an object: config.realtime refuses any other frame
        if kind == "ping":
            await self.rejoin(self.group)
            await self._watching()
            await self.send_json({"type": "pong"})
        elif kind == "ticket.message":
            body = content.get("body")
            if not isinstance(body, str):
                await self.send_json(
                    {
                        "type": "error",
                        "error": {"code": "invalid", "message": _("Give the body as text.")},
                    }
                )
                return
            try:
                await self._post(body)
            except DomainError as exc:
                await self.send_json(
                    {"type": "error", "error": {"code": exc.code, "message": exc.message}}
                )
        else:
            await self.send_json(
                {"type": "error", "error": {"code": "unknown_type", "message": _("Unknown type.")}}
            )

    async def ticket_event(self, message):
        event = message["event"]
        await self.send_json(event)
        # An agent the ticket was taken from stops listening.
        if event["type"] == "ticket.status" and not await self._may_join(self.scope["user"]):
            await self.close(code=FORBIDDEN)

    async def _watching(self) -> None:
        await sync_to_async(mark_watched, thread_sensitive=False)(self.ticket_id)

    def _since(self) -> int | None:
        from urllib.parse import parse_qs

        query = parse_qs(self.scope.get("query_string", b"").decode())
        return params.integer({name: values[0] for name, values in query.items()}, "since")

    @database_sync_to_async
    def _may_join(self, user) -> bool:
        return selectors.may_join_conversation(user=user, ticket_id=self.ticket_id)

    @database_sync_to_async
    def _snapshot(self, since: int | None) -> list[dict]:
        ticket = Ticket.objects.select_related("assigned_agent__user").get(pk=self.ticket_id)
        mark_watched(ticket.pk)  # before its place is read: no push falls between
        snapshot = [events.status_event(ticket)]
        if ticket.assigned_agent_id:
            snapshot.append(events.assigned_event(ticket))
        place = selectors.queue_place(ticket=ticket)
        if place:
            snapshot.append(events.position_event(ticket.pk, place))
            # Why nobody has taken it yet, once its customer is told: a lost
            # ``ticket.waiting`` is recovered on the next connect.  Dispatch owns
            # the reasons (the API's serializer reads them the same way).
            from marketplace.services.escalation import customer_waiting_reason

            reason = customer_waiting_reason(ticket)
            if reason is not None:
                snapshot.append(events.waiting_event(ticket.pk, reason))
        if since is not None:
            snapshot += [
                events.message_event(m)
                for m in selectors.messages_since(ticket=ticket, since=since)
            ]
        return snapshot

    @database_sync_to_async
    def _post(self, body: str) -> None:
        services.message_post(ticket_id=self.ticket_id, caller=self.scope["user"], body=body)


def mark_watched(ticket_id: int) -> None:
    """Keep the ticket's places in line coming (``events.watching``); a cache that
    cannot be reached costs those pushes (logged and counted), never the socket."""

    def ticket_watched():
        events.watching(ticket_id)

    effects.run_guarded(ticket_watched)
