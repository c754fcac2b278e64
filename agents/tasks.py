"""Thin Celery tasks: fetch by id, call one function."""

from celery import shared_task


@shared_task(ignore_result=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_decision_email(event_id: int) -> None:
    from agents.notifications import send_decision_email as send

    send(event_id=event_id)


@shared_task(ignore_result=True)
def purge_realtime_tickets() -> None:
    from agents.services import realtime_tickets_purge

    realtime_tickets_purge()


@shared_task(ignore_result=True)
def sweep_presence() -> None:
    from agents.presence import presence_sweep

    presence_sweep()


@shared_task(ignore_result=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_verification_email(user_id: int, url: str) -> None:
    from agents.notifications import send_verification_email as send

    send(user_id=user_id, url=url)
