"""Opening tickets: customers, bounds, the bot hand-off, idempotent retries."""

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from agents.models import Skill
from tests.tickets.factories import HANDOFF, new_ticket_body
from tickets import services
from tickets.models import Ticket, TicketEvent, TicketStatus

pytestmark = pytest.mark.django_db


def test_customer_opens_a_queued_ticket_with_its_place_in_line(
    api, customer, django_capture_on_commit_callbacks
):
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = api.as_(customer).post("/api/v1/tickets/", new_ticket_body())

    # then
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "queued"
    assert body["queue_position"] == 1
    assert body["eta_seconds"] == 180  # no recent service: the fallback per ticket
    assert body["category"] == "payments" and body["priority"] == "normal"
    ticket = Ticket.objects.get(pk=body["id"])
    assert ticket.customer == customer and ticket.queued_at is not None
    event = TicketEvent.objects.get(ticket=ticket)
    assert (event.from_status, event.to_status, event.actor) == ("", "queued", customer)


@pytest.mark.django_db(transaction=True)  # commits: the fast path runs before the response
@pytest.mark.parametrize("agent_free", [False, True], ids=["queued", "offered at once"])
def test_the_201_body_is_what_reading_the_ticket_gives(api, customer, agent_free):
    """The response is built from the row in memory; it must read as the stored ticket."""
    from tests.factories import AgentFactory
    from tests.marketplace.test_dispatch import go_online

    if agent_free:
        go_online(AgentFactory(languages=["en"], skills=["payments"]))

    created = api.as_(customer).post("/api/v1/tickets/", new_ticket_body(handoff=HANDOFF))
    assert created.status_code == 201, created.json()
    read = api.as_(customer).get(f"/api/v1/tickets/{created.json()['id']}/")

    assert created.json() == read.json()
    assert created.json()["status"] == ("offered" if agent_free else "queued")
    assert created.json()["handoff"]["summary"] == HANDOFF["summary"]


def test_language_defaults_to_the_customers(api, customer):
    customer.language = "pt"
    customer.save()

    response = api.as_(customer).post("/api/v1/tickets/", new_ticket_body())

    assert response.json()["language"] == "pt"


def test_new_ticket_triggers_the_dispatch_hook_after_commit(
    api, customer, queued_hook, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api.as_(customer).post("/api/v1/tickets/", new_ticket_body())
    assert queued_hook == []  # nothing before commit

    for callback in callbacks:
        callback()

    assert queued_hook == [response.json()["id"]]


def test_the_handoff_is_kept_whole(api, customer):
    response = api.as_(customer).post("/api/v1/tickets/", new_ticket_body(handoff=HANDOFF))

    assert response.status_code == 201, response.json()
    handoff = response.json()["handoff"]
    assert handoff["summary"] == HANDOFF["summary"]
    assert handoff["intent"] == "refund_double_charge"
    assert [turn["text"] for turn in handoff["transcript"]] == [
        turn["text"] for turn in HANDOFF["transcript"]
    ]
    assert handoff["transcript"][0]["role"] == "user"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"subject": "x" * 201}, "subject"),
        ({"subject": ""}, "subject"),
        ({"body": "x" * 10_001}, "body"),
        ({"category": "astrology"}, "category"),
        ({"language": "xx"}, "language"),
        ({"priority": "whenever"}, "priority"),
        ({"handoff": {"transcript": [{"role": "wizard", "text": "hi"}]}}, "handoff"),
        ({"handoff": {"transcript": [{"role": "user", "text": "x" * 4001}]}}, "handoff"),
        ({"handoff": {"transcript": [{"role": "user", "text": "hi"}] * 201}}, "handoff"),
        ({"handoff": {"summary": "x" * 2001}}, "handoff"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api, customer, overrides, field):
    response = api.as_(customer).post("/api/v1/tickets/", new_ticket_body(**overrides))

    assert response.status_code == 400
    error = response.json()["error"]
    assert any(name.startswith(field) for name in error["fields"]), error
    assert not Ticket.objects.exists()


