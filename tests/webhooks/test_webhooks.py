"""Integrations hear back: signed deliveries to a real HTTP receiver on loopback,
retried, logged, switched off when they keep failing, and sent again on demand."""

import itertools
import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import time_machine
from django.db import transaction
from django.utils import timezone

from outbox.models import Mail
from tests.conftest import _free_port
from tests.tickets.factories import new_ticket_body
from tests.webhooks.receiver import Receiver
from tickets import services as tickets
from tickets.models import Ticket
from webhooks import services, signing
from webhooks.models import Attempt, Delivery, DeliveryStatus, Endpoint, Event

pytestmark = pytest.mark.django_db

ALL = ["ticket.assigned", "ticket.message", "ticket.status", "ticket.rating", "ticket.waiting"]


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def bot(api, staff):
    raw, key = tickets.integration_key_create(actor=staff, integration_name="Acme chatbot")
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    api.integration = key.integration
    return api


@pytest.fixture
def endpoint(api, staff, bot, receiver):
    staff_api = type(api)()
    staff_api.force_authenticate(staff)
    made = staff_api.post(
        f"/api/v1/admin/integrations/{bot.integration.pk}/webhooks/",
        {"url": receiver.url, "events": ALL},
        format="json",
    )
    assert made.status_code == 201, made.json()
    return Endpoint.objects.get(pk=made.json()["id"]), made.json()["secret"]


def opened(bot, language: str | None = None, **customer) -> Ticket:
    body = new_ticket_body(customer=customer or {"external_id": "crm-1"})
    if language:
        body["language"] = language
    response = bot.post("/api/v1/tickets/", body, format="json")
    assert response.status_code == 201, response.json()
    return Ticket.objects.get(pk=response.json()["id"])


def test_the_integration_hears_each_change_signed_and_in_order(bot, endpoint, receiver, agent):
    _, secret = endpoint
    ticket = opened(bot)
    tickets.ticket_assign(ticket_id=ticket.pk, agent_id=agent.pk)
    tickets.message_post(ticket_id=ticket.pk, caller=agent.user, body="Hi, I'm on it.")
    assert bot.post(f"/api/v1/tickets/{ticket.pk}/messages/", {"body": "Thanks"}).status_code == 201
    tickets.ticket_resolve(ticket_id=ticket.pk, caller=agent.user)
    assert bot.post(f"/api/v1/tickets/{ticket.pk}/rating/", {"score": 5}).status_code == 201

    # Nothing reached the receiver while the requests ran: the sweep sends.
    assert receiver.requests == []
    assert services.deliver_due() == 4

    events = receiver.events()
    assert [e["type"] for e in events] == [
        "ticket.assigned",
        "ticket.message",  # the agent's; the customer's own message is not sent back
        "ticket.status",
        "ticket.rating",
    ]
    assert events[0]["data"]["agent"]["first_name"] == agent.user.first_name
    assert events[0]["data"]["ticket"] == {
        "id": ticket.pk,
        "status": "assigned",
        "customer": {"external_id": "crm-1"},
    }
    assert events[1]["data"]["message"]["body"] == "Hi, I'm on it."
    assert events[2]["data"]["status"] == "resolved"
    assert events[3]["data"]["rating"] == {"score": 5, "comment": ""}
    assert len({e["id"] for e in events}) == 4
    assert [e["created"] for e in events] == sorted(e["created"] for e in events)
    for request in receiver.requests:
        header = request["headers"][signing.HEADER]
        assert signing.verify(secret, header, request["body"])
        assert not signing.verify(secret, header, request["body"] + b" ")
        assert request["headers"]["Humanline-Event-Id"] == json.loads(request["body"])["id"]
    assert Delivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count() == 4
    assert services.deliver_due() == 0  # each went once


def test_a_reopened_ticket_and_a_cancelled_one_are_told(bot, endpoint, receiver, agent):
    ticket = opened(bot)
    tickets.ticket_assign(ticket_id=ticket.pk, agent_id=agent.pk)
    tickets.ticket_resolve(ticket_id=ticket.pk, caller=agent.user)
    assert bot.post(f"/api/v1/tickets/{ticket.pk}/reopen/").status_code == 200
    other = opened(bot, external_id="crm-2")
    assert bot.post(f"/api/v1/tickets/{other.pk}/cancel/").status_code == 200

    services.deliver_due()

    told = [(e["type"], e["data"].get("status")) for e in receiver.events()]
    assert ("ticket.status", "reopened") in told
    assert ("ticket.status", "cancelled") in told


