"""Password reset from the sign-in page, through Django's own views."""

import re
from datetime import timedelta

import pytest
from django.core import mail

from outbox import services as outbox
from outbox.models import Mail

pytestmark = pytest.mark.django_db


@pytest.fixture
def ask(client, django_capture_on_commit_callbacks):
    """Ask for a reset: the mail is owed in the request and sent after its commit
    (``outbox``), run here as it is outside a test's transaction."""

    def post(email: str):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post("/password-reset/", {"email": email})

    return post


def test_a_customer_resets_a_forgotten_password_from_the_sign_in_page(client, customer, ask):
    assert "/password-reset/" in client.get("/login/").content.decode()

    sent = ask(customer.email)
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


def test_an_unknown_address_is_not_revealed(ask):
    response = ask("nobody@example.org")

    assert response.status_code == 302  # the same answer as for a known one
    assert mail.outbox == []


def test_reset_requests_are_limited_per_address(customer, ask):
    # Each request sends mail to whoever it names: one address may not mail-bomb.
    codes = [ask(customer.email).status_code for _ in range(11)]

    assert codes[:10] == [302] * 10
    assert codes[10] == 429
    assert len(mail.outbox) == 10
    refused = ask(customer.email)
    assert refused.status_code == 429
    assert "Please try again in" in refused.content.decode()
    assert int(refused["Retry-After"]) > 0
    assert len(mail.outbox) == 10


@pytest.mark.side_effects_fail  # the first send, refused by the mail server
def test_a_reset_asked_while_the_mail_server_refuses_is_owed_and_sent_by_the_sweep(
    customer, settings, clock, ask
):
    # A real SMTP client, refused: nothing listens on this port.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 1

    asked = ask(customer.email)

    assert asked.status_code == 302  # the page's own answer, not a 500
    owed = Mail.objects.get(to=customer.email, sent_at__isnull=True)
    assert "/password-reset/" in owed.body and owed.attempts == 1 and owed.last_error

    # The mail server is back; the outbox sweep sends what is owed past its grace.
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    clock.shift(timedelta(seconds=settings.HUMANLINE["OUTBOX_GRACE_SECONDS"]))
    assert outbox.outbox_sweep() == 1
    (message,) = mail.outbox
    assert message.to == [customer.email] and message.body == owed.body
