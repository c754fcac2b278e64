"""Guessing passwords, as an attacker would, on every sign-in surface: after
``SIGN_IN_FAILURE_LIMIT`` failures the account, or the address, is locked for
``SIGN_IN_LOCKOUT_MINUTES``, and the answer says when to try again."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

pytestmark = pytest.mark.django_db

TOKEN = "/api/v1/auth/token/"


@pytest.fixture(autouse=True)
def _small_limit(settings):
    # Each test sends fewer requests from one address than the request
    # throttle allows: what answers them is the lockout.
    settings.AXES_FAILURE_LIMIT = 3


def _guess(api, email, password="wrong", address="192.0.2.1"):
    return api.post(TOKEN, {"username": email, "password": password}, REMOTE_ADDR=address)


def test_an_account_is_locked_after_the_failures_whatever_the_address(api, customer, password):
    codes = [_guess(api, customer.email, address=f"192.0.2.{i}").status_code for i in range(3)]
    right = _guess(api, customer.email, password=password, address="198.51.100.1")

    assert codes[:2] == [400, 400]
    assert codes[2] == 429
    assert right.status_code == 429  # even the right password, until the lockout ends
    body = right.json()["error"]
    assert body["code"] == "sign_in_locked"
    assert "15 minutes" in body["message"]
    assert right["Retry-After"] == "900"


def test_an_address_is_locked_after_failures_on_many_accounts(api, customer, agent):
    for i in range(3):
        _guess(api, f"someone{i}@example.org", address="203.0.113.9")

    assert _guess(api, customer.email, address="203.0.113.9").status_code == 429
    assert _guess(api, customer.email, address="198.51.100.2").status_code == 400


def test_the_lockout_ends_after_its_time(api, customer, password):
    for _ in range(3):
        _guess(api, customer.email)

    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        response = _guess(api, customer.email, password=password, address="198.51.100.3")

    assert response.status_code == 200


def test_a_success_clears_the_accounts_failures(api, customer, password):
    _guess(api, customer.email)
    _guess(api, customer.email)
    assert _guess(api, customer.email, password=password).status_code == 200

    assert _guess(api, customer.email, address="198.51.100.4").status_code == 400


def test_the_sign_in_page_is_locked_too(client, customer, password):
    for _ in range(3):
        client.post("/login/", {"username": customer.email, "password": "wrong"})

    response = client.post("/login/", {"username": customer.email, "password": password})

    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    _says_when_to_try_again(response)


def test_the_django_admin_sign_in_is_locked_too(client, staff, password):
    for _ in range(3):
        client.post("/django-admin/login/", {"username": staff.email, "password": "wrong"})

    response = client.post("/django-admin/login/", {"username": staff.email, "password": password})

    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    _says_when_to_try_again(response)


def _says_when_to_try_again(response):
    assert response["Retry-After"] == "900"
    assert "Try again in 15 minutes." in response.content.decode()


def test_the_locked_page_speaks_the_readers_language(client, customer, settings):
    for _ in range(3):
        client.post("/login/", {"username": customer.email, "password": "wrong"})

    response = client.post(
        "/login/", {"username": customer.email, "password": "wrong"}, HTTP_ACCEPT_LANGUAGE="fr"
    )

    assert response.status_code == 429
    assert "15 minutes" in response.content.decode()
    assert "Try again" not in response.content.decode()


def test_the_wait_starts_again_with_each_attempt_while_locked(api, customer, password):
    for _ in range(3):
        _guess(api, customer.email)
    ten_minutes_on = timezone.now() + timedelta(minutes=10)
    with time_machine.travel(ten_minutes_on):
        assert _guess(api, customer.email).status_code == 429

    # 16 minutes after the first lockout, but 6 after the attempt that started it again.
    with time_machine.travel(ten_minutes_on + timedelta(minutes=6)):
        response = _guess(api, customer.email, password=password)

    assert response.status_code == 429
    assert response["Retry-After"] == "900"


def test_changing_the_case_of_the_address_is_the_same_account(api, customer):
    for variant in (customer.email.upper(), customer.email.title(), f" {customer.email} "):
        _guess(api, variant, address="192.0.2.77")

    assert _guess(api, customer.email, address="198.51.100.5").status_code == 429
