"""Presence: online / away / offline, its history, who may go online, sweeper, suspension."""

from datetime import timedelta

import pytest
from django.utils import timezone

from agents import presence, selectors, services
from agents.models import AgentConnection, Presence, PresenceInterval
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/agents/me/presence/"


def _set(agent, status):
    return presence.agent_presence_set(agent_id=agent.pk, status=status)


# --- the endpoint and who may use it -----------------------------------------


def test_approved_agent_goes_online_and_the_state_is_cheap_to_read(api, agent, clock):
    response = api.as_(agent).post(URL, {"status": "online"})

    assert response.status_code == 200, response.json()
    assert response.json()["presence"] == "online"
    agent.refresh_from_db()
    assert agent.presence == Presence.ONLINE
    assert agent.presence_changed_at == timezone.now()
    assert list(selectors.online_agents()) == [agent]


def test_agent_reads_their_own_presence(api, agent):
    response = api.as_(agent).get(URL)
    assert response.status_code == 200
    assert response.json()["presence"] == "offline"


def test_unknown_presence_is_a_400_naming_the_field(api, agent):
    response = api.as_(agent).post(URL, {"status": "busy"})
    assert response.status_code == 400
    assert "status" in response.json()["error"]["fields"]


def test_applicant_may_not_go_online_and_is_told_why(api, applicant):
    response = api.as_(applicant).post(URL, {"status": "online"})

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "agent_not_approved"
    assert "applied" in response.json()["error"]["message"]
    applicant.refresh_from_db()
    assert applicant.presence == Presence.OFFLINE


