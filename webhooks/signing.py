"""Signatures on deliveries, as Stripe writes them.

Header ``Humanline-Signature: t=<unix time>,v1=<hex>`` where ``<hex>`` is the
HMAC-SHA256, keyed with the endpoint's secret, of ``"<t>.<raw body>"``.  A
receiver recomputes it over the bytes it received, compares in constant time,
and refuses a ``t`` more than five minutes from its own clock (a replay).
"""

import hashlib
import hmac
import time

HEADER = "Humanline-Signature"
TOLERANCE_SECONDS = 300


def sign(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    """The header value for ``body``."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify(
    secret: str, header: str, body: bytes, *, tolerance: int = TOLERANCE_SECONDS, now=None
) -> bool:
    """Whether ``header`` signs ``body`` with ``secret``, within ``tolerance`` seconds."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret, body, timestamp=timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))
