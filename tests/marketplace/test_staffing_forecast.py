"""The staffing forecast and plan: expected tickets per half hour from the same half hour of
past weeks, the measured handle time, and required against published, booked and attended.

The clock stands at Monday 2030-01-07 09:00 UTC (the ``clock`` fixture).
"""

from datetime import UTC, datetime, timedelta

import pytest

from marketplace import staffing_selectors as staffing
from marketplace.models import BookingStatus
from tests.factories import AgentFactory
from tests.marketplace.factories import ShiftBookingFactory, ShiftSlotFactory
from tests.tickets.factories import TicketFactory
from tickets.models import TicketStatus

pytestmark = pytest.mark.django_db

STAFFING = "/api/v1/admin/staffing/"


def at(day: int, hour: int, minute: int = 0, second: int = 0, *, month: int = 1, year=2030):
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def arrived(moment: datetime, count: int = 1) -> None:
    for _ in range(count):
        TicketFactory(created_at=moment, queued_at=moment)


def forecast(start: datetime):
    now = datetime.now(UTC)
    return staffing.arrivals_forecast(starts=[start], now=now, weeks=4)[start]


@pytest.fixture
def policy(settings):
    settings.HUMANLINE = {
        **settings.HUMANLINE,
        "STAFFING_FORECAST_WEEKS": 4,
        "STAFFING_MIN_AGENTS": 1,
        "STAFFING_SERVICE_LEVEL": 0.8,
        "STAFFING_ANSWER_SECONDS": 60,
        "STAFFING_HANDLE_SECONDS_DEFAULT": 600,
        "STAFFING_HANDLE_MIN_SAMPLES": 2,
        "AGENT_CAPACITY_DEFAULT": 2,
    }


# --- expected arrivals ------------------------------------------------------------


def test_expected_tickets_are_the_weighted_mean_of_the_same_half_hour_of_the_last_4_weeks(
    clock, policy
):
    # given: history since December; Mondays 10:00-10:30 saw 4, 2, 0 and 2 tickets
    arrived(at(3, 0, month=12, year=2029))
    arrived(at(31, 10, 0, month=12, year=2029), 3)
    arrived(at(31, 10, 29, 59, month=12, year=2029))  # the half hour's last second
    arrived(at(24, 10, 15, month=12, year=2029), 2)
    arrived(at(10, 10, 0, month=12, year=2029), 2)
    # and tickets outside that half hour, or on another weekday
    arrived(at(31, 10, 30, month=12, year=2029), 5)
    arrived(at(31, 9, 59, 59, month=12, year=2029), 5)
    arrived(at(1, 10, 5), 7)  # Tuesday
    arrived(at(3, 10, 5, month=12, year=2029), 9)  # five weeks back

    # when
    expected = forecast(at(7, 10))

    # then: (4·4 + 3·2 + 2·0 + 1·2) / (4 + 3 + 2 + 1)
    assert expected.expected == pytest.approx(2.4)
    assert expected.weeks_counted == 4
    assert forecast(at(7, 10, 30)).expected == pytest.approx(4 * 5 / 10)


def test_weeks_before_the_first_ticket_are_left_out_not_counted_as_quiet(clock, policy):
    arrived(at(24, 10, 5, month=12, year=2029), 2)  # the first ticket ever, and one more
    arrived(at(31, 10, 5, month=12, year=2029), 4)

    expected = forecast(at(7, 10))

    assert expected.weeks_counted == 2
    assert expected.expected == pytest.approx((4 * 4 + 3 * 2) / (4 + 3))


def test_with_no_history_nothing_is_expected(clock, policy):
    assert forecast(at(7, 10)) == staffing.Forecast(expected=0.0, weeks_counted=0)


def test_a_slot_further_than_a_week_ahead_uses_the_latest_weeks_that_have_happened(clock, policy):
    arrived(at(1, 0, month=12, year=2029))
    arrived(at(3, 10, 0), 5)  # Thursday 3 January, the latest Thursday past
    arrived(at(27, 10, 0, month=12, year=2029), 1)

    # Thursday 17 January: 10 January has not happened yet
    expected = forecast(at(17, 10))

    assert expected.expected == pytest.approx((4 * 5 + 3 * 1) / 10)


def test_a_half_hour_under_way_does_not_count_for_next_week(clock, policy):
    clock.move_to(at(7, 9, 10))
    arrived(at(1, 0, month=12, year=2029))
    arrived(at(7, 9, 5), 3)  # this morning, the half hour not over
    arrived(at(31, 9, 5, month=12, year=2029), 2)

    expected = forecast(at(14, 9))

    assert expected.expected == pytest.approx(4 * 2 / 10)


def test_half_hours_are_utc_whatever_the_time_zone_of_the_site(clock, policy, settings):
    # given: a site in India (UTC+5:30), where 10:10 UTC is 15:40 local
    settings.TIME_ZONE = "Asia/Kolkata"
    arrived(at(1, 0, month=12, year=2029))
    arrived(at(31, 10, 10, month=12, year=2029), 4)

    # then: the ticket counts in the 10:00 UTC half hour, not the 10:30 one
    assert forecast(at(7, 10)).expected == pytest.approx(4 * 4 / 10)
    assert forecast(at(7, 10, 30)).expected == 0


# --- handle time ------------------------------------------------------------------------


