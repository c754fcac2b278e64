"""The demo's four past weeks, simulated once (`make run`); only in the embedded default."""

import logging
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from simulation.history import SimulationRefused, live_agents_ready, seed_history


class Command(BaseCommand):
    help = "Simulate the demo's four past weeks, close their pay weeks, export the last (once)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--force", action="store_true", help="Allow outside the embedded default (tests)."
        )

    def handle(self, *args, force=False, **options):
        if not settings.HUMANLINE["DEMO_DATA"] and not force:
            raise CommandError("Demo data is only created in the embedded default.")
        logging.getLogger("celery.app.trace").setLevel(logging.WARNING)
        began = time.perf_counter()
        try:
            seeded = seed_history()
        except SimulationRefused as error:
            self.stderr.write(f"Demo history skipped: {error}")
            return
        live_agents_ready()
        if seeded is None:
            self.stdout.write("Demo history already there.")
            return
        self.stdout.write(
            f"Demo history ready: {seeded.tickets} tickets over "
            f"{seeded.seconds_simulated / 86400:.0f} days, {seeded.closed_periods} pay weeks "
            f"closed, the last exported ({time.perf_counter() - began:.0f} s)."
        )
