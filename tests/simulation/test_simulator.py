"""The simulator: a seed replays a run exactly, and the dispatcher behind it is the
M/M/N queue Erlang C describes when agents hold one ticket and accept every offer."""

import json
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from agents.models import Agent, Presence
from marketplace.models import Offer
from simulation import scenario
from simulation.run import SimulationRefused, simulate
from tickets.models import Message, Rating, Ticket

pytestmark = pytest.mark.django_db(transaction=True)

START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday

# Two lanes, declines and expiries, impatient customers, a lognormal handle time,
# agents on hours with shifts booked, ratings and feedback: most paths of a run.
MIXED = {
    "seed": 11,
    "start": "2026-03-02T06:00:00",
    "hours": 2,
    "arrivals_per_hour": 30,
    "handle": "lognormal",
    "handle_seconds": 200,
    "languages": {"en": 0.8, "fr": 0.2},
    "categories": {"general": 0.6, "payments": 0.4},
    "accept_probability": 0.8,
    "offer_answer_seconds": 6,
    "patience_seconds": 600,
    "shift_hourly_minimum": "9.00",
    "agents": [
        {
            "count": 2,
            "languages": ["en"],
            "skills": ["general", "payments"],
            "capacity": 2,
            "hours": [[6, 8]],
            "book_shifts": True,
        },
        {
            "count": 1,
            "languages": ["en", "fr"],
            "skills": ["general"],
            "capacity": 1,
            "hours": [[6, 8]],
        },
    ],
}


def run_json(*args) -> dict:
    out = StringIO()
    call_command("simulate", *args, "--json", stdout=out, stderr=StringIO())
    return json.loads(out.getvalue())


def test_a_seed_replays_the_same_run(tmp_path):
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps(MIXED))

    first = run_json(str(path))
    second = run_json(str(path))

    assert first == second
    assert first["opened"] > 30 and first["answered"] > 20
    assert first["offers"].get("declined", 0) > 0  # the paths a seed must replay happened
    assert Message.objects.count() > 2 * first["answered"]
    assert Rating.objects.exists()
    # Every agent of both runs left the floor, and nothing of theirs waits.
    assert not Agent.objects.filter(presence=Presence.ONLINE).exists()
    assert not Offer.objects.filter(status="pending").exists()
    assert not Ticket.objects.filter(status__in=["queued", "offered", "assigned"]).exists()


def test_another_seed_is_another_run(tmp_path):
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps(MIXED))

    first = run_json(str(path))
    other = run_json(str(path), "--seed", "12")

    assert (first["opened"], first["mean_wait_seconds"]) != (
        other["opened"],
        other["mean_wait_seconds"],
    )


def test_the_json_report_has_the_figures_and_the_prediction():
    report = run_json(
        "--agents", "2", "--capacity", "1", "--arrivals-per-hour", "12", "--handle-seconds",
        "240", "--answer-seconds", "60", "--hours", "1", "--accept-probability", "1",
        "--seed", "3", "--start", "2026-03-02T00:00:00",
    )  # fmt: skip

    for name in ("answered", "mean_wait_seconds", "p90_wait_seconds", "service_level",
                 "abandoned", "utilisation", "erlang_c"):  # fmt: skip
        assert name in report
    assert report["erlang_c"]["agents"] == 2
    assert report["erlang_c"]["mean_wait_seconds"] == pytest.approx(
        scenario_erlang(arrivals=12, handle=240, agents=2), abs=0.01
    )


def test_the_printed_report_has_every_figure_beside_erlang_c():
    out = StringIO()
    call_command(
        "simulate", "--agents", "2", "--capacity", "1", "--arrivals-per-hour", "12",
        "--handle-seconds", "240", "--answer-seconds", "60", "--hours", "1",
        "--accept-probability", "1", "--seed", "3", "--start", "2026-03-02T00:00:00",
        stdout=out, stderr=StringIO(),
    )  # fmt: skip
    printed = out.getvalue()

    for figure in (
        "answered within 60 s", "(Erlang C ", "mean ", "p50 ", "p90 ", "abandoned ",
        "acceptance ", "utilisation ", "earnings per online h", "p10 ", "min ", "max ",
        "pay-floor top-ups", "ideal FIFO queue",
    ):  # fmt: skip
        assert figure in printed, figure


