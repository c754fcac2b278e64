"""Thin Celery tasks: fetch by id, call one function."""

from celery import shared_task


@shared_task(ignore_result=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_mail_once(mail_id: int) -> None:
    from outbox.services import mail_send

    mail_send(mail_id=mail_id)


@shared_task(ignore_result=True)
def sweep_outbox() -> None:
    from outbox.services import outbox_sweep

    outbox_sweep()
