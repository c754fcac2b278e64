"""Thin Celery tasks: fetch by id, call one function."""

from celery import shared_task


@shared_task(ignore_result=True)
def settle_shift_attendance() -> None:
    from marketplace.services.shifts import shift_attendance_settle

    shift_attendance_settle()


@shared_task(ignore_result=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_slot_cancelled_email(booking_id: int) -> None:
    from marketplace.notifications import send_slot_cancelled_email as send

    send(booking_id=booking_id)
