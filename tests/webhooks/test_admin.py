"""Staff manage webhook endpoints in the Django admin with the API's rules: the secret
shown once, the same destination checks, the services' switch-on, the log and redeliver."""

import pytest
from django.contrib.messages import get_messages

from tests.tickets.factories import new_ticket_body
from tests.webhooks.receiver import Receiver
from tickets import services as tickets
from webhooks import services
from webhooks.models import Attempt, Delivery, DeliveryStatus, Endpoint

pytestmark = pytest.mark.django_db

ADMIN = "/django-admin/webhooks"


@pytest.fixture
def admin_client(client, staff):
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    return client


@pytest.fixture
def integration(staff):
    raw, key = tickets.integration_key_create(actor=staff, integration_name="Acme chatbot")
    key.integration.raw_key = raw
    return key.integration


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def test_staff_add_an_endpoint_and_see_its_secret_once(admin_client, staff, integration):
    # when: staff add an endpoint in the admin
    response = admin_client.post(
        f"{ADMIN}/endpoint/add/",
        {
            "integration": integration.pk,
            "url": "https://hooks.example.com/humanline",
            "events": ["ticket.assigned", "ticket.status"],
            "active": "on",
        },
        follow=True,
    )

    # then: it is made by the service, and the page after tells its secret
    assert response.redirect_chain, response.content[:3000]
    endpoint = Endpoint.objects.get()
    assert endpoint.events == ["ticket.assigned", "ticket.status"]
    assert endpoint.created_by == staff
    assert f"Signing secret (shown once): {endpoint.secret}" in response.content.decode()
    # and never again
    for page in (f"{ADMIN}/endpoint/{endpoint.pk}/change/", f"{ADMIN}/endpoint/"):
        assert endpoint.secret not in admin_client.get(page).content.decode()


def test_the_admin_refuses_what_the_api_refuses(admin_client, integration, settings):
    settings.HUMANLINE = {
        **settings.HUMANLINE,
        "WEBHOOK_REQUIRE_HTTPS": True,
        "WEBHOOK_ALLOW_PRIVATE": False,
    }
    for url, said in [
        ("http://hooks.example.com/x", "Use an https URL."),
        ("https://169.254.169.254/latest/meta-data", "a private or local address"),
        ("https://127.0.0.1/x", "a private or local address"),
    ]:
        response = admin_client.post(
            f"{ADMIN}/endpoint/add/",
            {"integration": integration.pk, "url": url, "events": ["ticket.assigned"]},
        )
        assert response.status_code == 200
        assert said in response.content.decode()
    unknown = admin_client.post(
        f"{ADMIN}/endpoint/add/",
        {"integration": integration.pk, "url": "https://a.example/x", "events": ["ticket.x"]},
    )
    assert unknown.status_code == 200
    assert not Endpoint.objects.exists()


def test_switching_an_endpoint_on_again_in_the_admin_starts_its_count_afresh(
    admin_client, staff, integration
):
    endpoint = services.endpoint_create(
        actor=staff,
        integration_id=integration.pk,
        url="https://hooks.example.com/x",
        events=["ticket.assigned"],
    )
    Endpoint.objects.filter(pk=endpoint.pk).update(
        active=False, failure_streak=15, disabled_reason="15 failed attempts in a row"
    )

    response = admin_client.post(
        f"{ADMIN}/endpoint/{endpoint.pk}/change/",
        {"url": endpoint.url, "events": ["ticket.assigned"], "active": "on"},
    )

    assert response.status_code == 302, response.content[:3000]
    endpoint.refresh_from_db()
    assert (endpoint.active, endpoint.failure_streak, endpoint.disabled_reason) == (True, 0, "")


def test_staff_read_the_log_and_redeliver_in_the_admin(
    admin_client, api, staff, integration, receiver, agent
):
    # given: a delivery that was sent once
    endpoint = services.endpoint_create(
        actor=staff, integration_id=integration.pk, url=receiver.url, events=["ticket.assigned"]
    )
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {integration.raw_key}")
    opened = api.post("/api/v1/tickets/", new_ticket_body(customer={"external_id": "c-1"}))
    tickets.ticket_assign(ticket_id=opened.json()["id"], agent_id=agent.pk)
    services.deliver_due()
    delivery = Delivery.objects.get()

    # then: its attempts are on its page
    page = admin_client.get(f"{ADMIN}/delivery/{delivery.pk}/change/").content.decode()
    assert "ticket.assigned" in page and "200" in page

    # when: staff redeliver it from the list
    admin_client.post(
        f"{ADMIN}/delivery/", {"action": "redeliver", "_selected_action": [delivery.pk]}
    )
    services.deliver_due()

    # then: the receiver has it twice, the same event
    assert [e["id"] for e in receiver.events()] == [str(delivery.event_id)] * 2
    assert Attempt.objects.filter(delivery=delivery).count() == 2

    # and: an endpoint switched off is said so, not a server error
    services.endpoint_update(endpoint_id=endpoint.pk, active=False)
    response = admin_client.post(
        f"{ADMIN}/delivery/", {"action": "redeliver", "_selected_action": [delivery.pk]}
    )
    assert response.status_code == 302
    told = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("switched off" in m for m in told)
    assert Delivery.objects.get().status == DeliveryStatus.SUCCEEDED