def test_a_customers_own_tickets_tell_no_integration(api, customer, endpoint, receiver, agent):
    response = api.as_(customer).post("/api/v1/tickets/", new_ticket_body())
    tickets.ticket_assign(ticket_id=response.json()["id"], agent_id=agent.pk)

    assert not Event.objects.exists()
    assert services.deliver_due() == 0


def test_a_failed_delivery_is_retried_with_back_off_until_it_succeeds(
    bot, endpoint, receiver, agent
):
    receiver.answers = [(500, {}, b"busy")]
    ticket = opened(bot)
    tickets.ticket_assign(ticket_id=ticket.pk, agent_id=agent.pk)

    assert services.deliver_due() == 1
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 1)
    assert delivery.next_attempt_at > timezone.now() + timedelta(seconds=25)
    assert services.deliver_due() == 0  # not due yet

    with time_machine.travel(timezone.now() + timedelta(seconds=31)):
        assert services.deliver_due() == 1
        assert services.deliver_due() == 0

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SUCCEEDED, 2)
    log = list(Attempt.objects.order_by("id").values_list("status_code", "error"))
    assert log == [(500, "The receiver answered 500."), (200, "")]
    assert len(receiver.requests) == 2
    assert receiver.events()[0]["id"] == receiver.events()[1]["id"]  # the same event again


def test_the_default_back_off_grows_and_spans_about_a_day():
    waits = services.retry_schedule()

    assert waits == sorted(waits) and waits[0] <= 60
    assert all(later <= 5 * earlier for earlier, later in itertools.pairwise(waits))
    assert 20 * 3600 <= sum(waits) <= 28 * 3600


def test_an_endpoint_that_keeps_failing_is_switched_off_and_staff_told(
    bot, endpoint, receiver, agent, settings, staff
):
    settings.HUMANLINE = {
        **settings.HUMANLINE,
        "WEBHOOK_DISABLE_AFTER": 3,
        "WEBHOOK_RETRY_SECONDS": "0,0,0,0,0",
    }
    receiver.answers = [(500, {}, b"down")] * 10
    ticket = opened(bot)
    tickets.ticket_assign(ticket_id=ticket.pk, agent_id=agent.pk)

    for _ in range(5):
        services.deliver_due()

    hook, _ = endpoint
    hook.refresh_from_db()
    assert not hook.active
    assert "3 failed attempts in a row" in hook.disabled_reason
    assert len(receiver.requests) == 3
    assert Mail.objects.filter(to=staff.email, subject__contains="stopped").exists()
    # Switched on again, it starts afresh, and the waiting delivery goes out.
    receiver.answers = []
    services.endpoint_update(endpoint_id=hook.pk, active=True)
    assert services.deliver_due() == 1
    assert Delivery.objects.get().status == DeliveryStatus.SUCCEEDED


def test_nothing_is_sent_for_a_change_that_rolled_back(bot, endpoint, receiver, agent):
    ticket = opened(bot)

    with pytest.raises(RuntimeError), transaction.atomic():
        tickets.ticket_assign(ticket_id=ticket.pk, agent_id=agent.pk)
        raise RuntimeError("the request failed after the assignment")

    assert not Event.objects.exists()
    assert services.deliver_due() == 0
    assert receiver.requests == []


def test_staff_redeliver_from_the_log(api, staff, bot, endpoint, receiver, agent):
    ticket = opened(bot)
    tickets.ticket_assign(ticket_id=ticket.pk, agent_id=agent.pk)
    services.deliver_due()
    hook, _ = endpoint
    api.force_authenticate(staff)
    base = f"/api/v1/admin/integrations/{bot.integration.pk}/webhooks/{hook.pk}"

    (logged,) = api.get(f"{base}/deliveries/").json()["results"]
    assert logged["status"] == "succeeded"
    assert logged["attempt_log"][0]["status_code"] == 200
    again = api.post(f"{base}/deliveries/{logged['id']}/redeliver/")
    assert again.status_code == 202
    services.deliver_due()

    assert [e["id"] for e in receiver.events()] == [logged["event_id"]] * 2
    assert "secret" not in api.get(f"{base}/").json()