def test_a_retired_skill_is_no_longer_a_category(api, customer):
    client = api.as_(customer)
    assert client.post("/api/v1/tickets/", new_ticket_body(category="refunds")).status_code == 201
    Skill.objects.filter(slug="refunds").update(is_active=False)

    response = client.post("/api/v1/tickets/", new_ticket_body(category="refunds"))

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["category"] == [
        "Unknown category 'refunds'; use a skill from the catalog."
    ]
    assert Ticket.objects.count() == 1


def test_a_transcript_over_the_total_size_is_a_400(api, customer):
    # 200 turns of 400 characters fit each bound on its own but not the 64 KiB total.
    turns = [{"role": "user", "text": "y" * 400}] * 200

    response = api.as_(customer).post(
        "/api/v1/tickets/", new_ticket_body(handoff={"transcript": turns})
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "transcript_too_large"


def test_customers_may_not_open_urgent_tickets(api, customer):
    response = api.as_(customer).post("/api/v1/tickets/", new_ticket_body(priority="urgent"))

    assert response.status_code == 400
    assert "priority" in response.json()["error"]["fields"]


@pytest.mark.parametrize("persona", ["agent", "staff"])
def test_agents_and_staff_do_not_open_tickets(api, persona, request):
    response = api.as_(request.getfixturevalue(persona)).post("/api/v1/tickets/", new_ticket_body())

    assert response.status_code == 403


def test_anonymous_callers_cannot_open_tickets(api, db):
    response = api.as_(None).post("/api/v1/tickets/", new_ticket_body())

    assert response.status_code in (401, 403)


# --- Idempotency-Key ----------------------------------------------------------


def test_a_retry_with_the_same_key_and_body_returns_the_original_ticket(api, customer):
    client = api.as_(customer)
    first = client.post("/api/v1/tickets/", new_ticket_body(), HTTP_IDEMPOTENCY_KEY="k-1")

    again = client.post("/api/v1/tickets/", new_ticket_body(), HTTP_IDEMPOTENCY_KEY="k-1")

    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again["Idempotent-Replayed"] == "true"
    assert Ticket.objects.count() == 1


def test_the_same_key_with_a_different_body_is_a_422(api, customer):
    client = api.as_(customer)
    client.post("/api/v1/tickets/", new_ticket_body(), HTTP_IDEMPOTENCY_KEY="k-1")

    response = client.post(
        "/api/v1/tickets/", new_ticket_body(subject="Other"), HTTP_IDEMPOTENCY_KEY="k-1"
    )

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert Ticket.objects.count() == 1


def test_keys_are_per_caller(api, customer, other_customer):
    api.as_(customer).post("/api/v1/tickets/", new_ticket_body(), HTTP_IDEMPOTENCY_KEY="k-1")

    response = api.as_(other_customer).post(
        "/api/v1/tickets/", new_ticket_body(), HTTP_IDEMPOTENCY_KEY="k-1"
    )

    assert response.status_code == 201
    assert Ticket.objects.count() == 2
    assert Ticket.objects.get(pk=response.json()["id"]).customer == other_customer


def test_a_key_expires_after_24_hours(api, customer):
    client = api.as_(customer)
    first = client.post("/api/v1/tickets/", new_ticket_body(), HTTP_IDEMPOTENCY_KEY="k-1")

    with time_machine.travel(timezone.now() + timedelta(hours=23, minutes=59)):
        within = client.post("/api/v1/tickets/", new_ticket_body(), HTTP_IDEMPOTENCY_KEY="k-1")
    with time_machine.travel(timezone.now() + timedelta(hours=24, minutes=1)):
        after = client.post("/api/v1/tickets/", new_ticket_body(), HTTP_IDEMPOTENCY_KEY="k-1")

    assert within.json()["id"] == first.json()["id"]
    assert after.status_code == 201 and after.json()["id"] != first.json()["id"]


def test_a_failed_request_does_not_burn_its_key(api, customer):
    client = api.as_(customer)
    bad = client.post(
        "/api/v1/tickets/", new_ticket_body(category="astrology"), HTTP_IDEMPOTENCY_KEY="k-1"
    )
    assert bad.status_code == 400

    good = client.post("/api/v1/tickets/", new_ticket_body(), HTTP_IDEMPOTENCY_KEY="k-1")

    assert good.status_code == 201


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_with_one_key_create_exactly_one_ticket(customer):
    # given: eight clients retrying the same request at the same moment
    token = Token.objects.create(user=customer).key
    barrier = threading.Barrier(8)
    results: list = []

    def retry():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        try:
            barrier.wait(timeout=10)
            response = client.post(
                "/api/v1/tickets/", new_ticket_body(), format="json", HTTP_IDEMPOTENCY_KEY="race"
            )
            results.append((response.status_code, response.json().get("id")))
        finally:
            connection.close()

    # when
    threads = [threading.Thread(target=retry) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    # then
    assert len(results) == 8
    assert {status for status, _ in results} == {201}
    assert len({ticket_id for _, ticket_id in results}) == 1
    assert Ticket.objects.count() == 1
    assert Ticket.objects.get().status == TicketStatus.QUEUED


def _written(ticket_id: int) -> tuple[dict, dict]:
    """Every column of a ticket and of its first audit row, but ids and times."""
    times = {"id", "ticket_id", "created_at", "queued_at", "status_changed_at"}
    ticket = {
        k: v
        for k, v in Ticket.objects.filter(pk=ticket_id).values().get().items()
        if k not in times
    }
    event = {
        k: v
        for k, v in TicketEvent.objects.filter(ticket_id=ticket_id).values().get().items()
        if k not in times
    }
    return ticket, event


@pytest.mark.postgres("PostgreSQL opens a ticket in one prepared statement; SQLite through the ORM")
def test_the_one_statement_writes_what_the_orm_writes(customer):
    new = services.NewTicket(
        subject="Charged twice",
        body="Two payments of 20 EUR.",
        category="payments",
        language="pt",
        priority="high",
        handoff=services.Handoff(**HANDOFF),
    )

    with CaptureQueriesContext(connection) as queries:
        by_statement = services.ticket_open(caller=customer, new=new).ticket
    by_orm = services.ticket_open(caller=customer, new=new, idempotency_key="k-1").ticket

    assert _written(by_statement.pk) == _written(by_orm.pk)
    sent = [q["sql"] for q in queries.captured_queries]
    writes = [sql for sql in sent if sql.startswith("EXECUTE humanline_ticket_open")]
    assert len(writes) == 1, sent  # (after a PREPARE on this connection's first use)
    assert not [sql for sql in sent if sql.startswith(("SAVEPOINT", "INSERT"))], sent
    stored = Ticket.objects.get(pk=by_statement.pk)
    assert stored.handoff_transcript == HANDOFF["transcript"]  # the JSON came back as JSON
    assert (stored.subject, stored.language, stored.priority) == ("Charged twice", "pt", "high")
    assert (by_statement._state.adding, by_statement.customer) == (False, customer)


@pytest.mark.django_db(transaction=True)  # real commits from real threads
def test_customers_opening_tickets_at_the_same_moment_all_get_their_ticket():
    """Eight people at once, with agents free, so that each commit also runs the fast
    path's offer: on SQLite writers take turns (an IMMEDIATE transaction waits for the
    write lock) and none of them sees a locked-database error."""
    from tests.factories import AgentFactory, UserFactory
    from tests.marketplace.test_dispatch import go_online

    # given: three free agents and eight customers about to press "send"
    go_online(*[AgentFactory(languages=["en"], skills=["payments"]) for _ in range(3)])
    tokens = [Token.objects.create(user=UserFactory()).key for _ in range(8)]
    barrier = threading.Barrier(len(tokens))
    results: list = []

    def open_ticket(token):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        try:
            barrier.wait(timeout=10)
            response = client.post("/api/v1/tickets/", new_ticket_body(), format="json")
            results.append((response.status_code, response.json()))
        except Exception as error:  # the test client raises what would have been a 500
            results.append((500, repr(error)))
        finally:
            connection.close()

    # when
    threads = [threading.Thread(target=open_ticket, args=(token,)) for token in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # then
    assert [status for status, _ in results] == [201] * 8, results
    assert Ticket.objects.count() == 8
    assert {body["id"] for _, body in results} == set(Ticket.objects.values_list("id", flat=True))
    offered = Ticket.objects.filter(status=TicketStatus.OFFERED).count()
    assert offered == 3  # one offer per free agent, the rest wait in line
