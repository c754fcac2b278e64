"""Mail the platform owes people, written in the transaction of the change it tells of.

A broker may refuse the task that sends it (Redis down) or a worker may die
with it; the row stays unsent, and the sweeper sends it.  The row is also what
makes the send idempotent: a redelivered task finds it sent.
"""

from django.db import models
from django.utils import timezone


class Mail(models.Model):
    to = models.EmailField()
    subject = models.CharField(max_length=200)
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["created_at"], name="mail_unsent", condition=models.Q(sent_at__isnull=True)
            )
        ]

    def __str__(self):
        return f"{self.subject} → {self.to}"
