"""Thin Celery tasks: fetch by id, call one function."""

from celery import shared_task


@shared_task(ignore_result=True)
def purge_realtime_tickets() -> None:
    from agents.services import realtime_tickets_purge

    realtime_tickets_purge()


@shared_task(ignore_result=True)
def sweep_presence() -> None:
    from agents.presence import presence_sweep

    presence_sweep()
