"""Password reset from the sign-in page, through Django's own views."""

import re

import pytest
from django.core import mail

pytestmark = pytest.mark.django_db


def test_a_customer_resets_a_forgotten_password_from_the_sign_in_page(client, customer):
    assert "/password-reset/" in client.get("/login/").content.decode()

    sent = client.post("/password-reset/", {"email": customer.email})
    assert sent.status_code == 302
    (message,) = mail.outbox
    link = re.search(r"https?://[^/]+(/password-reset/[^\s]+/)", message.body).group(1)

    form = client.get(link, follow=True)
    assert "Choose a new password" in form.content.decode()
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "a-brand-new-phrase-42", "new_password2": "a-brand-new-phrase-42"},
    )
    assert done.status_code == 302

    customer.refresh_from_db()
    assert customer.check_password("a-brand-new-phrase-42")
    # The link works once.
    assert "has been used or has expired" in client.get(link, follow=True).content.decode()


def test_an_unknown_address_is_not_revealed(client):
    response = client.post("/password-reset/", {"email": "nobody@example.org"})

    assert response.status_code == 302  # the same answer as for a known one
    assert mail.outbox == []


def test_reset_requests_are_limited_per_address(client, customer, settings):
    # Each request sends mail to whoever it names: one address may not mail-bomb.
    codes = [
        client.post("/password-reset/", {"email": customer.email}).status_code for _ in range(11)
    ]

    assert codes[:10] == [302] * 10
    assert codes[10] == 429
    assert len(mail.outbox) == 10
    refused = client.post("/password-reset/", {"email": customer.email})
    assert refused.status_code == 429
    assert "Please try again in" in refused.content.decode()
    assert int(refused["Retry-After"]) > 0
    assert len(mail.outbox) == 10
