"""What a simulation is asked to play: demand, handle times, the agents and their hours.

A scenario comes from the command's options (a stationary floor) or from a
YAML or JSON file (``examples/simulate/day.yaml``); both end up as one
``Scenario``.  Hours of day are UTC.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path

import yaml


class ScenarioError(ValueError):
    """A scenario that cannot be played, with the field that is wrong."""


@dataclass(frozen=True)
class AgentGroup:
    """``count`` agents alike.  ``hours`` are their [start, end) blocks online each day
    (UTC hours, end may pass 24); ``weekdays`` the days they work (0 = Monday).

    ``rotation`` (the stationary floor): the group keeps ``count`` seats online
    around the clock in turns of ``rotation`` hours, each seat handed from one
    agent to the next when the leaving agent's last ticket is resolved.
    ``email`` names an existing approved agent (one) to play instead of a new one.
    ``handle_factor``: how long the group's agents take over a ticket against the
    scenario's handle time (a newcomer: 2, twice as long).
    """

    count: int = 1
    languages: tuple[str, ...] = ("en",)
    skills: tuple[str, ...] = ("general",)
    capacity: int = 1
    hours: tuple[tuple[float, float], ...] = ((0.0, 24.0),)
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)
    rotation: float = 0.0
    book_shifts: bool = False
    accept_probability: float | None = None
    handle_factor: float = 1.0
    email: str = ""
    name: str = ""


@dataclass(frozen=True)
class Scenario:
    seed: int = 1
    start: datetime | None = None
    hours: float = 24.0
    # Tickets an hour for each UTC hour of the day (Poisson within the hour);
    # one value is a flat profile.
    arrivals_per_hour: tuple[float, ...] = (10.0,)
    # Weekday multipliers of the profile (Monday first); one value is flat.
    weekday_factors: tuple[float, ...] = (1.0,)
    handle: str = "exponential"  # or "lognormal"
    handle_seconds: float = 300.0
    handle_sigma: float = 0.8  # lognormal only: the sigma of the log
    answer_seconds: int = 60  # the answer-time target for the service level
    languages: dict[str, float] = field(default_factory=lambda: {"en": 1.0})
    categories: dict[str, float] = field(default_factory=lambda: {"general": 1.0})
    agents: tuple[AgentGroup, ...] = (AgentGroup(),)
    accept_probability: float = 0.9
    # Mean seconds an agent takes to answer an offer (exponential); 0 answers at once.
    offer_answer_seconds: float = 4.0
    # Mean seconds a customer waits before cancelling (exponential); 0: never.
    patience_seconds: float = 0.0
    # Customer and agent write back and forth; off, the agent only greets (the
    # first reply that keeps the ticket theirs).
    conversation: bool = True
    rating_share: float = 0.6
    feedback_share: float = 0.12
    # The dispatch sweep runs when an offer is left to expire (at its end) and,
    # while tickets wait, this often (beat runs it every second; here its work,
    # re-offers after the cool-down and the escalation ladder, is rarely due).
    sweep_seconds: float = 60.0
    # After the last arrival, how long tickets still waiting may be served.
    drain_hours: float = 2.0
    # Hourly minimum for the slots the agents book (0: none).
    shift_hourly_minimum: str = "0"

    @property
    def stationary(self) -> bool:
        return len(set(self.arrivals_per_hour)) == 1 and len(set(self.weekday_factors)) == 1

    def rate(self, moment: datetime) -> float:
        """Tickets an hour at ``moment``."""
        profile = self.arrivals_per_hour
        factors = self.weekday_factors
        return profile[moment.hour % len(profile)] * factors[moment.weekday() % len(factors)]


def stationary(
    *,
    agents: int,
    capacity: int,
    arrivals_per_hour: float,
    handle_seconds: float,
    answer_seconds: int,
    hours: float,
    accept_probability: float,
    seed: int,
    **extra,
) -> Scenario:
    """The floor of the Erlang C model: ``agents`` seats online at all times."""
    group = AgentGroup(
        count=agents,
        languages=("en",),
        skills=("general",),
        capacity=capacity,
        rotation=8.0,
    )
    scenario = Scenario(
        seed=seed,
        hours=hours,
        arrivals_per_hour=(arrivals_per_hour,),
        handle_seconds=handle_seconds,
        answer_seconds=answer_seconds,
        agents=(group,),
        accept_probability=accept_probability,
        conversation=extra.pop("conversation", False),
        rating_share=extra.pop("rating_share", 0.0),
        feedback_share=extra.pop("feedback_share", 0.0),
    )
    return check(replace(scenario, **{k: v for k, v in extra.items() if v is not None}))


def _tuple_of_pairs(value) -> tuple[tuple[float, float], ...]:
    return tuple((float(a), float(b)) for a, b in value)


def from_mapping(data: dict) -> Scenario:
    known = {f.name for f in fields(Scenario)}
    unknown = set(data) - known
    if unknown:
        raise ScenarioError(f"Unknown scenario field(s): {', '.join(sorted(unknown))}.")
    values = dict(data)
    if "start" in values and values["start"] is not None:
        values["start"] = parse_start(str(values["start"]))
    for name in ("arrivals_per_hour", "weekday_factors"):
        if name in values:
            raw = values[name]
            values[name] = tuple(float(x) for x in (raw if isinstance(raw, list) else [raw]))
    if "agents" in values:
        group_fields = {f.name for f in fields(AgentGroup)}
        groups = []
        for n, raw in enumerate(values["agents"]):
            wrong = set(raw) - group_fields
            if wrong:
                raise ScenarioError(f"agents[{n}]: unknown field(s) {', '.join(sorted(wrong))}.")
            group = dict(raw)
            for name in ("languages", "skills", "weekdays"):
                if name in group:
                    group[name] = tuple(group[name])
            if "hours" in group:
                group["hours"] = _tuple_of_pairs(group["hours"])
            groups.append(AgentGroup(**group))
        values["agents"] = tuple(groups)
    return check(Scenario(**values))


def load(path: str | Path) -> Scenario:
    text = Path(path).read_text(encoding="utf-8")
    data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ScenarioError("A scenario file holds one mapping of fields.")
    return from_mapping(data)


def parse_start(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _shares(name: str, mix: dict[str, float]) -> None:
    if not mix or any(v < 0 for v in mix.values()) or sum(mix.values()) <= 0:
        raise ScenarioError(f"{name}: give each a share ≥ 0, with some above 0.")


def check(scenario: Scenario) -> Scenario:
    if scenario.hours <= 0:
        raise ScenarioError("hours: simulate at least some time.")
    if not scenario.arrivals_per_hour or any(r < 0 for r in scenario.arrivals_per_hour):
        raise ScenarioError("arrivals_per_hour: rates are ≥ 0.")
    if len(scenario.arrivals_per_hour) not in (1, 24):
        raise ScenarioError("arrivals_per_hour: one rate, or one for each of the 24 hours.")
    if len(scenario.weekday_factors) not in (1, 7):
        raise ScenarioError("weekday_factors: one factor, or one for each of the 7 days.")
    if scenario.handle not in ("exponential", "lognormal"):
        raise ScenarioError("handle: exponential or lognormal.")
    if scenario.handle_seconds <= 0:
        raise ScenarioError("handle_seconds: a mean above 0.")
    if not 0 <= scenario.accept_probability <= 1:
        raise ScenarioError("accept_probability: from 0 to 1.")
    if scenario.offer_answer_seconds < 0 or scenario.patience_seconds < 0:
        raise ScenarioError("offer_answer_seconds and patience_seconds are ≥ 0.")
    if scenario.sweep_seconds <= 0:
        raise ScenarioError("sweep_seconds: above 0.")
    _shares("languages", scenario.languages)
    _shares("categories", scenario.categories)
    if not scenario.agents:
        raise ScenarioError("agents: at least one group.")
    for n, group in enumerate(scenario.agents):
        if group.count < 1 or group.capacity < 1:
            raise ScenarioError(f"agents[{n}]: count and capacity are at least 1.")
        if group.email and group.count != 1:
            raise ScenarioError(f"agents[{n}]: a group naming an agent by e-mail is one agent.")
        if group.rotation and not 0 < group.rotation <= 8:
            raise ScenarioError(
                f"agents[{n}]: rotation is a turn of up to 8 hours (the online-hours cap)."
            )
        if group.accept_probability is not None and not 0 <= group.accept_probability <= 1:
            raise ScenarioError(f"agents[{n}]: accept_probability from 0 to 1.")
        if not 0 < group.handle_factor <= 10:
            raise ScenarioError(f"agents[{n}]: handle_factor above 0, at most 10.")
    return scenario