def scenario_erlang(*, arrivals, handle, agents):
    from marketplace.staffing import erlang_c

    return erlang_c(arrivals, handle, 60, agents=agents).mean_wait_seconds


def test_a_floor_with_someone_else_online_is_refused(agent):
    from agents.presence import agent_presence_set

    agent_presence_set(agent_id=agent.pk, status=Presence.ONLINE)

    with pytest.raises(SimulationRefused):
        simulate(scenario.stationary(
            agents=1, capacity=1, arrivals_per_hour=1, handle_seconds=60, answer_seconds=60,
            hours=1, accept_probability=1, seed=1, start=START,
        ))  # fmt: skip
    assert not Ticket.objects.exists()


# --- the M/M/N agreement ---------------------------------------------------------------

# Five agents holding one ticket each, offered in arrival order, accepting at once:
# M/M/5 at 80 % occupancy.  Two minutes of handle time keep the run short in tickets'
# terms (a mean wait of Erlang C's 66 s); 9 hours are about 1,080 tickets.
AGENTS, ARRIVALS, HANDLE, HOURS = 5, 120.0, 120.0, 9


def test_the_dispatcher_is_the_fifo_m_m_n_queue_of_erlang_c():
    floor = scenario.stationary(
        agents=AGENTS, capacity=1, arrivals_per_hour=ARRIVALS, handle_seconds=HANDLE,
        answer_seconds=60, hours=HOURS, accept_probability=1.0, seed=5,
        offer_answer_seconds=0.0, start=START,
    )  # fmt: skip

    _, report = simulate(floor)

    predicted = report["erlang_c"]["mean_wait_seconds"]
    reference = report["reference"]
    measured = report["mean_wait_seconds"]
    # The run's own arrivals and handle times through an ideal FIFO queue of five
    # seats: its expectation is Erlang C's, and it follows the run ticket by ticket,
    # so the run's mean less this queue's, plus Erlang C, estimates the dispatcher's
    # mean wait with the run's noise taken out (a control variate).
    estimate = measured - reference["mean_wait_seconds"] + predicted
    low, high = reference["dispatcher_added_ci95"]
    assert abs(estimate - predicted) <= 0.10 * predicted
    assert high - low <= 0.10 * predicted  # and the interval is narrow enough to say so
    # The raw mean, noisy as queue waits are, agrees within its own interval.
    raw_low, raw_high = report["mean_wait_ci95"]
    assert raw_low <= predicted <= raw_high
    assert report["answered"] == report["opened"] > 900


# --- scenarios that cannot be played ----------------------------------------------------


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"queue_discipline": "lifo"}, "queue_discipline"),
        ({"arrivals_per_hour": [1, 2, 3]}, "arrivals_per_hour"),
        ({"handle": "uniform"}, "handle"),
        ({"accept_probability": 1.5}, "accept_probability"),
        ({"languages": {"en": 0}}, "languages"),
        ({"agents": [{"count": 2, "capacity": 0}]}, "agents[0]"),
        ({"agents": [{"count": 1, "handle_factor": 0}]}, "agents[0]"),
        ({"agents": [{"count": 1, "colour": "blue"}]}, "agents[0]"),
    ],
)
def test_a_scenario_that_cannot_be_played_is_refused_naming_the_field(tmp_path, change, named):
    path = tmp_path / "wrong.yaml"
    path.write_text(json.dumps({**MIXED, **change}))  # JSON is YAML too

    with pytest.raises(CommandError) as refused:
        call_command("simulate", str(path), stdout=StringIO(), stderr=StringIO())

    assert named in str(refused.value)
    assert not Ticket.objects.exists()


@pytest.mark.postgres("synchronous_commit is a PostgreSQL setting")
def test_a_run_leaves_its_connection_s_commits_as_durable_as_before():
    from django.db import connection

    def synchronous_commit():
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            return cursor.fetchone()[0]

    before = synchronous_commit()
    simulate(scenario.stationary(
        agents=1, capacity=1, arrivals_per_hour=6, handle_seconds=60, answer_seconds=60,
        hours=1, accept_probability=1, seed=1, start=START,
    ))  # fmt: skip

    assert synchronous_commit() == before == "on"
