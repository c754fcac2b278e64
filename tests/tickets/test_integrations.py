"""Integrations: API keys issued by staff, tickets opened on behalf of customers."""

import hashlib

import pytest

from agents.models import Role, User
from tests.tickets.factories import HANDOFF, TicketFactory, new_ticket_body
from tickets import services
from tickets.models import IntegrationApiKey, IntegrationCustomer, Ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def key(staff):
    raw, _ = services.integration_key_create(actor=staff, integration_name="Acme chatbot")
    return raw


@pytest.fixture
def bot(api, key):
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return api


def test_staff_create_a_key_that_is_shown_once_and_stored_hashed(api, staff):
    # when
    response = api.as_(staff).post(
        "/api/v1/admin/integrations/keys/", {"integration": "Acme chatbot", "name": "prod"}
    )

    # then
    assert response.status_code == 201, response.json()
    raw = response.json()["key"]
    stored = IntegrationApiKey.objects.get(pk=response.json()["id"])
    assert stored.digest == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in {stored.prefix, stored.digest, stored.name}
    assert raw.split("_")[1] == stored.prefix
    listing = api.get("/api/v1/admin/integrations/keys/").json()
    assert listing["count"] == 1
    assert "key" not in listing["results"][0]
    assert listing["results"][0]["integration"] == "Acme chatbot"


@pytest.mark.parametrize("persona", ["customer", "agent"])
def test_only_staff_manage_keys(api, persona, request, key):
    client = api.as_(request.getfixturevalue(persona))

    assert client.get("/api/v1/admin/integrations/keys/").status_code == 403
    assert client.post("/api/v1/admin/integrations/keys/", {"integration": "x"}).status_code == 403
    key_id = IntegrationApiKey.objects.get().pk
    assert client.post(f"/api/v1/admin/integrations/keys/{key_id}/revoke/").status_code == 403


def test_a_revoked_key_no_longer_authenticates(api, staff, key):
    key_id = IntegrationApiKey.objects.get().pk
    revoke = api.as_(staff).post(f"/api/v1/admin/integrations/keys/{key_id}/revoke/")
    assert revoke.status_code == 200 and revoke.json()["active"] is False

    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    response = api.post("/api/v1/tickets/", new_ticket_body(customer={"email": "n@x.org"}))

    assert response.status_code in (401, 403)
    assert response.json()["error"]["code"] == "authentication_failed"
    assert (
        api.as_(staff).post(f"/api/v1/admin/integrations/keys/{key_id}/revoke/").status_code == 409
    )


def test_a_wrong_key_is_refused(api, key):
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {key[:-2]}xx")

    response = api.get("/api/v1/tickets/")

    assert response.status_code in (401, 403)


def test_an_integration_opens_a_ticket_for_a_new_customer_by_email(bot):
    response = bot.post(
        "/api/v1/tickets/",
        new_ticket_body(
            customer={"email": "Nina@Example.org", "name": "Nina"},
            handoff=HANDOFF,
            priority="urgent",
            language="pt",
        ),
    )

    assert response.status_code == 201, response.json()
    ticket = Ticket.objects.get(pk=response.json()["id"])
    assert ticket.priority == "urgent"
    assert ticket.integration.name == "Acme chatbot"
    customer = ticket.customer
    assert (customer.name, customer.role) == ("Nina", Role.CUSTOMER)
    assert not customer.has_usable_password()
    # The address is the integration's claim, kept with its customer, never a key.
    link = IntegrationCustomer.objects.get(customer=customer)
    assert (link.email, link.external_id) == ("nina@example.org", "mailto:nina@example.org")
    assert response.json()["handoff"]["summary"] == HANDOFF["summary"]


def test_an_integration_reuses_the_customer_it_named_by_external_id(bot):
    first = bot.post("/api/v1/tickets/", new_ticket_body(customer={"external_id": "crm-42"}))
    second = bot.post(
        "/api/v1/tickets/", new_ticket_body(subject="Again", customer={"external_id": "crm-42"})
    )

    assert first.status_code == second.status_code == 201
    assert first.json()["customer"]["id"] == second.json()["customer"]["id"]
    assert IntegrationCustomer.objects.get().external_id == "crm-42"


