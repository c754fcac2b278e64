"""Queue mail inside a transaction; send it once, whoever asks first."""

from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from config import effects
from outbox.models import Mail


def mail(*, to: str, subject: str, body: str) -> Mail:
    """Owe ``to`` this e-mail: a row now, a send right after the commit."""
    message = Mail.objects.create(to=to, subject=subject, body=body)

    def send_soon(mail_id: int = message.pk) -> None:
        from outbox import tasks

        tasks.send_mail_once.delay(mail_id)

    effects.after_commit(send_soon)
    return message


def mail_send(*, mail_id: int) -> bool:
    """Send an owed e-mail; False when it was sent already (or is being sent now).

    The row stays locked while the mail goes out, so a redelivered task or the
    sweeper skips it, and never sends it twice.  A failure is recorded on the
    row, which stays owed, and raised.
    """
    failure = None
    with transaction.atomic():
        message = (
            Mail.objects.select_for_update(skip_locked=True)
            .filter(pk=mail_id, sent_at__isnull=True)
            .first()
        )
        if message is None:
            return False
        message.attempts += 1
        try:
            send_mail(message.subject, message.body, None, [message.to])
        except Exception as exc:
            failure = exc
            message.last_error = f"{type(exc).__name__}: {exc}"[:500]
        else:
            message.sent_at = timezone.now()
        message.save(update_fields=["attempts", "last_error", "sent_at"])
    if failure is not None:
        raise failure
    return True


def outbox_sweep(*, now=None) -> int:
    """Send what is owed past the grace (``OUTBOX_GRACE_SECONDS``): mail whose task
    was lost.  Returns how many went out."""
    now = now or timezone.now()
    grace = timedelta(seconds=settings.HUMANLINE["OUTBOX_GRACE_SECONDS"])
    owed = Mail.objects.filter(sent_at__isnull=True, created_at__lte=now - grace)
    ids = list(owed.order_by("created_at").values_list("pk", flat=True)[:100])
    sent = 0
    for mail_id in ids:
        try:
            sent += mail_send(mail_id=mail_id)
        except Exception:  # noqa: S112 (recorded on the row; the next sweep tries again)
            continue
    return sent
