"""ASGI entry point: HTTP through Django, WebSockets through Channels.

WebSocket connections are authenticated by the session cookie or by a one-time
realtime ticket (``?ticket=``), and refused unless their Origin is allowed.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from config.embedded import start_background_loop  # noqa: E402
from config.realtime import websocket_stack  # noqa: E402
from config.routing import websocket_urlpatterns  # noqa: E402

start_background_loop()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": websocket_stack(URLRouter(websocket_urlpatterns)),
    }
)
