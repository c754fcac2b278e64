"""GET /api/v1/admin/staffing/erlang/: Erlang C for staff; bad or impossible input is a 400
that names the parameter."""

import pytest

pytestmark = pytest.mark.django_db

URL = "/api/v1/admin/staffing/erlang/"
EXAMPLE = {"arrivals_per_hour": "200", "handle_seconds": "180", "answer_seconds": "20"}


def query(**overrides):
    values = {**EXAMPLE, "service_level": "0.8", **overrides}
    return {k: v for k, v in values.items() if v is not None}


def test_staff_get_the_agents_a_queue_needs(api, staff):
    response = api.as_(staff).get(URL, query())

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["agents"] == 14
    assert body["service_level"] == pytest.approx(0.88835, abs=1e-5)
    assert body["mean_wait_seconds"] == pytest.approx(7.836, abs=1e-3)
    assert body["occupancy"] == pytest.approx(0.714286, abs=1e-6)
    assert (body["seats"], body["traffic_erlangs"]) == (14, 10.0)


def test_agents_holding_two_tickets_each_halve_the_headcount(api, staff):
    body = api.as_(staff).get(URL, query(capacity="2")).json()

    assert (body["agents"], body["seats"]) == (7, 14)


def test_numbers_may_be_written_as_json_writes_them(api, staff):
    body = api.as_(staff).get(URL, query(arrivals_per_hour="2e2", service_level="0.80")).json()

    assert body["agents"] == 14


@pytest.mark.parametrize("user", ["agent", "customer", None])
def test_only_staff_may_ask(api, request, user):
    caller = request.getfixturevalue(user) if user else None

    assert api.as_(caller).get(URL, query()).status_code == 403


@pytest.mark.parametrize(
    "name", ["arrivals_per_hour", "handle_seconds", "answer_seconds", "service_level"]
)
def test_a_missing_parameter_is_a_400_naming_it(api, staff, name):
    response = api.as_(staff).get(URL, query(**{name: None}))

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_parameter"
    assert list(error["fields"]) == [name]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("arrivals_per_hour", "lots"),
        ("arrivals_per_hour", "nan"),
        ("arrivals_per_hour", "inf"),
        ("arrivals_per_hour", "1e999"),
        ("arrivals_per_hour", "-3"),
        ("arrivals_per_hour", "1,5"),
        ("arrivals_per_hour", "²"),
        ("arrivals_per_hour", "2000000"),
        ("handle_seconds", "0x10"),
        ("handle_seconds", "90000"),
        ("answer_seconds", "-1"),
        ("service_level", "80%"),
        ("service_level", "80"),
        ("capacity", "0.5"),
        ("capacity", "21"),
    ],
)
def test_a_malformed_or_out_of_range_value_is_a_400_naming_it(api, staff, name, value):
    response = api.as_(staff).get(URL, query(**{name: value}))

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_parameter"
    assert list(error["fields"]) == [name]


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        ({"service_level": "1"}, "service_level"),
        ({"service_level": "0"}, "service_level"),
        ({"handle_seconds": "0"}, "handle_seconds"),
        # 1,000,000 an hour for a day each: 240 million erlangs, beyond any pool
        ({"arrivals_per_hour": "1000000", "handle_seconds": "86400"}, "arrivals_per_hour"),
    ],
)
def test_an_impossible_goal_is_a_400_naming_the_parameter(api, staff, overrides, name):
    response = api.as_(staff).get(URL, query(**overrides))

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_parameter"
    assert list(error["fields"]) == [name]
    assert error["message"].startswith(f"{name}: ")


def test_no_arrivals_need_no_agents(api, staff):
    body = api.as_(staff).get(URL, query(arrivals_per_hour="0")).json()

    assert body == {
        "agents": 0,
        "service_level": 1.0,
        "mean_wait_seconds": 0.0,
        "occupancy": 0.0,
        "seats": 0,
        "traffic_erlangs": 0.0,
        "probability_of_waiting": 0.0,
    }
