"""A JSON body larger than DATA_UPLOAD_MAX_MEMORY_SIZE is refused before it is parsed."""

import pytest

pytestmark = pytest.mark.django_db


def test_an_oversized_json_body_is_refused_not_parsed(api, customer, settings):
    # A body the ticket itself allows (2,000 characters), in a request over the cap.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000

    response = api.as_(customer).post(
        "/api/v1/tickets/", {"subject": "Hi", "body": "x" * 2_000, "category": "general"}
    )

    assert response.status_code == 400
    assert customer.tickets.count() == 0

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100_000
    allowed = api.as_(customer).post(
        "/api/v1/tickets/", {"subject": "Hi", "body": "x" * 2_000, "category": "general"}
    )
    assert allowed.status_code == 201
