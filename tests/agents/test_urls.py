"""URL routing: every path reaches its own view, whatever the patterns' order.

``config/urls.py`` lists the API first because it takes the traffic; that is
only safe while no two patterns can match the same path.
"""

import re
import uuid

import pytest
from django.urls import get_resolver, resolve
from django.urls.resolvers import RoutePattern, URLResolver

# A value each path converter accepts.
SAMPLES = {
    "int": "7",
    "id": "7",
    "str": "ab",
    "slug": "ab",
    "path": "ab",
    "uuid": str(uuid.UUID(int=7)),
}


def _routes(patterns, prefix=""):
    """(full route, leaf pattern) for every view, Django's admin aside."""
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            if route != "django-admin/":
                yield from _routes(pattern.url_patterns, route)
        else:
            yield route, pattern


def _sample(route: str) -> str:
    return "/" + re.sub(r"<(?:(\w+):)?\w+>", lambda m: SAMPLES[m.group(1) or "str"], route)


ROUTES = list(_routes(get_resolver().url_patterns))


def test_the_api_is_matched_first():
    assert str(get_resolver().url_patterns[0].pattern) == "api/v1/"
    assert resolve("/api/v1/tickets/").url_name == "api-tickets"


@pytest.mark.parametrize("route", [route for route, _ in ROUTES])
def test_exactly_one_pattern_matches_each_route(route):
    path = _sample(route)
    matching = [
        other for other, _ in ROUTES if RoutePattern(other, is_endpoint=True).match(path[1:])
    ]
    assert matching == [route]
    assert resolve(path).route == route
