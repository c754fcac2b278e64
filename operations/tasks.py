from celery import shared_task

HEARTBEAT = "operations.tasks.heartbeat"


@shared_task(name=HEARTBEAT, ignore_result=True)
def heartbeat(queue: str) -> None:
    """Beat sends this to each queue; the worker that runs it records the queue is served."""
    from operations.health import heartbeat_write

    heartbeat_write(f"worker:{queue}")
