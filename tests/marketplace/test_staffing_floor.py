"""The operations floor's staffing figures: required against online agents now, and the
predicted service level of the next hour.  The clock stands at Monday 2030-01-07 09:00 UTC."""

from datetime import UTC, datetime

import pytest

from agents.models import Presence
from marketplace import floor
from tests.factories import AgentFactory
from tests.tickets.factories import TicketFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def policy(settings):
    settings.HUMANLINE = {
        **settings.HUMANLINE,
        "STAFFING_FORECAST_WEEKS": 4,
        "STAFFING_MIN_AGENTS": 1,
        "STAFFING_SERVICE_LEVEL": 0.8,
        "STAFFING_ANSWER_SECONDS": 60,
        "STAFFING_HANDLE_SECONDS_DEFAULT": 600,
        "STAFFING_HANDLE_MIN_SAMPLES": 20,
    }


def arrived(hour, minute, count):
    moment = datetime(2029, 12, 31, hour, minute, tzinfo=UTC)
    for _ in range(count):
        TicketFactory(created_at=moment, queued_at=moment, status="cancelled")


def test_the_floor_shows_required_against_online_and_the_next_hour_s_service_level(
    api, staff, clock, policy
):
    # given: last Monday, 20 tickets from 09:00 and 10 from 09:30 (the first on record);
    # four agents online, two tickets each
    arrived(9, 5, 20)
    arrived(9, 40, 10)
    AgentFactory.create_batch(4, presence=Presence.ONLINE, capacity=2)

    # when
    figures = floor.floor_now()

    # then: 40 an hour at 10 min each needs 10 seats, 5 agents; 30 in the next hour on 8
    # seats (5 erlangs) are answered within a minute 87.6 % of the time
    assert (figures.agents_online, figures.staffing_required_now) == (4, 5)
    assert figures.staffing_expected_next_hour == 30
    assert figures.predicted_service_level_next_hour == pytest.approx(0.8761, abs=1e-4)
    body = api.as_(staff).get("/api/v1/admin/floor/").json()
    assert body["staffing_required_now"] == 5
    assert body["predicted_service_level_next_hour"] == pytest.approx(0.8761, abs=1e-4)
    assert (body["staffing_answer_seconds"], body["staffing_service_level_goal"]) == (60, 0.8)


def test_with_nobody_online_the_next_hour_s_tickets_wait(clock, policy):
    arrived(9, 5, 3)

    figures = floor.floor_now()

    assert figures.agents_online == 0
    assert figures.staffing_required_now >= 1
    assert figures.predicted_service_level_next_hour == 0.0


def test_a_quiet_hour_with_nobody_online_still_requires_one_agent(clock, policy):
    figures = floor.floor_now()

    assert (figures.staffing_required_now, figures.predicted_service_level_next_hour) == (1, 1.0)


def test_the_floor_page_flags_too_few_agents(client, staff, clock, policy):
    client.force_login(staff)

    page = client.get("/ops/").content.decode()

    assert 'data-testid="kpi-staffing"' in page
    card = page.split('data-testid="kpi-staffing"')[0].rsplit("<article", 1)[1]
    assert "attention" in card
