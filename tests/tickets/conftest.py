from importlib import import_module

import pytest

from agents.models import Skill
from tickets import events

DEFAULT_SKILLS = import_module("agents.migrations.0002_default_skills").DEFAULT_SKILLS


@pytest.fixture(autouse=True)
def _skill_catalog(db):
    """The default catalog that migration 0002 seeds.

    Transactional tests (threads, sockets, the browser) end by flushing every
    table, seeded rows included; tickets need the catalog for their category.
    """
    for slug, name in DEFAULT_SKILLS:
        Skill.objects.get_or_create(slug=slug, defaults={"name": name})


@pytest.fixture
def pushed(monkeypatch):
    """Every event the services push, as ``(ticket_id, event)``, instead of the channel layer."""
    sent: list[tuple[int, dict]] = []
    monkeypatch.setattr(events, "push", lambda ticket_id, event: sent.append((ticket_id, event)))
    return sent


@pytest.fixture
def queued_hook():
    """The ticket ids handed to dispatch's hook (``events.QUEUED_HOOKS``)."""
    calls: list[int] = []
    events.QUEUED_HOOKS.append(calls.append)
    yield calls
    events.QUEUED_HOOKS.remove(calls.append)
