"""One POST to a receiver, within the limits a platform owes other people's networks.

- The destination must be ``https`` where ``WEBHOOK_REQUIRE_HTTPS`` (production),
  and must not resolve to a private, loopback, link-local or otherwise
  non-global address unless ``WEBHOOK_ALLOW_PRIVATE`` (tests, the embedded
  demo): a webhook URL must not reach into the platform's own network.  The
  name is resolved again at each send, since what it resolves to may change.
- Redirects are not followed: a 3xx is a failed attempt.
- The answer's body is read up to ``RESPONSE_CAP`` bytes, and the whole attempt
  (connecting, sending, the status line, headers and body) is bounded by
  ``WEBHOOK_TIMEOUT_SECONDS``.  httpx's own timeouts bound each network
  operation, not their sum: a receiver that drips a byte at a time would hold
  the worker for as long as it likes.  So the exchange runs on httpx's async
  client under one ``asyncio.timeout`` for the whole of it.
"""

import asyncio
import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from django.conf import settings

RESPONSE_CAP = 64 * 1024


@dataclass(frozen=True)
class Answer:
    status_code: int | None
    error: str
    excerpt: str
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def destination_problem(url: str) -> str | None:
    """Why ``url`` may not receive webhooks, or None."""
    parts = urlsplit(url)
    policy = settings.HUMANLINE
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "Give an http(s) URL with a host."
    if parts.scheme != "https" and policy["WEBHOOK_REQUIRE_HTTPS"]:
        return "Use an https URL."
    if policy["WEBHOOK_ALLOW_PRIVATE"]:
        return None
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        found = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, ValueError):
        return "This host name does not resolve."
    for *_, address in found:
        ip = ipaddress.ip_address(address[0])
        if not ip.is_global:
            return f"{parts.hostname} resolves to {ip}, a private or local address."
    return None


def post(url: str, body: bytes, headers: dict[str, str]) -> Answer:
    """POST ``body``; what the receiver answered, or why there was no answer."""
    problem = destination_problem(url)
    if problem:
        return Answer(None, problem, "", 0)
    limit = settings.HUMANLINE["WEBHOOK_TIMEOUT_SECONDS"]
    started = time.monotonic()

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        status, read = asyncio.run(_exchange(url, body, headers, limit))
    except TimeoutError:
        return Answer(None, f"No complete answer within {limit:g} s.", "", took())
    except httpx.HTTPError as exc:
        return Answer(None, f"{type(exc).__name__}: {exc}"[:500], "", took())
    error = "" if 200 <= status < 300 else f"The receiver answered {status}."
    return Answer(status, error, read[:500].decode(errors="replace"), took())


async def _exchange(
    url: str, body: bytes, headers: dict[str, str], limit: float
) -> tuple[int, bytes]:
    """The status and the first ``RESPONSE_CAP`` bytes of the answer, all within ``limit``."""
    async with (
        asyncio.timeout(limit),
        httpx.AsyncClient(timeout=limit, follow_redirects=False) as client,
        client.stream("POST", url, content=body, headers=headers) as response,
    ):
        read = b""
        async for chunk in response.aiter_bytes():
            read += chunk
            if len(read) >= RESPONSE_CAP:
                break
        return response.status_code, read
