"""WebSocket routes.  Each app contributes its consumers here."""

from django.urls import path

from agents.consumers import AgentConsumer, PingConsumer
from tickets.consumers import TicketConsumer

websocket_urlpatterns: list = [
    path("ws/ping/", PingConsumer.as_asgi()),
    path("ws/agent/", AgentConsumer.as_asgi()),
    path("ws/tickets/<int:ticket_id>/", TicketConsumer.as_asgi()),
]
