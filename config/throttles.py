"""DRF's rates for pages: a form posted from a browser is limited like its API twin.

DRF throttles are built for API views; ``SimpleRateThrottle`` is its documented
base for a custom one, and ``allow_request``/``wait`` take any request.  Pages
use ``refusal`` to ask before doing the work, and answer a 429 themselves.
"""

import math

from rest_framework.throttling import SimpleRateThrottle


class AddressRate(SimpleRateThrottle):
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
