"""Whose hand-off tickets are whose: integrations' customers are known by
(integration, external_id), an e-mail address is only a claim, and a person
links those conversations to their account explicitly, once they proved the
address is theirs."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from agents.models import User
from tests.tickets.factories import HANDOFF, new_ticket_body
from tickets import services
from tickets.models import IntegrationCustomer, Message, Ticket

pytestmark = pytest.mark.django_db

VICTIM = "victim@example.org"


@pytest.fixture
def bot(staff):
    from rest_framework.test import APIClient

    raw, _ = services.integration_key_create(actor=staff, integration_name="Acme chatbot")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return client


@pytest.fixture
def sign_up(api, django_capture_on_commit_callbacks):
    """Sign up through the API; the verification mail leaves after the commit."""

    def sign_up(email=VICTIM, password="a-long-pass-phrase-7"):
        with django_capture_on_commit_callbacks(execute=True):
            response = api.post(
                "/api/v1/customers/", {"email": email, "password": password, "name": "Some One"}
            )
        assert response.status_code == 201, response.json()
        return User.objects.get(pk=response.json()["id"])

    return sign_up


def mailed_token() -> str:
    (message,) = [m for m in mail.outbox if "Confirm your e-mail" in m.subject]
    return re.search(r"/verify-email/([^/\s]+)/", message.body).group(1)


def verified(user: User) -> User:
    user.email_verified_at = timezone.now()
    user.save(update_fields=["email_verified_at"])
    return user


def handoff(bot, **customer):
    response = bot.post(
        "/api/v1/tickets/", new_ticket_body(customer=customer, handoff=HANDOFF), format="json"
    )
    assert response.status_code == 201, response.json()
    return Ticket.objects.get(pk=response.json()["id"])


# --- the attack --------------------------------------------------------------


def test_signing_up_first_with_someones_address_gives_nothing_of_theirs(api, bot, sign_up):
    # An attacker signs up with the victim's address before the chatbot hands off.
    attacker = sign_up()
    ticket = handoff(bot, email=VICTIM, external_id="crm-1", name="Vera Victim")

    assert ticket.customer_id != attacker.pk
    client = api.as_(attacker)
    assert client.get("/api/v1/tickets/").json()["results"] == []
    assert client.get(f"/api/v1/tickets/{ticket.pk}/").status_code == 404
    assert client.get(f"/api/v1/tickets/{ticket.pk}/messages/").status_code == 404
    assert client.post(f"/api/v1/tickets/{ticket.pk}/cancel/").status_code == 404
    assert client.post(f"/api/v1/tickets/{ticket.pk}/messages/", {"body": "hi"}).status_code == 404
    # Unverified, they are not even told that such conversations exist.
    assert client.get("/api/v1/customers/me/identities/").json()["results"] == []
    link = IntegrationCustomer.objects.get()
    refused = client.post(f"/api/v1/customers/me/identities/{link.pk}/link/")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "email_not_verified"
    ticket.refresh_from_db()
    assert ticket.customer_id == link.customer_id


def test_an_e_mail_alone_names_a_customer_within_one_integration_only(bot, customer, staff):
    first = handoff(bot, email=customer.email)
    again = handoff(bot, email=customer.email.upper())

    assert first.customer_id == again.customer_id != customer.pk
    link = IntegrationCustomer.objects.get()
    assert (link.external_id, link.email) == (f"mailto:{customer.email}", customer.email)
    # Another integration giving the same address gets a customer of its own.
    raw, _ = services.integration_key_create(actor=staff, integration_name="Other CRM")
    bot.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    elsewhere = handoff(bot, email=customer.email)
    assert elsewhere.customer_id not in {first.customer_id, customer.pk}


def test_an_integrations_customer_cannot_sign_in(bot, client):
    ticket = handoff(bot, email=VICTIM, external_id="crm-1")
    account = ticket.customer

    assert account.email != VICTIM
    assert not account.has_usable_password()
    signed_in = client.post("/login/", {"username": account.email, "password": "!"})
    assert signed_in.status_code == 200  # the form again, not a redirect
    assert "_auth_user_id" not in client.session


# --- verifying the address ------------------------------------------------------


def test_sign_up_mails_a_link_that_verifies_the_address(api, client, sign_up):
    user = sign_up()
    assert user.email_verified_at is None
    token = mailed_token()

    # A mail scanner fetching the link verifies nothing: the page asks for a click.
    assert client.get(f"/verify-email/{token}/").status_code == 200
    user.refresh_from_db()
    assert user.email_verified_at is None

    assert client.post(f"/verify-email/{token}/").status_code == 302
    user.refresh_from_db()
    assert user.email_verified_at is not None
    # And through the API, a second use changes nothing.
    again = api.post("/api/v1/customers/verify/", {"token": token})
    assert again.status_code == 200
    assert again.json()["email_verified"] is True


@pytest.mark.parametrize(
    ("tamper", "code"),
    [
        (lambda token: token[:-3] + "abc", "invalid_token"),
        (lambda token: "not-a-token", "invalid_token"),
    ],
)
def test_a_forged_token_is_refused_naming_it(api, tamper, code, sign_up):
    sign_up()

    response = api.post("/api/v1/customers/verify/", {"token": tamper(mailed_token())})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert "token" in response.json()["error"]["fields"]
    assert not User.objects.filter(email_verified_at__isnull=False).exists()


def test_a_link_expires(api, settings, sign_up):
    sign_up()
    token = mailed_token()
    hours = settings.HUMANLINE["EMAIL_VERIFICATION_HOURS"]

    with time_machine.travel(timezone.now() + timedelta(hours=hours, minutes=1)):
        response = api.post("/api/v1/customers/verify/", {"token": token})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "token_expired"


def test_a_link_is_for_the_address_it_was_sent_to(api, sign_up):
    user = sign_up()
    token = mailed_token()
    user.email = "changed@example.org"
    user.save(update_fields=["email"])

    response = api.post("/api/v1/customers/verify/", {"token": token})

    assert response.status_code == 400
    user.refresh_from_db()
    assert user.email_verified_at is None


def test_a_customer_asks_for_a_new_link_and_a_verified_one_is_told_so(
    api, customer, django_capture_on_commit_callbacks
):
    client = api.as_(customer)

    with django_capture_on_commit_callbacks(execute=True):
        assert client.post("/api/v1/customers/me/verification/").status_code == 202
    assert mail.outbox[-1].to == [customer.email]
    verified(customer)
    again = client.post("/api/v1/customers/me/verification/")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_verified"


def test_only_customers_ask_for_a_link(api, agent):
    assert api.as_(agent).post("/api/v1/customers/me/verification/").status_code == 403


# --- linking --------------------------------------------------------------------


def test_a_verified_customer_links_their_conversations_explicitly(api, bot, sign_up):
    ticket = handoff(bot, email=VICTIM, external_id="crm-1")
    assert bot.post(f"/api/v1/tickets/{ticket.pk}/messages/", {"body": "Still?"}).status_code == 201
    shadow = ticket.customer
    owner = verified(sign_up())
    client = api.as_(owner)

    # Verified, the conversations are offered, not yet given.
    (offered,) = client.get("/api/v1/customers/me/identities/").json()["results"]
    assert offered["integration"] == "Acme chatbot"
    assert (offered["linked"], offered["tickets"]) == (False, 1)
    assert client.get(f"/api/v1/tickets/{ticket.pk}/").status_code == 404

    linked = client.post(f"/api/v1/customers/me/identities/{offered['id']}/link/")

    assert linked.status_code == 200, linked.json()
    assert linked.json()["linked"] is True
    assert client.get(f"/api/v1/tickets/{ticket.pk}/").status_code == 200
    assert Message.objects.get(ticket=ticket).author_id == owner.pk
    link = IntegrationCustomer.objects.get()
    assert (link.customer_id, link.previous_customer_id) == (owner.pk, shadow.pk)
    assert link.linked_at is not None
    shadow.refresh_from_db()
    assert not shadow.is_active
    # The integration's next ticket for that customer opens in the owner's account,
    # and linking again changes nothing.
    assert handoff(bot, external_id="crm-1").customer_id == owner.pk
    assert client.post(f"/api/v1/customers/me/identities/{offered['id']}/link/").status_code == 200


def test_nobody_links_an_identity_that_claims_another_address(api, bot, customer):
    handoff(bot, email=VICTIM, external_id="crm-1")
    link = IntegrationCustomer.objects.get()
    client = api.as_(verified(customer))

    assert client.get("/api/v1/customers/me/identities/").json()["results"] == []
    response = client.post(f"/api/v1/customers/me/identities/{link.pk}/link/")

    assert response.status_code == 404
    link.refresh_from_db()
    assert link.linked_at is None


def test_the_help_centre_asks_to_verify_then_offers_the_link(api, bot, client, sign_up):
    ticket = handoff(bot, email=VICTIM, external_id="crm-1")
    owner = sign_up()
    client.force_login(owner)

    page = client.get("/help/").content.decode()
    assert 'data-testid="verify-email"' in page
    assert 'data-testid="identities"' not in page

    client.post(f"/verify-email/{mailed_token()}/")
    page = client.get("/help/").content.decode()
    assert 'data-testid="verify-email"' not in page
    assert "Acme chatbot" in page
    assert f"#{ticket.pk}" not in page

    link = IntegrationCustomer.objects.get()
    client.post(f"/help/identities/{link.pk}/link/")
    page = client.get("/help/").content.decode()
    assert f"#{ticket.pk}" in page
    assert 'data-testid="identities"' not in page
