"""DRF's rates, kept in the cache (Redis in production), and given up when it is down.

A rate limit is counted in the cache, which is transport, not a fact: while
Redis does not answer, a limited request (a sign-in, a sign-up, an upload)
goes through unlimited rather than failing with a 500, and the lost check is
logged and counted as a failed cache touch (``config.effects``,
``humanline_side_effects_failed_total{hook="rate_limit:<scope>"}``).  Sign-in
keeps its lock-out on failed attempts, which django-axes holds in the
database.  ``allow_request`` is DRF's documented method for a custom
throttle; every limited view uses the classes here.

DRF throttles are built for API views; ``SimpleRateThrottle`` is its documented
base for a custom one, and ``allow_request``/``wait`` take any request.  Pages
use ``refusal`` to ask before doing the work, and answer a 429 themselves.
"""

import logging
import math

from redis.exceptions import RedisError
from rest_framework.throttling import ScopedRateThrottle, SimpleRateThrottle

from config import effects

logger = logging.getLogger("humanline.effects")


class GivenUpWithoutCache:
    """A rate that lets the request through when its cache does not answer."""

    scope: str | None

    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except (RedisError, OSError):
            scope = self.scope or getattr(view, "throttle_scope", None) or "unknown"
            logger.exception("Rate limit %s not checked: the cache does not answer.", scope)
            effects.failed(f"rate_limit:{scope}")
            return True


class ScopedRate(GivenUpWithoutCache, ScopedRateThrottle):
    """DRF's ``ScopedRateThrottle`` (the view's ``throttle_scope``)."""


class AddressRate(GivenUpWithoutCache, SimpleRateThrottle):
    """The rate of ``scope`` (``DEFAULT_THROTTLE_RATES``) per client address, which
    DRF reads proxy-aware (``NUM_PROXIES``, from ``TRUSTED_PROXY_COUNT``)."""

    def __init__(self, scope: str):
        self.scope = scope
        super().__init__()

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


def refusal(request, scope: str) -> int | None:
    """None when this address may go on (and counts the attempt); otherwise the
    whole minutes until it may try again, at least one."""
    rate = AddressRate(scope)
    if rate.allow_request(request, None):
        return None
    return max(1, math.ceil((rate.wait() or 60) / 60))
