"""The OpenAPI schema says what the API answers: pages, errors, parameters.

``tests/test_api_fuzz.py`` holds every response to the schema; these tests pin
the shapes a client generated from it depends on.
"""

import re

import pytest
from django.core.management import call_command
from django.urls import resolve

from config import params
from config.api import KeysetPagination, PaginatedAPIView
from tests.api_fuzz import seed_market

pytestmark = pytest.mark.django_db

PAGE = {"count", "next", "previous", "results"}
# Keyset pages (config.api.KeysetPagination): no count, a cursor to the next.
KEYSET = {"next", "previous", "results"}

# The lists answered a page at a time: {count, next, previous, results}.
PAGINATED = {
    "/api/v1/admin/agents/",
    "/api/v1/admin/feedback/",
    "/api/v1/admin/integrations/keys/",
    "/api/v1/admin/integrations/{integration_id}/webhooks/",
    "/api/v1/admin/integrations/{integration_id}/webhooks/{endpoint_id}/deliveries/",
    "/api/v1/admin/pay-periods/",
    "/api/v1/admin/shifts/",
    "/api/v1/customers/me/identities/",
    "/api/v1/shifts/",
    "/api/v1/shifts/mine/",
    "/api/v1/tickets/{ticket_id}/messages/",
}
KEYSET_PAGINATED = {"/api/v1/tickets/"}
# The lists answered whole, as an array: the skills catalog and the rate card are
# short by nature, and an agent's offers are the 50 latest.
WHOLE = {"/api/v1/skills/", "/api/v1/pricing/rates/", "/api/v1/offers/"}


@pytest.fixture
def schema(client):
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def _resolve(schema, node):
    while "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[1]
        node = schema["components"]["schemas"][name]
    return node


def _success_body(schema, operation):
    code = min(code for code in operation["responses"] if code.startswith("2"))
    content = operation["responses"][code].get("content", {})
    body = content.get("application/json", {}).get("schema")
    return _resolve(schema, body) if body else None


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def _view_class(path):
    sample = re.sub(r"\{document_id\}", "00000000-0000-0000-0000-000000000000", path)
    sample = re.sub(r"\{\w+\}", "1", sample)
    return resolve(sample).func.view_class


def test_each_paginated_list_is_described_as_its_page(schema):
    for path in PAGINATED:
        operation = schema["paths"][path]["get"]
        page = _success_body(schema, operation)

        assert page["type"] == "object", path
        assert set(page["properties"]) == PAGE, path
        assert set(page["required"]) == PAGE, path
        assert page["properties"]["results"]["type"] == "array", path
        assert page["properties"]["next"]["nullable"] is True, path
        names = {p["name"] for p in operation["parameters"] if p["in"] == "query"}
        assert {"page", "page_size"} <= names, path


def test_the_lists_described_as_pages_are_those_whose_views_paginate(schema):
    pages, keyset, arrays = set(), set(), set()
    for path, method, operation in _operations(schema):
        if method != "get":
            continue
        body = _success_body(schema, operation)
        if body is None:
            continue
        if body.get("type") == "array":
            arrays.add(path)
        elif set(body.get("properties", {})) == PAGE:
            pages.add(path)
            assert issubclass(_view_class(path), PaginatedAPIView), path
        elif set(body.get("properties", {})) == KEYSET:
            keyset.add(path)
            assert _view_class(path).pagination_class is KeysetPagination, path

    assert pages == PAGINATED
    assert keyset == KEYSET_PAGINATED
    assert arrays == WHOLE


def test_a_paginated_list_answers_the_page_its_schema_describes(api, customer, staff):
    assert set(api.as_(staff).get("/api/v1/admin/feedback/").json()) == PAGE
    assert set(api.as_(customer).get("/api/v1/tickets/").json()) == KEYSET


def test_every_error_is_described_by_the_one_error_body(schema):
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    detail = _resolve(schema, error["properties"]["error"])
    assert set(detail["required"]) == {"code", "message", "fields"}

    for path, method, operation in _operations(schema):
        for code, response in operation["responses"].items():
            if not code.startswith("4"):
                continue
            assert response.get("description"), (method, path, code)
            for media_type, content in response["content"].items():
                assert content["schema"] == {"$ref": "#/components/schemas/Error"}, (
                    method,
                    path,
                    code,
                    media_type,
                )


