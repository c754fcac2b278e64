"""A committed write is what the client is told, whatever becomes of its side
effects; mail owed survives a lost task and goes out once."""

from datetime import timedelta

import pytest
from django.core import mail as sent
from django.db import transaction
from django.utils import timezone

from agents.models import User
from config import effects, throttles
from outbox import services as outbox
from outbox.models import Mail
from tests.agents.test_pages import apply_form
from tests.tickets.factories import new_ticket_body
from tickets.models import Ticket

pytestmark = pytest.mark.django_db

# Nothing listens here: a Redis that is down, refusing at once.
DOWN = "redis://127.0.0.1:9/0"


@pytest.fixture
def redis_down(settings):
    """The cache and the channel layer on a Redis that is not there."""
    from channels.layers import channel_layers

    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": DOWN,
            "OPTIONS": {
                "pool_class": "config.cache.SharedConnectionPool",
                "socket_connect_timeout": 0.5,
                "socket_timeout": 0.5,
            },
        }
    }
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": DOWN, "socket_connect_timeout": 0.5}]},
        }
    }
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.mark.side_effects_fail
def test_a_ticket_opened_while_redis_is_down_is_a_201(
    api, customer, redis_down, django_capture_on_commit_callbacks
):
    before = sum(effects.failures().values())

    with django_capture_on_commit_callbacks(execute=True):
        response = api.as_(customer).post("/api/v1/tickets/", new_ticket_body())

    assert response.status_code == 201, response.json()
    assert Ticket.objects.get().status == "queued"
    # The pushes and the lane's cache touch failed, each logged and counted.
    assert sum(effects.failures().values()) > before


def lost_checks(scope: str) -> float:
    from prometheus_client import REGISTRY

    sample = "humanline_side_effects_failed_total"
    return REGISTRY.get_sample_value(sample, {"hook": f"rate_limit:{scope}"}) or 0.0


@pytest.mark.side_effects_fail
def test_while_redis_is_down_a_sign_in_goes_through_and_its_lost_rate_check_is_counted(
    api, customer, password, redis_down, caplog
):
    before = lost_checks("sign_in")

    response = api.post("/api/v1/auth/token/", {"username": customer.email, "password": password})

    # The rate is counted in Redis; the account and its password are in PostgreSQL.
    assert response.status_code == 200, response.content
    assert response.json()["token"]
    assert lost_checks("sign_in") == before + 1
    assert "Rate limit sign_in not checked" in caplog.text


@pytest.mark.side_effects_fail
def test_while_redis_is_down_sign_ups_and_reset_mail_wait_a_minute_and_nothing_is_made(
    api, client, customer, redis_down
):
    """Each of these mails an address the request names: unlimited during an
    outage, they would be a way to flood someone's inbox."""
    before = lost_checks("sign_up"), lost_checks("password_reset")

    signed_up = api.post(
        "/api/v1/customers/",
        {"email": "nia@example.org", "password": "a-long-secret-phrase", "name": "Nia"},
    )
    applied = client.post("/apply/", apply_form())
    reset = client.post("/password-reset/", {"email": customer.email})

    assert signed_up.status_code == 429, signed_up.content
    assert signed_up["Retry-After"] == "60"
    assert signed_up.json()["error"]["code"] == "throttled"
    assert (applied.status_code, applied["Retry-After"]) == (429, "60")
    assert (reset.status_code, reset["Retry-After"]) == (429, "60")
    assert not User.objects.filter(email__in=["nia@example.org", "rui@example.org"]).exists()
    assert not Mail.objects.exists()
    assert (lost_checks("sign_up"), lost_checks("password_reset")) == (
        before[0] + 2,
        before[1] + 1,
    )


