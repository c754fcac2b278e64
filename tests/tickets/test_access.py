"""Who may do what with a ticket: the owner can, outsiders get 404, staff see everything.

Each row reads: on a ticket in this state, this persona doing this gets that.
"""

import pytest

from tests.tickets.factories import TicketFactory, assigned, resolved

pytestmark = pytest.mark.django_db


def _ticket(state: str, customer, agent):
    ticket = TicketFactory(customer=customer)
    if state == "assigned":
        assigned(ticket, agent)
    elif state == "resolved":
        resolved(ticket, agent)
    return ticket


CASES = [
    # (ticket state, method, path, body, {persona: expected status})
    (
        "assigned",
        "get",
        "",
        None,
        {
            "customer": 200,
            "agent": 200,
            "staff": 200,
            "other_customer": 404,
            "other_agent": 404,
            "applicant": 404,
        },
    ),
    (
        "assigned",
        "get",
        "messages/",
        None,
        {"customer": 200, "agent": 200, "staff": 200, "other_customer": 404, "other_agent": 404},
    ),
    (
        "assigned",
        "post",
        "messages/",
        {"body": "hi"},
        {"customer": 201, "agent": 201, "staff": 403, "other_customer": 404, "other_agent": 404},
    ),
    (
        "queued",
        "post",
        "cancel/",
        {},
        {"customer": 200, "staff": 200, "agent": 404, "other_customer": 404},
    ),
    (
        "assigned",
        "post",
        "resolve/",
        {},
        {"agent": 200, "customer": 403, "staff": 403, "other_agent": 404, "other_customer": 404},
    ),
    (
        "resolved",
        "post",
        "reopen/",
        {},
        {"customer": 200, "agent": 403, "staff": 403, "other_customer": 404, "other_agent": 404},
    ),
    (
        "resolved",
        "post",
        "rating/",
        {"score": 4},
        {"customer": 201, "agent": 403, "staff": 403, "other_customer": 404, "other_agent": 404},
    ),
    (
        "assigned",
        "post",
        "feedback/",
        {"area": "app", "kind": "bug", "text": "t"},
        {"agent": 201, "other_agent": 404, "customer": 403, "staff": 403},
    ),
]


@pytest.mark.parametrize(
    ("state", "method", "path", "body", "persona", "expected"),
    [
        pytest.param(
            state,
            method,
            path,
            body,
            persona,
            expected,
            id=f"{method}-{path or 'detail'}-{persona}",
        )
        for state, method, path, body, answers in CASES
        for persona, expected in answers.items()
    ],
)
def test_ticket_endpoint_access(
    api, request, customer, agent, state, method, path, body, persona, expected
):
    # given
    ticket = _ticket(state, customer, agent)
    client = api.as_(request.getfixturevalue(persona))

    # when
    url = f"/api/v1/tickets/{ticket.pk}/{path}"
    response = client.get(url) if method == "get" else client.post(url, body)

    # then
    assert response.status_code == expected, response.content


def test_an_unknown_ticket_is_a_404_even_for_staff(api, staff):
    assert api.as_(staff).get("/api/v1/tickets/987654/").status_code == 404


def test_lists_show_each_person_only_their_tickets(
    api, customer, other_customer, agent, other_agent, staff
):
    mine = assigned(TicketFactory(customer=customer), agent)
    waiting = TicketFactory(customer=customer)
    theirs = assigned(TicketFactory(customer=other_customer), other_agent)

    def ids(person) -> set[int]:
        return {t["id"] for t in api.as_(person).get("/api/v1/tickets/").json()["results"]}

    assert ids(customer) == {mine.pk, waiting.pk}
    assert ids(other_customer) == {theirs.pk}
    assert ids(agent) == {mine.pk}
    assert ids(other_agent) == {theirs.pk}
    assert ids(staff) == {mine.pk, waiting.pk, theirs.pk}


def test_lists_filter_by_status(api, customer, agent):
    assigned(TicketFactory(customer=customer), agent)
    waiting = TicketFactory(customer=customer)

    response = api.as_(customer).get("/api/v1/tickets/?status=queued")

    assert [t["id"] for t in response.json()["results"]] == [waiting.pk]
    assert api.as_(customer).get("/api/v1/tickets/?status=lost").status_code == 400


def test_anonymous_callers_see_nothing(api, customer):
    ticket = TicketFactory(customer=customer)

    assert api.as_(None).get("/api/v1/tickets/").status_code in (401, 403)
    assert api.as_(None).get(f"/api/v1/tickets/{ticket.pk}/").status_code in (401, 403)