def test_suspended_agent_may_not_go_online(api, staff):
    suspended = AgentFactory(status="suspended")
    response = api.as_(suspended).post(URL, {"status": "online"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "agent_suspended"


def test_suspended_agent_may_still_say_offline(api):
    suspended = AgentFactory(status="suspended")
    assert api.as_(suspended).post(URL, {"status": "offline"}).status_code == 200


@pytest.mark.parametrize("persona", ["customer", "staff"])
def test_people_who_are_not_agents_have_no_presence(api, request, persona):
    user = request.getfixturevalue(persona)
    assert api.as_(user).post(URL, {"status": "online"}).status_code == 403
    assert api.as_(user).get(URL).status_code == 403


def test_presence_needs_a_sign_in(api):
    assert api.as_(None).post(URL, {"status": "online"}).status_code in (401, 403)


# --- history -----------------------------------------------------------------


def test_every_stretch_of_presence_is_recorded_with_its_bounds(agent, clock):
    start = timezone.now()
    _set(agent, "online")
    clock.shift(timedelta(minutes=20))
    _set(agent, "away")
    clock.shift(timedelta(minutes=5))
    _set(agent, "online")
    clock.shift(timedelta(minutes=10))
    _set(agent, "offline")

    rows = list(
        PresenceInterval.objects.filter(agent=agent).values_list("status", "started_at", "ended_at")
    )
    assert rows == [
        ("online", start, start + timedelta(minutes=20)),
        ("away", start + timedelta(minutes=20), start + timedelta(minutes=25)),
        ("online", start + timedelta(minutes=25), start + timedelta(minutes=35)),
    ]
    assert (
        selectors.online_seconds(agent_id=agent.pk, start=start, end=start + timedelta(hours=1))
        == 30 * 60
    )


def test_setting_the_same_presence_twice_opens_no_new_stretch(agent, clock):
    _set(agent, "online")
    clock.shift(timedelta(minutes=1))
    _set(agent, "online")
    assert PresenceInterval.objects.filter(agent=agent).count() == 1


def test_the_database_refuses_two_open_stretches_for_one_agent(agent):
    from django.db import IntegrityError, transaction

    _set(agent, "online")
    with pytest.raises(IntegrityError), transaction.atomic():
        PresenceInterval.objects.create(agent=agent, status="away", started_at=timezone.now())


def test_online_seconds_count_an_open_stretch_up_to_now_and_clip_to_the_window(agent, clock):
    start = timezone.now()
    _set(agent, "online")
    clock.shift(timedelta(minutes=50))

    window = (start + timedelta(minutes=10), start + timedelta(hours=2))
    seconds = selectors.online_seconds(agent_id=agent.pk, start=window[0], end=window[1])
    assert seconds == 40 * 60


def test_going_online_pushes_presence_and_calls_the_dispatch_hook(
    agent, pushes, django_capture_on_commit_callbacks, monkeypatch
):
    available = []
    monkeypatch.setattr(presence, "AVAILABILITY_HOOKS", [lambda **kw: available.append(kw)])

    with django_capture_on_commit_callbacks(execute=True):
        _set(agent, "online")

    assert [(agent_id, m["type"], m["presence"]) for agent_id, m in pushes] == [
        (agent.pk, "presence.changed", "online")
    ]
    assert available == [{"agent_id": agent.pk}]


def test_going_away_does_not_call_the_dispatch_hook(
    agent, django_capture_on_commit_callbacks, monkeypatch
):
    available = []
    monkeypatch.setattr(presence, "AVAILABILITY_HOOKS", [lambda **kw: available.append(kw)])
    with django_capture_on_commit_callbacks(execute=True):
        _set(agent, "away")
    assert available == []


def test_marketplace_registers_its_agent_available_hook():
    from marketplace import events

    assert events.agent_available in presence.AVAILABILITY_HOOKS


# --- fatigue ------------------------------------------------------------------


def test_going_online_is_refused_after_the_online_hours_cap_in_24_hours(api, agent, clock):
    _set(agent, "online")
    clock.shift(timedelta(hours=12))
    _set(agent, "offline")
    clock.shift(timedelta(minutes=30))

    response = api.as_(agent).post(URL, {"status": "online"})

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "online_hours_cap"


def test_the_online_hours_cap_is_a_rolling_window(agent, clock, settings):
    settings.HUMANLINE = {**settings.HUMANLINE, "ONLINE_HOURS_PER_24H_CAP": 2}
    _set(agent, "online")
    clock.shift(timedelta(hours=2))
    _set(agent, "offline")
    clock.shift(timedelta(hours=23))  # one hour of the two has left the window

    assert _set(agent, "online").presence == Presence.ONLINE


def test_the_sweeper_takes_an_agent_offline_at_the_online_hours_cap(agent, clock, settings):
    settings.HUMANLINE = {**settings.HUMANLINE, "ONLINE_HOURS_PER_24H_CAP": 1}
    _set(agent, "online")
    presence.agent_connection_open(agent_id=agent.pk, channel_name="c1")
    clock.shift(timedelta(minutes=61))
    presence.agent_connection_seen(channel_name="c1")

    result = presence.presence_sweep()

    agent.refresh_from_db()
    assert result["fatigue"] == 1
    assert agent.presence == Presence.OFFLINE
    assert PresenceInterval.objects.get(agent=agent).ended_reason == "fatigue"


# --- suspension -----------------------------------------------------------------


def test_suspension_takes_the_agent_offline_at_once(
    agent, staff, pushes, django_capture_on_commit_callbacks
):
    _set(agent, "online")

    with django_capture_on_commit_callbacks(execute=True):
        services.agent_suspend(actor=staff, agent_id=agent.pk, reason="Rude to a customer.")

    agent.refresh_from_db()
    assert agent.presence == Presence.OFFLINE
    interval = PresenceInterval.objects.get(agent=agent)
    assert interval.ended_at is not None and interval.ended_reason == "suspended"
    assert (agent.pk, "suspended") in [(a, m.get("reason")) for a, m in pushes]


def test_suspension_of_an_offline_agent_writes_no_stretch(agent, staff):
    services.agent_suspend(actor=staff, agent_id=agent.pk, reason="Policy.")
    assert not PresenceInterval.objects.filter(agent=agent).exists()


# --- the sweeper ----------------------------------------------------------------


def test_sweeper_sets_offline_an_agent_whose_sockets_are_gone_beyond_grace(agent, clock):
    _set(agent, "online")
    presence.agent_connection_open(agent_id=agent.pk, channel_name="c1")
    presence.agent_connection_close(channel_name="c1")
    clock.shift(timedelta(seconds=61))

    assert presence.presence_sweep()["gone"] == 1

    agent.refresh_from_db()
    assert agent.presence == Presence.OFFLINE
    assert PresenceInterval.objects.get(agent=agent).ended_reason == "sweeper"


def test_sweeper_leaves_an_agent_within_the_grace_period(agent, clock):
    _set(agent, "online")
    presence.agent_connection_open(agent_id=agent.pk, channel_name="c1")
    presence.agent_connection_close(channel_name="c1")
    clock.shift(timedelta(seconds=59))

    assert presence.presence_sweep()["gone"] == 0
    agent.refresh_from_db()
    assert agent.presence == Presence.ONLINE


def test_a_ping_marks_its_socket_and_its_agent_seen_and_nothing_else(agent, clock):
    other = AgentFactory(status="approved")
    presence.agent_connection_open(agent_id=agent.pk, channel_name="mine")
    presence.agent_connection_open(agent_id=other.pk, channel_name="theirs")
    opened = timezone.now()
    clock.shift(timedelta(seconds=20))

    assert presence.agent_connection_seen(channel_name="mine") is True

    agent.refresh_from_db()
    other.refresh_from_db()
    assert agent.last_seen_at == timezone.now()
    assert AgentConnection.objects.get(channel_name="mine").last_seen_at == timezone.now()
    assert other.last_seen_at == opened
    assert AgentConnection.objects.get(channel_name="theirs").last_seen_at == opened


def test_a_ping_on_a_closed_or_unknown_socket_changes_nothing(agent, clock):
    presence.agent_connection_open(agent_id=agent.pk, channel_name="old")
    presence.agent_connection_close(channel_name="old")
    closed = timezone.now()
    clock.shift(timedelta(seconds=20))

    assert presence.agent_connection_seen(channel_name="old") is False
    assert presence.agent_connection_seen(channel_name="never-opened") is False

    agent.refresh_from_db()
    assert agent.last_seen_at == closed
    assert AgentConnection.objects.get(channel_name="old").last_seen_at == closed


def test_sweeper_leaves_an_agent_with_one_live_socket_among_closed_ones(agent, clock):
    _set(agent, "away")
    presence.agent_connection_open(agent_id=agent.pk, channel_name="old")
    presence.agent_connection_open(agent_id=agent.pk, channel_name="new")
    presence.agent_connection_close(channel_name="old")
    for _ in range(10):
        clock.shift(timedelta(seconds=30))
        presence.agent_connection_seen(channel_name="new")
        presence.presence_sweep()

    agent.refresh_from_db()
    assert agent.presence == Presence.AWAY


def test_sweeper_treats_a_socket_that_stopped_pinging_as_gone(agent, clock):
    _set(agent, "online")
    presence.agent_connection_open(agent_id=agent.pk, channel_name="dead-worker")
    clock.shift(timedelta(seconds=91))  # past the stale limit: its worker died

    assert presence.presence_sweep()["gone"] == 1
    assert AgentConnection.objects.get(channel_name="dead-worker").closed_at is not None


def test_going_online_without_any_socket_gets_the_grace_period_then_is_swept(agent, clock):
    _set(agent, "online")
    clock.shift(timedelta(seconds=30))
    assert presence.presence_sweep()["gone"] == 0
    clock.shift(timedelta(seconds=31))
    assert presence.presence_sweep()["gone"] == 1


def test_sweeper_task_runs_the_sweep(agent, clock):
    from agents.tasks import sweep_presence

    _set(agent, "online")
    clock.shift(timedelta(minutes=5))
    sweep_presence.delay()
    agent.refresh_from_db()
    assert agent.presence == Presence.OFFLINE


def test_beat_schedules_the_presence_sweeper_and_attendance_settlement():
    from config.celery import app

    tasks = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert {"agents.tasks.sweep_presence", "marketplace.tasks.settle_shift_attendance"} <= tasks


def test_online_agents_excludes_away_offline_and_unapproved(agent, other_agent):
    third = AgentFactory()
    _set(agent, "online")
    _set(other_agent, "away")
    _set(third, "online")
    third.status = "suspended"
    third.save()
    assert list(selectors.online_agents()) == [agent]