def test_every_rate_limited_view_gives_its_check_up_when_redis_is_down():
    """A view limited by a stock DRF throttle would answer 500 while Redis is down."""
    from django.urls import URLPattern, URLResolver, get_resolver

    def views(patterns):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from views(pattern.url_patterns)
            elif isinstance(pattern, URLPattern):
                yield getattr(pattern.callback, "cls", None) or getattr(
                    pattern.callback, "view_class", None
                )

    limited = {
        (view, throttle)
        for view in views(get_resolver().url_patterns)
        if view is not None
        for throttle in getattr(view, "throttle_classes", ())
    }
    assert any(view.__name__ == "TokenView" for view, _ in limited)  # the walk reaches the API
    assert [
        f"{view.__name__}: {throttle.__name__}"
        for view, throttle in limited
        if not issubclass(throttle, throttles.GivenUpWithoutCache)
    ] == []


@pytest.mark.side_effects_fail
def test_a_failing_side_effect_does_not_stop_the_next(caplog, django_capture_on_commit_callbacks):
    ran = []

    def broken():
        raise ConnectionError("redis is down")

    with django_capture_on_commit_callbacks(execute=True):
        effects.after_commit(broken)
        effects.after_commit(lambda: ran.append("after"))

    assert ran == ["after"]
    assert "broken" in caplog.text
    assert effects.failures()["test_a_failing_side_effect_does_not_stop_the_next.<locals>.broken"]


def test_mail_is_owed_only_when_the_change_commits(django_capture_on_commit_callbacks):
    with pytest.raises(RuntimeError), transaction.atomic():
        outbox.mail(to="a@example.org", subject="Hello", body="Body")
        raise RuntimeError("the change failed")

    assert not Mail.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        outbox.mail(to="a@example.org", subject="Hello", body="Body")

    (message,) = sent.outbox
    assert (message.to, message.subject) == (["a@example.org"], "Hello")
    assert Mail.objects.get().sent_at is not None


def test_a_redelivered_send_sends_nothing_twice():
    owed = Mail.objects.create(to="a@example.org", subject="Hello", body="Body")

    assert outbox.mail_send(mail_id=owed.pk) is True
    assert outbox.mail_send(mail_id=owed.pk) is False
    assert len(sent.outbox) == 1


def test_the_sweeper_sends_mail_whose_task_was_lost(settings):
    grace = settings.HUMANLINE["OUTBOX_GRACE_SECONDS"]
    # Written, but its task never ran (a broker that refused it, a worker that died).
    lost = Mail.objects.create(
        to="a@example.org",
        subject="Lost",
        body="Body",
        created_at=timezone.now() - timedelta(seconds=grace + 1),
    )
    recent = Mail.objects.create(to="b@example.org", subject="Recent", body="Body")

    assert outbox.outbox_sweep() == 1
    assert [m.subject for m in sent.outbox] == ["Lost"]
    lost.refresh_from_db()
    recent.refresh_from_db()
    assert lost.sent_at is not None
    assert recent.sent_at is None  # its own task is still on its way


def test_a_failed_send_stays_owed_and_says_why(settings):
    # A real SMTP client, refused: nothing listens on this port.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 1
    owed = Mail.objects.create(to="a@example.org", subject="Hello", body="Body")

    with pytest.raises(OSError):
        outbox.mail_send(mail_id=owed.pk)

    owed.refresh_from_db()
    assert owed.sent_at is None
    assert owed.attempts == 1
    assert "Connection" in owed.last_error or "refused" in owed.last_error.lower()


@pytest.mark.side_effects_fail
def test_a_failed_side_effect_is_counted_for_the_operators(django_capture_on_commit_callbacks):
    from prometheus_client import REGISTRY

    def lost_push():
        raise ConnectionError("redis is down")

    name = "test_a_failed_side_effect_is_counted_for_the_operators.<locals>.lost_push"
    sample = "humanline_side_effects_failed_total"
    before = REGISTRY.get_sample_value(sample, {"hook": name}) or 0.0

    with django_capture_on_commit_callbacks(execute=True):
        effects.after_commit(lost_push)

    assert REGISTRY.get_sample_value(sample, {"hook": name}) == before + 1
