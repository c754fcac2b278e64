"""Demo sign-ins for the embedded default; refuses to run elsewhere."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from agents.demo import load_demo


class Command(BaseCommand):
    help = "Create the demo users of the embedded default (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--force", action="store_true", help="Allow outside the embedded default (tests)."
        )

    def handle(self, *args, force=False, **options):
        if not settings.HUMANLINE["DEMO_DATA"] and not force:
            raise CommandError("Demo data is only created in the embedded default.")
        from marketplace.demo import load_demo_shifts

        with transaction.atomic():
            created = load_demo()
            slots = load_demo_shifts()
        self.stdout.write(f"Demo data ready ({created} new users, {slots} new shift slots).")
