"""Webhooks: staff register endpoints; changes to an integration's tickets become
events and deliveries in the same transaction; deliveries are sent, retried
with back-off, logged, and an endpoint that keeps failing is disabled.

Delivery is at least once.  Receivers de-duplicate by the event's ``id`` and
order by its ``created`` time: a retried delivery may arrive after a later
event's.
"""

import json
import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import override

from config import effects
from config.errors import InvalidInput, InvalidTransition, NotFound
from webhooks import sending, signing
from webhooks.models import (
    EVENT_NAMES,
    Attempt,
    Delivery,
    DeliveryStatus,
    Endpoint,
    Event,
)

logger = logging.getLogger(__name__)


# --- endpoints ------------------------------------------------------------------


def endpoint_checked(*, url: str, events: list[str]) -> tuple[str, list[str]]:
    """The URL and events as an endpoint keeps them, or InvalidInput naming what is wrong
    (the one check for the API and the Django admin)."""
    errors: dict[str, list[str]] = {}
    url = (url or "").strip()
    if problem := sending.destination_problem(url):
        errors["url"] = [problem]
    events = list(dict.fromkeys(events or []))
    unknown = [name for name in events if name not in EVENT_NAMES]
    if not events or unknown:
        errors["events"] = [f"Choose among: {', '.join(EVENT_NAMES)}."]
    if errors:
        raise InvalidInput("Check the endpoint.", fields=errors)
    return url, events


def endpoint_create(*, actor, integration_id: int, url: str, events: list[str]) -> Endpoint:
    """A new endpoint; its ``secret`` is shown to the caller this once."""
    from tickets.models import Integration

    if not Integration.objects.filter(pk=integration_id).exists():
        raise NotFound("No integration has this id.")
    url, events = endpoint_checked(url=url, events=events)
    return Endpoint.objects.create(
        integration_id=integration_id, url=url, events=events, created_by=actor
    )


@transaction.atomic
def endpoint_update(
    *,
    endpoint_id: int,
    url: str | None = None,
    events: list[str] | None = None,
    active: bool | None = None,
) -> Endpoint:
    """Change an endpoint; switching it on again starts its failure count afresh."""
    endpoint = Endpoint.objects.select_for_update().filter(pk=endpoint_id).first()
    if endpoint is None:
        raise NotFound("No webhook endpoint has this id.")
    endpoint.url, endpoint.events = endpoint_checked(
        url=endpoint.url if url is None else url,
        events=endpoint.events if events is None else events,
    )
    if active is not None and active != endpoint.active:
        endpoint.active = active
        if active:
            endpoint.failure_streak = 0
            endpoint.disabled_at, endpoint.disabled_reason = None, ""
    endpoint.save()
    return endpoint


# --- events ---------------------------------------------------------------------


def _ticket_data(ticket) -> dict:
    from tickets.models import IntegrationCustomer

    external_id = (
        IntegrationCustomer.objects.filter(
            integration_id=ticket.integration_id, customer_id=ticket.customer_id
        )
        .values_list("external_id", flat=True)
        .first()
    )
    return {"id": ticket.pk, "status": ticket.status, "customer": {"external_id": external_id}}


def emit(*, ticket, type: str, data: dict) -> Event | None:
    """Tell the integration that opened ``ticket``, if it listens for ``type``.

    Call inside the transaction of the change: the event and a delivery for
    each listening endpoint are written with it, and sent after it commits.
    """
    if ticket.integration_id is None:
        return None
    endpoints = [
        endpoint
        for endpoint in Endpoint.objects.filter(integration_id=ticket.integration_id, active=True)
        if type in endpoint.events
    ]
    if not endpoints:
        return None
    event = Event(integration_id=ticket.integration_id, type=type)
    event.payload = {
        "id": str(event.id),
        "type": type,
        "created": event.created_at.isoformat().replace("+00:00", "Z"),
        "data": {"ticket": _ticket_data(ticket), **data},
    }
    event.save()
    deliveries = Delivery.objects.bulk_create(
        [Delivery(endpoint=endpoint, event=event) for endpoint in endpoints]
    )
    ids = [delivery.pk for delivery in deliveries]
    effects.after_commit(lambda: _send_soon(ids))
    return event