def test_an_integration_never_reaches_an_account_through_its_address(bot, customer, agent):
    for email in (customer.email, agent.user.email):
        response = bot.post("/api/v1/tickets/", new_ticket_body(customer={"email": email}))

        assert response.status_code == 201
        assert Ticket.objects.get(pk=response.json()["id"]).customer_id not in {
            customer.pk,
            agent.user.pk,
        }
        assert User.objects.filter(email=email).count() == 1


def test_an_integration_must_name_the_customer(bot):
    response = bot.post("/api/v1/tickets/", new_ticket_body())

    assert response.status_code == 400
    assert "customer" in response.json()["error"]["fields"]


def test_an_integration_sees_only_the_tickets_it_created(bot, customer, staff):
    mine = bot.post("/api/v1/tickets/", new_ticket_body(customer={"email": customer.email}))
    theirs = TicketFactory(customer=customer)  # the customer's own, from the help centre
    services.integration_key_create(actor=staff, integration_name="Other CRM")
    other = TicketFactory(customer=customer)
    other.integration = IntegrationApiKey.objects.get(integration__name="Other CRM").integration
    other.save()

    listing = bot.get("/api/v1/tickets/").json()

    assert [t["id"] for t in listing["results"]] == [mine.json()["id"]]
    assert bot.get(f"/api/v1/tickets/{theirs.pk}/").status_code == 404
    assert bot.get(f"/api/v1/tickets/{other.pk}/").status_code == 404
    assert bot.get(f"/api/v1/tickets/{mine.json()['id']}/").status_code == 200


def test_an_integrations_idempotency_keys_are_its_own(bot, customer):
    body = new_ticket_body(customer={"email": customer.email})
    first = bot.post("/api/v1/tickets/", body, HTTP_IDEMPOTENCY_KEY="k")
    again = bot.post("/api/v1/tickets/", body, HTTP_IDEMPOTENCY_KEY="k")
    other_customer = bot.post(
        "/api/v1/tickets/", new_ticket_body(customer={"email": "z@x.org"}), HTTP_IDEMPOTENCY_KEY="k"
    )

    assert again.json()["id"] == first.json()["id"]
    assert other_customer.status_code == 422


def test_integration_keys_reach_only_ticket_endpoints(bot):
    assert bot.get("/api/v1/admin/agents/").status_code in (401, 403)
    assert bot.get("/api/v1/agents/me/").status_code in (401, 403)


def test_staff_create_a_key_in_the_django_admin_and_see_it_once(client, staff):
    # given: an operations superuser (the Django admin checks model permissions)
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    _, existing = services.integration_key_create(actor=staff, integration_name="Acme")

    # when
    response = client.post(
        "/django-admin/tickets/integrationapikey/add/",
        {"integration": existing.integration_id, "name": "admin made"},
        follow=True,
    )

    # then
    assert response.status_code == 200
    made = IntegrationApiKey.objects.get(name="admin made")
    shown = [str(m) for m in response.context["messages"]]
    assert any(f"hl_{made.prefix}_" in text for text in shown)
    assert made.created_by == staff


def test_an_integration_relays_its_customers_messages_and_reads_the_reply(bot, agent):
    opened = bot.post("/api/v1/tickets/", new_ticket_body(customer={"external_id": "crm-7"}))
    ticket = Ticket.objects.get(pk=opened.json()["id"])
    services.ticket_assign(ticket_id=ticket.pk, agent_id=agent.pk)
    services.message_post(ticket_id=ticket.pk, caller=agent.user, body="How can I help?")

    sent = bot.post(f"/api/v1/tickets/{ticket.pk}/messages/", {"body": "It's about my card"})
    read = bot.get(f"/api/v1/tickets/{ticket.pk}/messages/")

    assert sent.status_code == 201
    assert sent.json()["author"]["id"] == ticket.customer_id
    assert [m["author_role"] for m in read.json()["results"]] == ["agent", "customer"]


def test_an_integrations_customer_holds_three_open_tickets_at_most(bot):
    codes = [
        bot.post("/api/v1/tickets/", new_ticket_body(customer={"external_id": "crm-7"})).status_code
        for _ in range(4)
    ]
    other = bot.post("/api/v1/tickets/", new_ticket_body(customer={"external_id": "crm-8"}))

    assert codes == [201, 201, 201, 429]
    assert other.status_code == 201
