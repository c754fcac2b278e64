"""WebSocket authentication (session cookie or one-time realtime ticket), the
sockets' base consumer, and the language a socket answers in.

Browsers on our own pages use their session.  Other clients (mobile apps,
benchmarks, integrations' widgets) first ``POST /api/v1/realtime/tickets/``
with their token and connect with ``?ticket=<value>``: a ticket is valid for
60 seconds and usable once, so a URL that leaks into a log is worthless.
"""

import logging
from functools import cached_property
from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.security.websocket import AllowedHostsOriginValidator
from django.http import HttpRequest
from django.utils import translation
from django.utils.translation import gettext as _

from config.locale import ui_language

logger = logging.getLogger(__name__)


class JsonConsumer(AsyncJsonWebsocketConsumer):
    """The base of Humanline's sockets: a JSON consumer without a thread hop per message.

    Channels closes stale database connections before handling every message
    (frames in, and every push from the channel layer), with a hop to the
    process's one shared sync thread, which closes only that thread's
    connections.  Every database call of these consumers goes through
    ``database_sync_to_async``, which closes stale connections itself, on the
    thread the call runs on; the hop bought nothing and cost a thread switch
    per offer pushed and per answer received.
    """

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        """A frame that is not a JSON object is answered with an ``error`` frame;
        the socket stays open (channels' own ``receive`` would raise and drop it).

        So ``receive_json`` always gets an object.  Text holding a NUL character
        is refused here too, as the API's fields refuse it: PostgreSQL cannot
        store one, and the statement's error would drop the socket.
        """
        if text_data is None:
            await self.send_json(_bad_frame(_("Send JSON text frames.")))
            return
        try:
            content = await self.decode_json(text_data)
        except ValueError:
            await self.send_json(_bad_frame(_("The frame is not valid JSON.")))
            return
        if not isinstance(content, dict):
            await self.send_json(_bad_frame(_('Send a JSON object with a "type".')))
            return
        if _holds_nul(content):
            await self.send_json(_bad_frame(_("Text may not hold NUL characters.")))
            return
        await self.receive_json(content, **kwargs)

    async def rejoin(self, group: str) -> None:
        """Join ``group`` again, in case the layer has lost this socket's membership.

        The client's regular ``ping`` and its ``resync`` call this, so a socket
        that went deaf to its group's pushes hears again within one ping
        interval.  The publish/subscribe layer keeps memberships in the process
        and its client subscribes again after a reconnect; a layer that keeps
        them in Redis (channels-redis's other layer) loses them with a Redis
        restarted without persistence, or past its group expiry.  Adding a
        member already there changes nothing.  While Redis is unreachable the
        socket stays open (its pushes pause anyway) and the next ping tries
        again.
        """
        try:
            await self.channel_layer.group_add(group, self.channel_name)
        except Exception:  # the layer's client errors (connection refused, timeout)
            logger.warning("Could not rejoin %s; the next ping tries again", group, exc_info=True)

    async def dispatch(self, message):
        """Channels' own dispatch, without its stale-connection hop (see the class).

        The client's own messages (the handshake, frames, the close) are
        handled in the socket's language, so that what the socket answers
        itself (its error frames, the services' refusals) reads as its page
        does.  Pushes are handled as they come: they carry text already
        written in their reader's language.
        """
        handler = getattr(self, handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        if message["type"].startswith("websocket."):
            with translation.override(self.language):
                await handler(message)
        else:
            await handler(message)

    @cached_property
    def language(self) -> str:
        return socket_language(self.scope)


def socket_language(scope) -> str:
    """The language of a socket, as of the page that opened it.

    The signed-in person's chosen language when the pages are translated into
    it (``config.locale.PreferencesMiddleware``), else Django's choice for the
    handshake as for any request (``LocaleMiddleware``): the language
    switcher's cookie, else the browser's ``Accept-Language``, else English.
    """
    user = scope.get("user")
    if user is not None and user.is_authenticated:
        chosen = ui_language(user.language)
        if chosen:
            return chosen
    handshake = HttpRequest()
    handshake.COOKIES = dict(scope.get("cookies") or {})
    for name, value in scope.get("headers") or ():
        if name.lower() == b"accept-language":
            handshake.META["HTTP_ACCEPT_LANGUAGE"] = value.decode("latin-1")
    return translation.get_language_from_request(handshake)


def handler_name(message: dict) -> str:
    """The consumer method for a message, as Channels documents the naming: its
    ``type`` with each ``.`` replaced by ``_``; never a private method."""
    name = message["type"].replace(".", "_")
    if name.startswith("_"):
        raise ValueError(f"Malformed message type {message['type']!r}")
    return name


def _bad_frame(message: str) -> dict:
    return {"type": "error", "error": {"code": "bad_frame", "message": message}}


def _holds_nul(value) -> bool:
    """Whether a decoded JSON value holds a NUL character, in a key or a string."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


class RealtimeTicketMiddleware:
    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        query = parse_qs(scope.get("query_string", b"").decode())
        values = query.get("ticket")
        if values:
            user = await _redeem(values[0])
            if user is not None:
                scope = dict(scope, user=user)
        return await self.inner(scope, receive, send)


@database_sync_to_async
def _redeem(value: str):
    from agents.services import realtime_ticket_redeem

    return realtime_ticket_redeem(value=value)


def websocket_stack(inner):
    # Order matters: the session sets scope["user"], a ticket may then replace it.
    return AllowedHostsOriginValidator(AuthMiddlewareStack(RealtimeTicketMiddleware(inner)))
