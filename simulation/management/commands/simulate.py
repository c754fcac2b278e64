"""``python manage.py simulate``: a simulated floor driven through the real services."""

import dataclasses
import json
import logging
import time

from django.core.management.base import BaseCommand, CommandError

from simulation import report, scenario
from simulation.run import SimulationRefused, simulate


class Command(BaseCommand):
    help = (
        "Simulate customers and agents on a simulated clock against the real services "
        "(dispatch, offers, pay, presence, shifts) and report waits, service level, "
        "utilisation and earnings beside Erlang C. A scenario file, or the options of a "
        "stationary floor."
    )

    def add_arguments(self, parser):
        parser.add_argument("scenario_file", nargs="?", help="A YAML or JSON scenario.")
        parser.add_argument("--agents", type=int, help="Agents online at all times.")
        parser.add_argument("--capacity", type=int, default=1, help="Tickets an agent holds.")
        parser.add_argument("--arrivals-per-hour", type=float, help="Tickets an hour (Poisson).")
        parser.add_argument("--handle-seconds", type=float, default=300.0, help="Mean handle time.")
        parser.add_argument(
            "--handle", choices=["exponential", "lognormal"], default=None, help="Its law."
        )
        parser.add_argument(
            "--answer-seconds", type=int, default=None, help="Target for the service level."
        )
        parser.add_argument("--hours", type=float, default=None, help="Simulated hours.")
        parser.add_argument("--accept-probability", type=float, default=None)
        parser.add_argument(
            "--offer-answer-seconds",
            type=float,
            default=None,
            help="Mean time an agent takes to answer an offer (0: at once).",
        )
        parser.add_argument(
            "--patience-seconds", type=float, default=None, help="Mean patience (0: endless)."
        )
        parser.add_argument("--sweep-seconds", type=float, default=None)
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument("--start", help="Simulated start (ISO 8601, UTC by default).")
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def scenario(self, options) -> scenario.Scenario:
        overrides = {
            name: options[name]
            for name in (
                "handle",
                "answer_seconds",
                "hours",
                "accept_probability",
                "offer_answer_seconds",
                "patience_seconds",
                "sweep_seconds",
                "seed",
            )
            if options[name] is not None
        }
        if options["start"]:
            overrides["start"] = scenario.parse_start(options["start"])
        if options["scenario_file"]:
            if options["agents"] is not None or options["arrivals_per_hour"] is not None:
                raise CommandError("Give a scenario file or --agents and --arrivals-per-hour.")
            loaded = scenario.load(options["scenario_file"])
            return scenario.check(dataclasses.replace(loaded, **overrides))
        if options["agents"] is None or options["arrivals_per_hour"] is None:
            raise CommandError("Give a scenario file, or --agents and --arrivals-per-hour.")
        return scenario.stationary(
            agents=options["agents"],
            capacity=options["capacity"],
            arrivals_per_hour=options["arrivals_per_hour"],
            handle_seconds=options["handle_seconds"],
            answer_seconds=overrides.pop("answer_seconds", 60),
            hours=overrides.pop("hours", 24.0),
            accept_probability=overrides.pop("accept_probability", 1.0),
            seed=overrides.pop("seed", 1),
            **overrides,
        )

    def handle(self, *args, **options):
        try:
            chosen = self.scenario(options)
        except (scenario.ScenarioError, OSError, ValueError) as error:
            raise CommandError(str(error)) from error
        # Every task runs in-process: their per-task log lines would drown the report.
        logging.getLogger("celery.app.trace").setLevel(logging.WARNING)
        began = time.perf_counter()
        try:
            engine, result = simulate(chosen)
        except SimulationRefused as error:
            raise CommandError(str(error)) from error
        took = time.perf_counter() - began
        if options["json"]:
            self.stdout.write(json.dumps(result, sort_keys=True))
        else:
            self.stdout.write(report.text(result))
        self.stderr.write(
            f"{engine.tally.events} events, {engine.tally.sweeps} sweeps in {took:.1f} s"
        )
