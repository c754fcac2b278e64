import pytest

from tests.pay.helpers import online


@pytest.fixture
def worker(agent, clock):
    """The ``agent`` persona, online, at the standing Monday 09:00 UTC of ``clock``."""
    return online(agent)


@pytest.fixture
def colleague(other_agent, clock):
    return online(other_agent)
