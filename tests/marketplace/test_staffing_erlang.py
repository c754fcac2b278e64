"""Erlang C (``marketplace.staffing``) against published values, and at sizes that overflow
the textbook formula."""

import math

import pytest
from scipy.stats import poisson

from marketplace.staffing import MAX_SEATS, StaffingInputError, erlang_b, erlang_c

# --- published values ----------------------------------------------------------


def test_the_pyworkforce_example_needs_14_agents_for_80_percent_in_20_seconds():
    # pyworkforce's README (ErlangC(transactions=100, aht=3, asa=20/60, interval=30)):
    # raw_positions 14, service_level 0.8883500191794669, occupancy 0.7142857142857143,
    # waiting_probability 0.1741319335950498.
    staffing = erlang_c(200, 180, 20, service_level=0.8)

    assert staffing.agents == 14
    assert staffing.service_level == pytest.approx(0.8883500191794669, abs=1e-12)
    assert staffing.occupancy == pytest.approx(0.7142857142857143, abs=1e-12)
    assert staffing.probability_of_waiting == pytest.approx(0.1741319335950498, abs=1e-12)
    # mean wait = Pw · h / (m − A) = 0.17413 · 180 / 4
    assert staffing.mean_wait_seconds == pytest.approx(7.836, abs=1e-3)
    assert staffing.traffic_erlangs == pytest.approx(10.0)


def test_one_agent_fewer_misses_the_goal():
    assert erlang_c(200, 180, 20, agents=13).service_level < 0.8


def test_two_call_takers_on_30_one_minute_calls_an_hour_keep_fewer_than_8_percent_waiting():
    # The Footbridge "Call Calc" application note (al911.org): fewer than 8 % wait
    # more than 10 s; with 80-second calls that rises to 14 %.
    one_minute = erlang_c(30, 60, 10, agents=2)
    eighty_seconds = erlang_c(30, 80, 10, agents=2)

    assert 1 - one_minute.service_level == pytest.approx(0.0779, abs=1e-4)
    assert 1 - eighty_seconds.service_level == pytest.approx(0.14, abs=5e-3)


@pytest.mark.parametrize(
    ("traffic", "servers", "waiting"),
    [(1, 2, 1 / 3), (2, 3, 4 / 9), (0.5, 2, 0.1)],
)
def test_the_probability_of_waiting_matches_the_closed_form(traffic, servers, waiting):
    # Erlang C worked by hand: C(2, 1) = 1/3, C(3, 2) = 4/9, C(2, 0.5) = 1/10.
    staffing = erlang_c(traffic * 60, 60, 0, agents=servers)

    assert staffing.probability_of_waiting == pytest.approx(waiting, abs=1e-12)
    assert staffing.service_level == pytest.approx(1 - waiting, abs=1e-12)


def test_erlang_b_matches_the_table():
    # Erlang B tables: 10 erlangs on 10 trunks block 21.46 %; on 20, 0.19 %.
    assert erlang_b(10, 10.0) == pytest.approx(0.2146, abs=5e-5)
    assert erlang_b(20, 10.0) == pytest.approx(0.0019, abs=5e-5)


# --- large pools: no factorial, no overflow -----------------------------------------


def _reference(seats: int, traffic: float) -> float:
    """Erlang C from the Poisson distribution (scipy, in log space): B = P(X = m) / P(X ≤ m)."""
    blocking = poisson.pmf(seats, traffic) / poisson.cdf(seats, traffic)
    return seats * blocking / (seats - traffic * (1 - blocking))


@pytest.mark.parametrize("seats", [171, 1_000, 6_100])
def test_pools_past_170_seats_agree_with_an_independent_log_space_computation(seats):
    traffic = seats * 0.97
    staffing = erlang_c(traffic * 3600 / 300, 300, 20, agents=seats)

    assert math.isfinite(staffing.mean_wait_seconds)
    assert staffing.probability_of_waiting == pytest.approx(_reference(seats, traffic), rel=1e-9)


def test_the_brief_s_peak_is_staffed_as_the_fewest_agents_that_meet_the_goal():
    # 10 tickets a second, 10 minutes each: 6000 erlangs.
    staffing = erlang_c(36_000, 600, 20, service_level=0.8)

    assert 6_000 < staffing.agents < 6_100
    assert staffing.service_level >= 0.8
    assert erlang_c(36_000, 600, 20, agents=staffing.agents - 1).service_level < 0.8


# --- capacity -----------------------------------------------------------------------


def test_agents_holding_two_tickets_bring_two_seats_each():
    seats_alone = erlang_c(200, 180, 20, service_level=0.8)
    doubled = erlang_c(200, 180, 20, service_level=0.8, capacity=2)

    assert (doubled.agents, doubled.seats) == (7, 14)
    assert doubled.service_level == seats_alone.service_level


def test_whole_agents_bring_whole_seats_and_the_figures_are_those_seats():
    # 14 seats needed; at 2.5 tickets each, 6 agents (15 seats) are the fewest.
    staffing = erlang_c(200, 180, 20, service_level=0.8, capacity=2.5)

    assert (staffing.agents, staffing.seats) == (6, 15)
    assert staffing.service_level == erlang_c(200, 180, 20, agents=15).service_level
    assert staffing.occupancy == pytest.approx(10 / 15)


# --- edges -----------------------------------------------------------------------------


def test_no_arrivals_need_nobody_and_nobody_waits():
    staffing = erlang_c(0, 300, 20, service_level=0.9)

    assert (staffing.agents, staffing.service_level, staffing.mean_wait_seconds) == (0, 1.0, 0.0)
    assert staffing.occupancy == 0.0


def test_too_few_seats_for_the_traffic_never_catch_up():
    staffing = erlang_c(200, 180, 20, agents=10)  # 10 erlangs on 10 seats

    assert staffing.service_level == 0.0
    assert staffing.mean_wait_seconds == math.inf
    assert staffing.occupancy == 1.0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"arrivals_per_hour": -1}, "arrivals_per_hour"),
        ({"arrivals_per_hour": math.nan}, "arrivals_per_hour"),
        ({"handle_seconds": 0}, "handle_seconds"),
        ({"handle_seconds": math.inf}, "handle_seconds"),
        ({"answer_seconds": -5}, "answer_seconds"),
        ({"service_level": 1}, "service_level"),
        ({"service_level": 0}, "service_level"),
        ({"service_level": None, "agents": -1}, "agents"),
        ({"service_level": None, "agents": 2.5}, "agents"),
        ({"service_level": None}, "agents"),
        ({"agents": 3}, "agents"),
        ({"capacity": 0.5}, "capacity"),
        ({"arrivals_per_hour": 10**9, "handle_seconds": 3600}, "arrivals_per_hour"),
    ],
)
def test_input_erlang_c_cannot_work_with_names_its_field(kwargs, field):
    arguments = {
        "arrivals_per_hour": 200,
        "handle_seconds": 180,
        "answer_seconds": 20,
        "service_level": 0.8,
        **kwargs,
    }

    with pytest.raises(StaffingInputError) as caught:
        erlang_c(**arguments)

    assert caught.value.field == field


def test_a_goal_out_of_reach_of_the_largest_pool_is_refused():
    # Nearly MAX_SEATS erlangs, and almost everyone answered at once: beyond the cap.
    traffic = MAX_SEATS * 0.999
    with pytest.raises(StaffingInputError) as caught:
        erlang_c(traffic * 3600 / 60, 60, 0, service_level=0.999999)

    assert caught.value.field == "service_level"