@pytest.mark.parametrize("persona", ["customer", "agent"])
def test_only_staff_manage_endpoints(api, persona, request, bot):
    client = api.as_(request.getfixturevalue(persona))

    response = client.get(f"/api/v1/admin/integrations/{bot.integration.pk}/webhooks/")

    assert response.status_code == 403


def test_an_endpoint_must_be_https_and_public_where_required(api, staff, bot, settings):
    api.force_authenticate(staff)
    path = f"/api/v1/admin/integrations/{bot.integration.pk}/webhooks/"
    settings.HUMANLINE = {
        **settings.HUMANLINE,
        "WEBHOOK_REQUIRE_HTTPS": True,
        "WEBHOOK_ALLOW_PRIVATE": False,
    }

    plain = api.post(path, {"url": "http://hooks.example.com/x", "events": ALL}, format="json")
    inside = api.post(path, {"url": "https://127.0.0.1/x", "events": ALL}, format="json")
    metadata = api.post(path, {"url": "https://169.254.169.254/x", "events": ALL}, format="json")
    unknown = api.post(path, {"url": "https://a.example/x", "events": ["x"]}, format="json")

    for response in (plain, inside, metadata):
        assert response.status_code == 400
        assert "url" in response.json()["error"]["fields"]
    assert unknown.status_code == 400
    assert "events" in unknown.json()["error"]["fields"]
    assert not Endpoint.objects.exists()


def test_a_destination_is_checked_again_at_each_send(bot, endpoint, receiver, agent, settings):
    ticket = opened(bot)
    tickets.ticket_assign(ticket_id=ticket.pk, agent_id=agent.pk)
    settings.HUMANLINE = {**settings.HUMANLINE, "WEBHOOK_ALLOW_PRIVATE": False}

    services.deliver_due()

    assert receiver.requests == []
    assert "private or local address" in Attempt.objects.get().error


def test_redirects_are_not_followed_and_the_answer_is_read_capped(bot, endpoint, receiver, agent):
    receiver.answers = [(302, {"Location": "/elsewhere"}, b""), (200, {}, b"x" * 2_000_000)]
    ticket = opened(bot)
    tickets.ticket_assign(ticket_id=ticket.pk, agent_id=agent.pk)

    services.deliver_due()
    with time_machine.travel(timezone.now() + timedelta(seconds=31)):
        services.deliver_due()

    assert [r["path"] for r in receiver.requests] == ["/hooks", "/hooks"]
    first, second = Attempt.objects.order_by("id")
    assert (first.status_code, second.status_code) == (302, 200)
    assert len(second.response_excerpt) == 500


def test_a_receiver_that_drips_its_answer_is_cut_off_at_the_timeout(
    bot, endpoint, receiver, agent, settings
):
    # given: a receiver that answers at once, then sends its body a byte every
    # 0.2 s, each byte well inside any per-read timeout
    settings.HUMANLINE = {**settings.HUMANLINE, "WEBHOOK_TIMEOUT_SECONDS": 1.0}
    receiver.answers = [(200, {}, b"x" * 100)]
    receiver.drip_seconds = 0.2
    ticket = opened(bot)
    tickets.ticket_assign(ticket_id=ticket.pk, agent_id=agent.pk)

    # when: the delivery is tried
    started = time.monotonic()
    services.deliver_due()

    # then: the attempt as a whole stopped at the timeout, and will be tried again
    assert time.monotonic() - started < 5  # the whole answer would take 20 s
    attempt = Attempt.objects.get()
    assert attempt.status_code is None
    assert attempt.error == "No complete answer within 1 s."
    assert 900 <= attempt.duration_ms < 5000
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 1)


