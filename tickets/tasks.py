"""Thin Celery tasks: fetch by id (or key), call one function."""

from celery import shared_task


@shared_task(ignore_result=True)
def push_queue_positions(language: str, category: str) -> None:
    from tickets.events import push_lane_positions

    push_lane_positions(language=language, category=category)


@shared_task(ignore_result=True)
def close_resolved_tickets() -> None:
    from tickets.services import tickets_close_after_reopen_window

    tickets_close_after_reopen_window()


@shared_task(ignore_result=True)
def purge_idempotency_keys() -> None:
    from tickets.services import idempotency_keys_purge

    idempotency_keys_purge()


@shared_task(ignore_result=True)
def store_agent_quality(agent_id: int) -> None:
    from tickets.services import agent_quality_store

    agent_quality_store(agent_id=agent_id)


@shared_task(ignore_result=True)
def store_quality_scores() -> None:
    from tickets.services import agents_quality_store

    agents_quality_store()
