"""Crafted query and path parameters, as an attacker sends them: a 400 naming the
parameter (or a 404 for an id that cannot exist), never a server error."""

import pytest

from tests.tickets.factories import TicketFactory

pytestmark = pytest.mark.django_db

SUPERSCRIPT_TWO = "²"  # str.isdigit() says yes; int() says no
TOO_LARGE = "9" * 25  # beyond any 64-bit id


def _refused(response, name: str) -> None:
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_parameter"
    assert name in error["fields"]


@pytest.mark.parametrize("value", [SUPERSCRIPT_TWO, "-5", "0", "3601", "1e3", TOO_LARGE])
def test_the_floor_refuses_a_crafted_target(api, staff, value):
    _refused(api.as_(staff).get("/api/v1/admin/floor/", {"target": value}), "target")


def test_the_floor_takes_a_target_within_range(api, staff):
    assert api.as_(staff).get("/api/v1/admin/floor/", {"target": "45"}).status_code == 200


@pytest.mark.parametrize("value", [SUPERSCRIPT_TWO, "-1", TOO_LARGE, "abc"])
def test_earnings_refuse_a_crafted_period(api, agent, value):
    _refused(api.as_(agent).get("/api/v1/agents/me/earnings/", {"period": value}), "period")


def test_earnings_of_a_period_that_does_not_exist_are_a_404(api, agent):
    assert (
        api.as_(agent).get("/api/v1/agents/me/earnings/", {"period": "424242"}).status_code == 404
    )


@pytest.mark.parametrize(
    "value",
    [SUPERSCRIPT_TWO, "2026-13-45T10:00:00Z", "2026-02-30T25:61:00", "yesterday", TOO_LARGE],
)
def test_messages_refuse_a_crafted_since(api, customer, value):
    ticket = TicketFactory(customer=customer)

    response = api.as_(customer).get(f"/api/v1/tickets/{ticket.pk}/messages/", {"since": value})

    _refused(response, "since")


@pytest.mark.parametrize("value", ["2026-13-45T10:00:00Z", "not a time"])
def test_feedback_refuses_a_crafted_since(api, staff, value):
    _refused(api.as_(staff).get("/api/v1/admin/feedback/", {"since": value}), "since")


@pytest.mark.parametrize(
    ("path", "persona"),
    [
        ("/api/v1/tickets/?status=nope", "customer"),
        ("/api/v1/offers/?status=nope", "agent"),
        ("/api/v1/admin/agents/?status=nope", "staff"),
        ("/api/v1/admin/feedback/?kind=nope", "staff"),
    ],
)
def test_lists_refuse_an_unknown_choice(api, request, path, persona):
    response = api.as_(request.getfixturevalue(persona)).get(path)

    _refused(response, path.rsplit("?", 1)[1].split("=")[0])


@pytest.mark.parametrize(
    ("method", "path", "persona"),
    [
        ("post", f"/api/v1/offers/{TOO_LARGE}/accept/", "agent"),
        ("post", f"/api/v1/offers/{TOO_LARGE}/decline/", "agent"),
        ("get", f"/api/v1/tickets/{TOO_LARGE}/", "customer"),
        ("post", f"/api/v1/shifts/{TOO_LARGE}/book/", "agent"),
        ("get", f"/api/v1/admin/agents/{TOO_LARGE}/", "staff"),
    ],
)
def test_an_id_larger_than_any_id_is_a_404_not_an_overflow(api, request, method, path, persona):
    # On PostgreSQL the number overflowed the statement's bigint: a 500.
    response = getattr(api.as_(request.getfixturevalue(persona)), method)(path)

    assert response.status_code == 404


def test_the_largest_id_a_path_may_name_still_reaches_the_view(api, agent):
    response = api.as_(agent).post(f"/api/v1/offers/{10**18 - 1}/accept/")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "url",
    [
        "/ops/?target=" + SUPERSCRIPT_TWO,
        "/agent/earnings/?period=" + SUPERSCRIPT_TWO,
        "/agent/?ticket=" + SUPERSCRIPT_TWO,
    ],
)
def test_pages_answer_a_crafted_parameter_with_a_400(client, staff, agent, url):
    client.force_login(staff if url.startswith("/ops") else agent.user)

    response = client.get(url)

    assert response.status_code == 400


