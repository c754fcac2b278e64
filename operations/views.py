"""``/healthz``, ``/readyz`` and ``/metrics``: for probes and Prometheus, not the public API.

Plain Django views, outside ``/api/``: they are in no OpenAPI schema, need no
session or token of a user, and are exempt from the HTTPS redirect
(``SECURE_REDIRECT_EXEMPT``) because probes and scrapers ask over plain HTTP
from inside the network.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from functools import cache

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)

from config.authentication import client_address
from operations import health
from operations.metrics import DOMAIN


@never_cache
@require_GET
def healthz(request):
    """Liveness: the process answers.  Nothing else is asked, so that a database or
    Redis outage does not get every web process restarted."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request):
    """Readiness: 200 when every component is ok or not configured, else 503 naming
    the failing ones (``failing``), with each component's check.

    The checks' details (error messages with host names and ports) go only to
    those who may read the metrics; a probe from elsewhere gets the statuses.
    """
    ready, checks = health.readiness()
    failing = [name for name, check in checks.items() if check.status == health.FAILING]
    detail = metrics_allowed(request)
    return JsonResponse(
        {
            "status": "ready" if ready else "not_ready",
            "failing": failing,
            "checks": {name: check.as_dict(detail=detail) for name, check in checks.items()},
        },
        status=200 if ready else 503,
    )


@cache
def _networks(spec: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(network.strip(), strict=False) for network in spec)


def metrics_allowed(request) -> bool:
    """A valid bearer token (``METRICS_TOKEN``), or a client in ``METRICS_ALLOWED_NETWORKS``."""
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    if token and scheme.lower() == "bearer":
        return hmac.compare_digest(presented.strip().encode(), token.encode())
    address = client_address(request)
    try:
        client = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(client in network for network in _networks(tuple(settings.METRICS_ALLOWED_NETWORKS)))


def _process_metrics() -> bytes:
    """Request metrics and the in-process counters: this process's own, or, with
    ``PROMETHEUS_MULTIPROC_DIR``, every process of the host added up."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


@never_cache
@require_GET
def metrics(request):
    if not metrics_allowed(request):
        return JsonResponse(
            {
                "error": {
                    "code": "forbidden",
                    "message": "Metrics are served to METRICS_ALLOWED_NETWORKS, or with"
                    " Authorization: Bearer METRICS_TOKEN.",
                }
            },
            status=403,
        )
    body = _process_metrics() + generate_latest(DOMAIN)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
