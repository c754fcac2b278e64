"""Fixtures shared by the marketplace tests."""

import pytest

from tests.factories import AgentFactory
from tests.marketplace.test_dispatch import go_online


@pytest.fixture
def paula(db):
    """Paula, online and free: English, skilled in payments and general."""
    agent = AgentFactory(user__name="Paula Pay", languages=["en"], skills=["payments", "general"])
    go_online(agent)
    return agent