@pytest.mark.parametrize(
    ("method", "path", "codes"),
    [
        # Sign-in reads a body and is throttled; it needs no credentials.
        ("post", "/api/v1/auth/token/", {"200", "400", "415", "429"}),
        # Open to all, but unknown credentials are refused.
        ("get", "/api/v1/skills/", {"200", "403"}),
        ("get", "/api/v1/tickets/", {"200", "400", "403", "404"}),
        ("post", "/api/v1/tickets/", {"201", "400", "403", "415", "422", "429"}),
        ("get", "/api/v1/tickets/{ticket_id}/", {"200", "403", "404"}),
        ("post", "/api/v1/offers/{offer_id}/accept/", {"200", "403", "404", "409"}),
        ("post", "/api/v1/offers/{offer_id}/decline/", {"200", "400", "403", "404", "409", "415"}),
        ("get", "/api/v1/offers/", {"200", "400", "403"}),
        ("get", "/api/v1/pricing/surge/", {"200", "403", "404"}),
        ("get", "/api/v1/admin/floor/", {"200", "400", "403"}),
        ("get", "/api/v1/agents/me/earnings/", {"200", "400", "403", "404"}),
        ("post", "/api/v1/agents/me/documents/", {"201", "400", "403", "409", "415", "429"}),
        ("post", "/api/v1/admin/pay-periods/{period_id}/close/", {"200", "403", "404", "409"}),
        ("get", "/api/v1/admin/pay-periods/{period_id}/export.csv", {"200", "403", "404", "409"}),
    ],
)
def test_an_operation_documents_the_statuses_it_can_answer(schema, method, path, codes):
    assert set(schema["paths"][path][method]["responses"]) == codes


@pytest.mark.parametrize(
    ("method", "path", "names"),
    [
        ("get", "/api/v1/offers/", {"status"}),
        ("get", "/api/v1/admin/feedback/", {"kind", "area", "since", "page", "page_size"}),
        ("get", "/api/v1/tickets/{ticket_id}/messages/", {"since", "page", "page_size"}),
        ("get", "/api/v1/admin/floor/", {"target"}),
        ("get", "/api/v1/agents/me/earnings/", {"period"}),
        ("get", "/api/v1/shifts/", {"date", "language", "skill", "page", "page_size"}),
    ],
)
def test_the_query_parameters_a_view_reads_are_in_the_schema(schema, method, path, names):
    parameters = schema["paths"][path][method]["parameters"]

    assert {p["name"] for p in parameters if p["in"] == "query"} == names


def test_the_schema_validates_without_warnings(tmp_path):
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml")
    )


@pytest.fixture
def names_read(monkeypatch):
    """The query parameter names a request reads through ``config.params``, the one
    strict parser every view's query goes through (a serializer that parses a query
    is declared as the operation's parameters by the same class)."""
    seen: set[str] = set()
    read = params._raw

    def recording(query, name):
        seen.add(name)
        return read(query, name)

    monkeypatch.setattr(params, "_raw", recording)
    return seen


def _a_value(parameter) -> str:
    """A valid value for a query parameter, from its schema."""
    schema = parameter.get("schema", {})
    if schema.get("enum"):
        return str(schema["enum"][0])
    if schema.get("format") == "date":
        return "2026-01-05"
    if schema.get("format") == "date-time":
        return "2026-01-05T09:00:00Z"
    if schema.get("type") in ("integer", "number"):
        return str(schema.get("minimum", 1))
    return "a"


def test_every_query_parameter_a_view_reads_is_in_the_schema(client, schema, names_read):
    # A parameter the schema leaves out is one a schema-driven fuzzer never sends:
    # the crafted values that were 500s hid there.  Every GET is called as every
    # persona; a 400 naming a declared parameter is answered with a value for it,
    # so that a view that stops at its first missing parameter reads the rest too.
    market = seed_market()
    undeclared: dict[str, set[str]] = {}
    everything_read: set[str] = set()
    for path, method, operation in _operations(schema):
        if method != "get" or path == "/api/schema/":
            continue
        declared = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "query"}
        url = re.sub(r"\{(\w+)\}", lambda m: str(market.ids.get(m.group(1), [1])[0]), path)
        read: set[str] = set()
        for credentials in market.credentials.values():
            query: dict[str, str] = {}
            for _ in range(len(declared) + 1):
                names_read.clear()
                headers = {"HTTP_AUTHORIZATION": credentials} if credentials else {}
                response = client.get(url, query, **headers)
                read |= names_read
                fields = (
                    response.json().get("error", {}).get("fields", {})
                    if (response.status_code == 400)
                    else {}
                )
                missing = [name for name in fields if name in declared and name not in query]
                if not missing:
                    break
                query |= {name: _a_value(declared[name]) for name in missing}
        everything_read |= read
        if read - set(declared):
            undeclared[f"GET {path}"] = read - set(declared)

    assert undeclared == {}
    # The recording saw the reads (the test could fail): some of each kind of view's.
    assert everything_read >= {"target", "period", "since", "page", "status", "capacity"}
