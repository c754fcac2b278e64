"""The platform's ground: schema, docs, token sign-in, customer sign-up, health."""

import pytest
from django.core.management import call_command

from agents.models import Role, User

pytestmark = pytest.mark.django_db


def test_openapi_schema_and_docs_are_public(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/agents/applications/" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()


def test_token_sign_in_returns_a_token_for_the_right_password(api, customer, password):
    response = api.post(
        "/api/v1/auth/token/", {"username": "CARLA@example.org", "password": password}
    )
    assert response.status_code == 200
    assert len(response.json()["token"]) == 40


def test_token_sign_in_with_a_wrong_password_is_a_clear_400(api, customer):
    response = api.post("/api/v1/auth/token/", {"username": customer.email, "password": "nope"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_credentials"


def test_token_sign_in_is_throttled_against_guessing(api, customer, settings):
    settings.AXES_FAILURE_LIMIT = 100  # the request throttle alone
    codes = [
        api.post(
            "/api/v1/auth/token/", {"username": customer.email, "password": f"x{i}"}
        ).status_code
        for i in range(12)
    ]
    assert codes[:10] == [400] * 10
    assert codes[10] == 429


def test_a_forged_forwarded_for_does_not_escape_the_sign_in_throttle(api, customer, settings):
    settings.AXES_FAILURE_LIMIT = 100  # the request throttle alone
    # Each guess claims to come from another address.
    codes = [
        api.post(
            "/api/v1/auth/token/",
            {"username": customer.email, "password": f"x{i}"},
            HTTP_X_FORWARDED_FOR=f"203.0.113.{i}",
        ).status_code
        for i in range(15)
    ]

    assert codes[:10] == [400] * 10
    assert set(codes[10:]) == {429}


def test_behind_a_trusted_proxy_the_throttle_keys_on_the_forwarded_address(api, customer, settings):
    # TRUSTED_PROXY_COUNT=1; DRF reloads its settings on the change.
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    settings.AXES_FAILURE_LIMIT = 100  # the request throttle alone

    def guess(address):
        return api.post(
            "/api/v1/auth/token/",
            {"username": customer.email, "password": "x"},
            HTTP_X_FORWARDED_FOR=address,
        ).status_code

    guesser = [guess("203.0.113.7") for _ in range(11)]

    assert guesser[-1] == 429
    assert guess("198.51.100.9") == 400  # another client behind the proxy is not held back


def test_customer_sign_up_creates_a_customer(api):
    response = api.post(
        "/api/v1/customers/",
        {
            "email": "New@Example.org",
            "password": "a-long-secret-phrase",
            "name": "Nia",
            "language": "pt",
        },
    )
    assert response.status_code == 201, response.json()
    user = User.objects.get(email="new@example.org")
    assert user.role == Role.CUSTOMER and user.language == "pt"
    assert user.check_password("a-long-secret-phrase")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email", "password": "a-long-secret-phrase", "name": "N"}, "email"),
        ({"email": "n@example.org", "password": "123", "name": "N"}, "password"),
        (
            {
                "email": "n@example.org",
                "password": "a-long-secret-phrase",
                "name": "N",
                "language": "xx",
            },
            "language",
        ),
        ({"email": "n@example.org", "password": "a-long-secret-phrase"}, "name"),
    ],
)
def test_customer_sign_up_rejects_bad_input_naming_the_field(api, body, field):
    response = api.post("/api/v1/customers/", body)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not User.objects.filter(email="n@example.org").exists()


def test_customer_sign_up_with_a_taken_email_is_a_400(api, customer):
    response = api.post(
        "/api/v1/customers/",
        {"email": customer.email.upper(), "password": "a-long-secret-phrase", "name": "Copy"},
    )
    assert response.status_code == 400
    assert "email" in response.json()["error"]["fields"]
    assert User.objects.filter(email__iexact=customer.email).count() == 1


def test_default_skill_catalog_exists(api):
    response = api.get("/api/v1/skills/")
    slugs = [row["slug"] for row in response.json()]
    assert slugs == ["account", "disputes", "general", "payments", "refunds", "technical"]


def test_staff_add_to_the_skill_catalog_and_others_may_not(api, staff, customer):
    assert (
        api.as_(customer).post("/api/v1/skills/", {"slug": "crypto", "name": "Crypto"}).status_code
        == 403
    )
    response = api.as_(staff).post("/api/v1/skills/", {"slug": "crypto", "name": "Crypto"})
    assert response.status_code == 201
    again = api.as_(staff).post("/api/v1/skills/", {"slug": "crypto", "name": "Crypto"})
    assert again.status_code == 400 and "slug" in again.json()["error"]["fields"]


def test_demo_data_is_idempotent(settings):
    call_command("load_demo", "--force")
    call_command("load_demo", "--force")
    assert (
        User.objects.filter(
            email__in=["ops@example.com", "agent@example.com", "customer@example.com"]
        ).count()
        == 3
    )
    assert User.objects.get(email="agent@example.com").agent.status == "approved"


def test_demo_data_refuses_outside_the_embedded_default(settings):
    from django.core.management.base import CommandError

    settings.HUMANLINE = {**settings.HUMANLINE, "DEMO_DATA": False}
    with pytest.raises(CommandError):
        call_command("load_demo")


def test_health_endpoint_checks_the_database(client):
    assert client.get("/healthz").json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/customers/", {"password": "a-long-secret-phrase", "name": "Nia"}),
        (
            "/api/v1/agents/applications/",
            {
                "password": "a-long-secret-phrase",
                "name": "Lena Lima",
                "cohort": "rural",
                "languages": ["pt"],
                "skills": ["general"],
                "country": "pt",
                "time_zone": "Europe/Lisbon",
            },
        ),
    ],
)
def test_one_address_cannot_script_sign_ups_even_claiming_other_addresses(api, db, path, body):
    # Each sign-up is an account (and a mail): 30 an hour from one address (SIGN_UP_THROTTLE),
    # whatever X-Forwarded-For it claims.
    codes = [
        api.post(
            path,
            {**body, "email": f"flood{i}@example.org"},
            format="json",
            HTTP_X_FORWARDED_FOR=f"203.0.113.{i}",
        ).status_code
        for i in range(31)
    ]

    assert codes[:30] == [201] * 30
    assert codes[30] == 429
    assert User.objects.filter(email__startswith="flood").count() == 30
