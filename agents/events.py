"""Side effects of agent changes, built in one place and run after commit."""

from agents import tasks


def decision_made(*, event_id: int) -> None:
    tasks.send_decision_email.delay(event_id)
