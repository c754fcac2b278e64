"""DRF's rates, kept in the cache (Redis in production), and what they do when it is down.

A rate limit is counted in the cache, which is transport, not a fact.  While
Redis does not answer, the count cannot be read: the check is logged and
counted as a failed cache touch (``config.effects``,
``humanline_side_effects_failed_total{hook="rate_limit:<scope>"}``), never a
500.  What the request gets then depends on what the limit protects:

- a request that mails an address it names, or makes an account
  (``REFUSED_WITHOUT_CACHE``: sign-up, password reset, verification), waits:
  a 429 asking it to try again in a minute, so that an outage is no window
  for mail bombing;
- the others go through: a sign-in (its lock-out after failed attempts,
  django-axes, is kept in PostgreSQL) and an applicant's upload (its count
  per application is in PostgreSQL too).

``allow_request`` and ``wait`` are DRF's documented methods for a custom
throttle; every limited view uses the classes here.  ``SimpleRateThrottle`` is
DRF's documented base for a custom one, and its methods take any request:
pages use ``refusal`` to ask before doing the work, and answer a 429 themselves.
"""

import logging
import math

from redis.exceptions import RedisError
from rest_framework.throttling import ScopedRateThrottle, SimpleRateThrottle

from config import effects

logger = logging.getLogger("humanline.effects")


REFUSED_WITHOUT_CACHE = frozenset({"sign_up", "password_reset", "verification"})
# How long a request refused for want of the cache is asked to wait.
RETRY_WITHOUT_CACHE_SECONDS = 60.0


class GivenUpWithoutCache:
    """A rate that, when its cache does not answer, lets the request through, or
    asks it to wait a minute if its scope is in ``REFUSED_WITHOUT_CACHE``."""

    scope: str | None
    unchecked = False

    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except (RedisError, OSError):
            scope = self.scope or getattr(view, "throttle_scope", None) or "unknown"
            logger.exception("Rate limit %s not checked: the cache does not answer.", scope)
            effects.failed(f"rate_limit:{scope}")
            self.unchecked = True
            return scope not in REFUSED_WITHOUT_CACHE

    def wait(self):
        if self.unchecked:
            return RETRY_WITHOUT_CACHE_SECONDS
        return super().wait()


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
