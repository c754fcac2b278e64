"""Integrations hear back: endpoints, the events they receive, each delivery and its attempts.

An event and its deliveries are rows written in the transaction of the change
they tell of (an outbox): nothing is sent for a change that rolled back, and
nothing is lost with a Redis message.  A Celery task sends each delivery
after the commit; the sweep (``webhooks.tasks.sweep_webhooks``) sends what is
due, retries included.
"""

import secrets
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

EVENT_TYPES = [
    ("ticket.assigned", "A person joined the conversation"),
    ("ticket.message", "The agent wrote"),
    ("ticket.status", "Resolved, closed, cancelled or reopened"),
    ("ticket.rating", "The customer rated the conversation"),
    ("ticket.waiting", "The ticket waits past its target"),
]
EVENT_NAMES = [name for name, _ in EVENT_TYPES]


def new_secret() -> str:
    return f"whsec_{secrets.token_urlsafe(32)}"


class Endpoint(models.Model):
    integration = models.ForeignKey(
        "tickets.Integration", on_delete=models.PROTECT, related_name="webhook_endpoints"
    )
    url = models.URLField(max_length=500)
    events = models.JSONField(default=list, help_text="Event types this endpoint receives.")
    # Signs every delivery; shown once, when the endpoint is made.
    secret = models.CharField(max_length=100, default=new_secret, editable=False)
    active = models.BooleanField(default=True)
    # Failed attempts in a row, across deliveries; a success starts it again.
    failure_streak = models.PositiveIntegerField(default=0)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.integration}: {self.url}"


class Event(models.Model):
    """Something an integration may hear of, once, whatever the endpoints."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    integration = models.ForeignKey(
        "tickets.Integration", on_delete=models.PROTECT, related_name="+"
    )
    type = models.CharField(max_length=40, choices=EVENT_TYPES)
    payload = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]

    def __str__(self):
        return f"{self.type} {self.id}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class Delivery(models.Model):
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="deliveries")
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    # When it is due; while an attempt runs, when that attempt's claim lapses.
    next_attempt_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event"], name="delivery_once_per_endpoint")
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="delivery_due",
                condition=models.Q(status="pending"),
            )
        ]

    def __str__(self):
        return f"{self.event} → {self.endpoint_id}"


class Attempt(models.Model):
    """One try at a delivery: what the receiver answered, or why it could not."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self):
        return f"{self.delivery_id} at {self.started_at:%Y-%m-%d %H:%M:%S}: {self.status_code}"

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
