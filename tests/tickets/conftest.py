import pytest

from tickets import events


@pytest.fixture
def pushed(monkeypatch):
    """Every event the services push, as ``(ticket_id, event)``, instead of the channel layer."""
    sent: list[tuple[int, dict]] = []
    monkeypatch.setattr(events, "push", lambda ticket_id, event: sent.append((ticket_id, event)))
    monkeypatch.setattr(events, "push_many", sent.extend)
    return sent


@pytest.fixture
def queued_hook():
    """The ticket ids handed to dispatch's hook (``events.QUEUED_HOOKS``)."""
    calls: list[int] = []

    def hook(ticket_id, opened=None):
        calls.append(ticket_id)

    events.QUEUED_HOOKS.append(hook)
    yield calls
    events.QUEUED_HOOKS.remove(hook)