# --- pages, the ends of the calendar, NUL (found by the API fuzz run) ------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("page", "abc"),
        ("page", "0"),
        ("page", "last"),
        ("page", SUPERSCRIPT_TWO),
        ("page_size", "0"),
        ("page_size", "201"),
        ("page_size", "ten"),
    ],
)
def test_a_list_refuses_a_crafted_page(api, staff, name, value):
    _refused(api.as_(staff).get("/api/v1/admin/feedback/", {name: value}), name)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("cursor", "abc"),
        ("cursor", "cD0xMjM0NTY3ODkwMTIzNDU2Nzg5MA=="),  # p=12345678901234567890: past any id
        ("cursor", "cD1hYmM="),  # p=abc
        ("cursor", "cD0tMQ=="),  # p=-1
        ("page_size", "0"),
        ("page_size", "201"),
        ("page_size", SUPERSCRIPT_TWO),
    ],
)
def test_a_keyset_list_refuses_a_crafted_cursor(api, customer, name, value):
    _refused(api.as_(customer).get("/api/v1/tickets/", {name: value}), name)


def test_a_page_past_the_last_is_a_404(api, staff):
    response = api.as_(staff).get("/api/v1/admin/feedback/", {"page": "2"})

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_keyset_page_answers_next_previous_and_results(api, customer):
    tickets = [TicketFactory(customer=customer) for _ in range(3)]

    first = api.as_(customer).get("/api/v1/tickets/", {"page_size": "2"}).json()
    # Opened meanwhile: it does not shift the pages already handed out.
    TicketFactory(customer=customer)
    second = api.as_(customer).get(first["next"]).json()

    assert set(first) == {"next", "previous", "results"} and first["previous"] is None
    assert [t["id"] for t in first["results"]] == [tickets[2].pk, tickets[1].pk]
    assert [t["id"] for t in second["results"]] == [tickets[0].pk]
    assert second["next"] is None


@pytest.mark.parametrize(
    ("path", "persona", "name", "value"),
    [
        # The day after 9999-12-31, or an hour of 0001-01-01 in UTC, does not exist:
        # an OverflowError (500) before.
        ("/api/v1/admin/shifts/", "staff", "date_to", "9999-12-31"),
        ("/api/v1/admin/shifts/", "staff", "date_from", "9999-12-31"),
        ("/api/v1/shifts/", "agent", "date", "9999-12-31"),
        ("/api/v1/shifts/", "agent", "date", "0001-01-01"),
        # The shift lists read their filters with the one strict parser too.
        ("/api/v1/shifts/", "agent", "date", "2030-02-31"),
        ("/api/v1/shifts/", "agent", "language", "en' OR '1"),
        ("/api/v1/shifts/", "agent", "skill", "s" * 41),
        ("/api/v1/admin/shifts/", "staff", "status", "sold"),
        # Past the years a datetime holds once in UTC; PostgreSQL refused the offset.
        ("/api/v1/admin/feedback/", "staff", "since", "9999-12-31T23:59:59-23:00"),
        ("/api/v1/admin/feedback/", "staff", "since", "0001-01-01T00:00:00+23:00"),
        # A NUL: PostgreSQL stores none (a ValueError, 500, before).
        ("/api/v1/admin/feedback/", "staff", "area", "billing\x00"),
        ("/api/v1/admin/feedback/", "staff", "area", "card payments"),
    ],
)
def test_lists_refuse_a_value_at_the_edge(api, request, path, persona, name, value):
    response = api.as_(request.getfixturevalue(persona)).get(path, {name: value})

    assert response.status_code == 400, response.content
    assert name in response.json()["error"]["fields"]


@pytest.mark.parametrize("since", ["9999-12-31T23:59:59-23:00", "0001-01-01T00:00:00+05:00"])
def test_messages_refuse_a_time_past_the_calendar(api, customer, since):
    ticket = TicketFactory(customer=customer)

    response = api.as_(customer).get(f"/api/v1/tickets/{ticket.pk}/messages/", {"since": since})

    _refused(response, "since")


def test_a_week_that_runs_past_the_calendar_is_refused(api, staff):
    response = api.as_(staff).post(
        "/api/v1/admin/shifts/week/",
        {"week_start": "9999-12-27", "day_start": "08:00", "day_end": "20:00", "headcount": 1},
    )

    assert response.status_code == 400
    assert "week_start" in response.json()["error"]["fields"]


@pytest.mark.parametrize("key", ["k\x00", "k\x1fey"])
def test_an_idempotency_key_with_a_control_character_is_refused(api, customer, key):
    response = api.as_(customer).post(
        "/api/v1/tickets/",
        {"subject": "Hi", "body": "Charged twice.", "category": "general"},
        HTTP_IDEMPOTENCY_KEY=key,
    )

    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error"]["fields"]
    assert customer.tickets.count() == 0


def test_an_api_path_no_pattern_matches_answers_the_api_error_body(api, customer):
    response = api.as_(customer).get(f"/api/v1/tickets/{TOO_LARGE}/")

    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": "Not found.", "fields": {}}
    }


def test_a_page_path_no_pattern_matches_is_still_the_404_page(client):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