def test_a_signature_too_old_is_refused():
    body = b'{"id": "evt"}'
    header = signing.sign("whsec_x", body, timestamp=int(time.time()) - 301)

    assert not signing.verify("whsec_x", header, body)
    assert signing.verify("whsec_x", header, body, now=time.time() - 2)
    assert not signing.verify("whsec_y", header, body, now=time.time() - 2)
    assert not signing.verify("whsec_x", "garbage", body)


def test_the_example_receiver_accepts_a_real_delivery_and_refuses_a_forgery(
    bot, endpoint, agent, settings
):
    hook, secret = endpoint
    port = _free_port()
    example = Path(__file__).resolve().parents[2] / "examples" / "webhook_receiver.py"
    process = subprocess.Popen(
        [sys.executable, str(example), str(port)],
        env={"WEBHOOK_SECRET": secret, "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(url, timeout=0.5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the example receiver did not start"
                time.sleep(0.1)  # waiting for another process to bind its port
        services.endpoint_update(endpoint_id=hook.pk, url=url)
        ticket = opened(bot)
        tickets.ticket_assign(ticket_id=ticket.pk, agent_id=agent.pk)

        services.deliver_due()

        assert Attempt.objects.get().status_code == 204
        forged = httpx.post(
            url,
            content=b'{"id": "evt_forged"}',
            headers={signing.HEADER: signing.sign("whsec_wrong", b'{"id": "evt_forged"}')},
        )
        assert forged.status_code == 400
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_ticket_waiting_past_its_target_is_told_once(bot, endpoint, receiver):
    from tickets.models import Rung

    ticket = opened(bot)
    notice = {"code": "no_agent_online", "message": "Nobody is online right now."}

    tickets.ticket_escalate(ticket_id=ticket.pk, to=Rung.STAFF_ALERT, reasons={}, notice=notice)
    assert services.deliver_due() == 0  # staff alerted: not yet the customer's business
    tickets.ticket_escalate(ticket_id=ticket.pk, to=Rung.CUSTOMER_NOTICE, reasons={}, notice=notice)
    tickets.ticket_escalate(ticket_id=ticket.pk, to=Rung.WIDER_POOL, reasons={}, notice=notice)
    services.deliver_due()

    (told,) = receiver.events()
    assert told["type"] == "ticket.waiting"
    assert told["data"]["waiting"] == notice


def _json_schema(node):
    """OpenAPI 3.0's ``nullable`` as JSON Schema's null type, throughout; and an
    object may hold only the properties the schema names (a field sent but not
    described fails)."""
    if isinstance(node, dict):
        node = {key: _json_schema(value) for key, value in node.items()}
        if node.pop("nullable", False) and "type" in node:
            node["type"] = [node["type"], "null"]
        if node.get("type") == "object" and "properties" in node:
            node.setdefault("additionalProperties", False)
        return node
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    return node


def test_each_delivery_is_the_body_the_schema_describes(api, bot, endpoint, receiver, agent):
    import jsonschema

    from marketplace.services import escalation

    # A ticket in a language nobody online speaks, past its target: the ladder
    # tells the customer (and the integration) why, as the sweep does.
    ticket = opened(bot, external_id="crm-9", language="mt")
    escalation.escalate_overdue(now=timezone.now() + timedelta(hours=2))
    assert Event.objects.filter(type="ticket.waiting").exists()
    tickets.ticket_assign(ticket_id=ticket.pk, agent_id=agent.pk)
    tickets.message_post(ticket_id=ticket.pk, caller=agent.user, body="On it.")
    tickets.ticket_resolve(ticket_id=ticket.pk, caller=agent.user)
    bot.post(f"/api/v1/tickets/{ticket.pk}/rating/", {"score": 4, "comment": "Quick"})
    services.deliver_due()

    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    callbacks = schema["paths"]["/api/v1/admin/integrations/{integration_id}/webhooks/"]["post"][
        "callbacks"
    ]
    components = _json_schema(schema["components"])
    seen = set()
    for event in receiver.events():
        (operation,) = callbacks[event["type"]].values()
        body = operation["post"]["requestBody"]["content"]["application/json"]["schema"]
        jsonschema.validate(event, {**_json_schema(body), "components": components})
        seen.add(event["type"])
    assert seen == set(ALL)
