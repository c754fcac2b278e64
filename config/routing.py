"""WebSocket routes.  Each app contributes its consumers here."""

from django.urls import path

from agents.consumers import AgentConsumer, PingConsumer
from config import params  # noqa: F401 (registers the <id:…> converter)
from tickets.consumers import TicketConsumer

websocket_urlpatterns: list = [
    path("ws/ping/", PingConsumer.as_asgi()),
    path("ws/agent/", AgentConsumer.as_asgi()),
    path("ws/tickets/<id:ticket_id>/", TicketConsumer.as_asgi()),
]