def _send_soon(delivery_ids: list[int]) -> None:
    """Hand each delivery to a worker.  Where background work runs in-process
    (the embedded default, tests) the sweep sends them instead, so that a slow
    receiver never holds up the request that caused the event."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return
    from webhooks import tasks

    for delivery_id in delivery_ids:
        tasks.deliver.delay(delivery_id)


# --- delivering -----------------------------------------------------------------


def retry_schedule() -> list[int]:
    """Seconds to wait before each retry: about a day in all by default."""
    return [int(s) for s in settings.HUMANLINE["WEBHOOK_RETRY_SECONDS"].split(",") if s.strip()]


def delivery_attempt(*, delivery_id: int, now=None) -> Attempt | None:
    """Try a due delivery once; None when it is not due (sent, failed for good, or
    being tried by another worker).

    The claim is a conditional update that moves ``next_attempt_at`` past the
    attempt's longest duration, so a second worker (a redelivered task, the
    sweep) skips it; no transaction is held while the receiver answers.
    """
    now = now or timezone.now()
    lease = now + timedelta(seconds=settings.HUMANLINE["WEBHOOK_TIMEOUT_SECONDS"] + 30)
    claimed = Delivery.objects.filter(
        pk=delivery_id,
        status=DeliveryStatus.PENDING,
        next_attempt_at__lte=now,
        endpoint__active=True,
    ).update(next_attempt_at=lease)
    if not claimed:
        return None
    delivery = Delivery.objects.select_related("endpoint", "event").get(pk=delivery_id)
    body = json.dumps(delivery.event.payload, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Humanline-Webhooks/1",
        "Humanline-Event-Id": str(delivery.event_id),
        "Humanline-Event-Type": delivery.event.type,
        signing.HEADER: signing.sign(delivery.endpoint.secret, body),
    }
    answer = sending.post(delivery.endpoint.url, body, headers)
    return _record(delivery, answer, started=now)


@transaction.atomic
def _record(delivery: Delivery, answer: sending.Answer, *, started) -> Attempt:
    now = timezone.now()
    attempt = Attempt.objects.create(
        delivery=delivery,
        started_at=started,
        duration_ms=answer.duration_ms,
        status_code=answer.status_code,
        error=answer.error[:500],
        response_excerpt=answer.excerpt[:500],
    )
    delivery = Delivery.objects.select_for_update().get(pk=delivery.pk)
    delivery.attempts += 1
    endpoint = Endpoint.objects.select_for_update().get(pk=delivery.endpoint_id)
    if answer.succeeded:
        delivery.status, delivery.delivered_at = DeliveryStatus.SUCCEEDED, now
        endpoint.failure_streak = 0
    else:
        schedule = retry_schedule()
        if delivery.attempts <= len(schedule):
            delivery.next_attempt_at = now + timedelta(seconds=schedule[delivery.attempts - 1])
        else:
            delivery.status = DeliveryStatus.FAILED
        endpoint.failure_streak += 1
        limit = settings.HUMANLINE["WEBHOOK_DISABLE_AFTER"]
        if endpoint.active and endpoint.failure_streak >= limit:
            _disable(endpoint, now=now, last=answer.error)
    delivery.save(update_fields=["attempts", "status", "delivered_at", "next_attempt_at"])
    endpoint.save(update_fields=["failure_streak", "active", "disabled_at", "disabled_reason"])
    return attempt


def _disable(endpoint: Endpoint, *, now, last: str) -> None:
    """Stop sending to an endpoint that keeps failing, and tell operations staff,
    each in their own language."""
    from agents.models import Role, User
    from config.locale import recipient_language
    from outbox.services import mail

    endpoint.active = False
    endpoint.disabled_at = now
    endpoint.disabled_reason = (
        f"{endpoint.failure_streak} failed attempts in a row; the last: {last}"
    )[:300]
    logger.warning("webhook endpoint %s disabled: %s", endpoint.pk, endpoint.disabled_reason)
    said = {
        "url": endpoint.url,
        "integration": endpoint.integration.name,
        "count": endpoint.failure_streak,
        "last": last,
    }
    for user in User.objects.filter(role=Role.STAFF, is_active=True).order_by("pk"):
        with override(recipient_language(user)):
            mail(
                to=user.email,
                subject=_("Webhooks to %(integration)s stopped") % said,
                body=_(
                    "The webhook endpoint %(url)s of %(integration)s was switched off after "
                    "%(count)d failed attempts in a row. The last: %(last)s\n\n"
                    "Its deliveries wait. Switch it on again from the Django admin or the API "
                    "once the receiver answers, and redeliver from its delivery log.\n"
                )
                % said,
            )


def deliveries_due(*, now=None, limit: int = 100) -> list[int]:
    now = now or timezone.now()
    return list(
        Delivery.objects.filter(
            status=DeliveryStatus.PENDING, next_attempt_at__lte=now, endpoint__active=True
        )
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)[:limit]
    )


def deliveries_due_enqueue() -> int:
    """Beat: hand every due delivery (new ones whose task was lost, retries) to a worker."""
    from webhooks import tasks

    due = deliveries_due()
    for delivery_id in due:
        tasks.deliver.delay(delivery_id)
    return len(due)


def deliver_due() -> int:
    """Try every due delivery here, one after another (the embedded default's loop,
    and tests); how many were tried."""
    return sum(delivery_attempt(delivery_id=pk) is not None for pk in deliveries_due())


@transaction.atomic
def delivery_redeliver(*, delivery_id: int) -> Delivery:
    """Send a delivery again (staff, from the log), whatever became of it."""
    delivery = (
        Delivery.objects.select_for_update()
        .select_related("endpoint")
        .filter(pk=delivery_id)
        .first()
    )
    if delivery is None:
        raise NotFound("No delivery has this id.")
    if not delivery.endpoint.active:
        raise InvalidTransition(
            "The endpoint is switched off: switch it on first.", code="endpoint_inactive"
        )
    delivery.status = DeliveryStatus.PENDING
    delivery.next_attempt_at = timezone.now()
    delivery.save(update_fields=["status", "next_attempt_at"])
    ids = [delivery.pk]
    effects.after_commit(lambda: _send_soon(ids))
    return delivery
