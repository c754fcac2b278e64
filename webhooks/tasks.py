"""Thin Celery tasks: fetch by id, call one function."""

from celery import shared_task


@shared_task(ignore_result=True)
def deliver(delivery_id: int) -> None:
    from webhooks.services import delivery_attempt

    delivery_attempt(delivery_id=delivery_id)


@shared_task(ignore_result=True)
def sweep_webhooks() -> None:
    from webhooks.services import deliveries_due_enqueue

    deliveries_due_enqueue()