def resolved_ticket(*, assigned_at: datetime, minutes: float, agent) -> None:
    TicketFactory(
        status=TicketStatus.RESOLVED,
        assigned_agent=agent,
        created_at=assigned_at - timedelta(minutes=1),
        queued_at=assigned_at - timedelta(minutes=1),
        assigned_at=assigned_at,
        resolved_at=assigned_at + timedelta(minutes=minutes),
    )


def test_handle_time_is_the_mean_from_assignment_to_resolve_of_the_last_weeks(clock, policy):
    agent = AgentFactory()
    resolved_ticket(assigned_at=at(6, 12), minutes=4, agent=agent)
    resolved_ticket(assigned_at=at(2, 12), minutes=8, agent=agent)
    resolved_ticket(assigned_at=at(25, 12, month=11, year=2029), minutes=60, agent=agent)  # too old

    inputs = staffing.staffing_inputs()

    assert inputs.handle_seconds == pytest.approx(6 * 60)
    assert (inputs.handle_samples, inputs.handle_measured) == (2, True)


def test_too_few_resolved_tickets_leave_the_default_handle_time(clock, policy):
    resolved_ticket(assigned_at=at(6, 12), minutes=4, agent=AgentFactory())

    inputs = staffing.staffing_inputs()

    assert inputs.handle_seconds == 600
    assert (inputs.handle_samples, inputs.handle_measured) == (1, False)


def test_capacity_is_the_mean_of_approved_agents(clock, policy):
    AgentFactory(capacity=1)
    AgentFactory(capacity=4)
    AgentFactory(capacity=5, status="suspended")

    assert staffing.staffing_inputs().mean_capacity == pytest.approx(2.5)


# --- the plan of a day ---------------------------------------------------------------


@pytest.fixture
def monday(clock, policy):
    """Monday's slots: 08:00-08:30 (past, one attended), 10:00-12:00 for 3 (2 booked),
    10:30-11:00 for 1, one cancelled slot; and 20 tickets last Monday 10:00-10:30."""
    early = ShiftSlotFactory(starts_at=at(7, 8), ends_at=at(7, 8, 30), headcount=1)
    ShiftBookingFactory(slot=early, status=BookingStatus.ATTENDED)
    morning = ShiftSlotFactory(starts_at=at(7, 10), ends_at=at(7, 12), headcount=3)
    ShiftBookingFactory.create_batch(2, slot=morning)
    ShiftSlotFactory(starts_at=at(7, 10, 30), ends_at=at(7, 11), headcount=1)
    ShiftSlotFactory(starts_at=at(7, 13), ends_at=at(7, 14), headcount=9, status="cancelled")
    arrived(at(31, 10, 5, month=12, year=2029), 20)


def by_time(slots):
    return {f"{s['starts_at']:%H:%M}": s for s in slots}


def test_the_day_plan_shows_required_published_booked_and_attended_per_half_hour(monday):
    plan = by_time(staffing.staffing_day(day=at(7, 0).date())["slots"])

    assert len(plan) == 48
    # 20 tickets last Monday at 10:00, the only week on record: 40 an hour, 10 min each,
    # 2 tickets per agent (the factory's capacity): Erlang C asks 10 seats, so 5 agents.
    assert plan["10:00"]["expected_arrivals"] == 20
    assert (plan["10:00"]["required"], plan["10:00"]["published"]) == (5, 3)
    assert (plan["10:00"]["booked"], plan["10:00"]["missing"]) == (2, 2)
    assert (plan["10:30"]["published"], plan["10:30"]["booked"]) == (4, 2)
    assert plan["10:30"]["required"] == 1  # nothing expected: the floor of 1 agent
    assert (plan["11:30"]["published"], plan["12:00"]["published"]) == (3, 0)
    assert (plan["13:00"]["published"], plan["13:00"]["missing"]) == (0, 1)  # cancelled
    # attendance: only for half hours that have ended
    assert (plan["08:00"]["attended"], plan["08:30"]["attended"]) == (1, 0)
    assert plan["09:00"]["attended"] is None and plan["10:00"]["attended"] is None
    # with 2 booked agents (4 seats) for 6.7 erlangs the queue never catches up
    assert plan["10:00"]["predicted_service_level"] == 0.0


def test_staff_read_a_day_s_plan_from_the_api(api, staff, monday):
    response = api.as_(staff).get(STAFFING, {"date": "2030-01-07"})

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["date"] == "2030-01-07"
    assert body["inputs"]["handle_seconds"] == 600 and body["inputs"]["handle_measured"] is False
    ten = by_time(
        [{**s, "starts_at": datetime.fromisoformat(s["starts_at"])} for s in body["slots"]]
    )["10:00"]
    assert {k: ten[k] for k in ("required", "published", "booked", "attended", "missing")} == {
        "required": 5,
        "published": 3,
        "booked": 2,
        "attended": None,
        "missing": 2,
    }


def test_the_api_plans_today_when_no_date_is_given(api, staff, clock, policy):
    response = api.as_(staff).get(STAFFING)

    assert response.json()["date"] == "2030-01-07"


@pytest.mark.parametrize(
    "value", ["07/01/2030", "2030-02-31", "2030-1-7", "tomorrow", "2030-W02-1"]
)
def test_a_malformed_date_is_a_400_naming_it(api, staff, clock, value):
    response = api.as_(staff).get(STAFFING, {"date": value})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_parameter" and list(error["fields"]) == ["date"]


def test_only_staff_read_the_plan(api, agent, clock):
    assert api.as_(agent).get(STAFFING).status_code == 403
    assert api.as_(None).get(STAFFING).status_code == 403
