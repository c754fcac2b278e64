"""WebSocket routes.  Each app contributes its consumers here."""

from django.urls import path

from agents.consumers import PingConsumer

websocket_urlpatterns: list = [
    path("ws/ping/", PingConsumer.as_asgi()),
]
