"""ASGI entry point: HTTP through Django (on a thread pool), WebSockets through Channels.

WebSocket connections are authenticated by the session cookie or by a one-time
realtime ticket (``?ticket=``), and refused unless their Origin is allowed.
"""

import gc
import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup(set_prefix=False)

from django.conf import settings  # noqa: E402

# Off unless set: config.settings says why a deployment would (the Procfile does).
if settings.GIL_SWITCH_INTERVAL_MS is not None:
    sys.setswitchinterval(settings.GIL_SWITCH_INTERVAL_MS / 1000)

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402

from config.asgi_http import PooledASGIHandler  # noqa: E402
from config.channel_send import serving  # noqa: E402
from config.embedded import start_background_loop  # noqa: E402
from config.realtime import websocket_stack  # noqa: E402
from config.routing import websocket_urlpatterns  # noqa: E402
from config.uploads import BodyLimit  # noqa: E402
from simulation.live import start_live_demo  # noqa: E402

start_background_loop()
start_live_demo()

# Every connection knows the server's loop, and so does its synchronous work
# (config.channel_send: pushes go through that loop).
application = serving(
    ProtocolTypeRouter(
        {
            # Each request whole on one thread of a pool (config.asgi_http); a body
            # larger than any request accepts is refused as it comes (config.uploads).
            "http": BodyLimit(
                PooledASGIHandler() if settings.HTTP_HANDLER == "pooled" else get_asgi_application()
            ),
            "websocket": websocket_stack(URLRouter(websocket_urlpatterns)),
        }
    )
)

if settings.GC_FREEZE_AT_START:
    # Everything loaded so far lives as long as the process.
    gc.collect()
    gc.freeze()
