import pytest

from operations import metrics


@pytest.fixture(autouse=True)
def _fresh_tallies():
    """Each test's rows are rolled back after it: no totals carried from one to the next."""
    for tally in (metrics.offers_tally, metrics.time_to_human_tally):
        tally.reset()
    yield
