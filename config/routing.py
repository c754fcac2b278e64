"""WebSocket routes.  Each app contributes its consumers here."""

from django.urls import path

from agents.consumers import AgentConsumer, PingConsumer

websocket_urlpatterns: list = [
    path("ws/ping/", PingConsumer.as_asgi()),
    path("ws/agent/", AgentConsumer.as_asgi()),
]
