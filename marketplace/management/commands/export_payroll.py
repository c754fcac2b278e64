"""``python manage.py export_payroll PERIOD [-o FILE]``: a closed period's payroll CSV.

PERIOD is a pay period's id or any date (YYYY-MM-DD) inside it.  The bytes are
the same as the API's and the admin's, and the export is recorded with its
SHA-256 like theirs.
"""

import sys
from datetime import UTC, date, datetime, time

from django.core.management.base import BaseCommand, CommandError

from config.errors import DomainError
from marketplace.models import PayPeriod
from marketplace.services import payroll
from marketplace.services.ledger import period_bounds


def find_period(value: str) -> PayPeriod:
    if value.isdigit():
        period = PayPeriod.objects.filter(pk=int(value)).first()
    else:
        try:
            day = date.fromisoformat(value)
        except ValueError as exc:
            raise CommandError("PERIOD is a pay period id or a date, YYYY-MM-DD.") from exc
        start, _ = period_bounds(datetime.combine(day, time(12), tzinfo=UTC))
        period = PayPeriod.objects.filter(starts_at=start).first()
    if period is None:
        raise CommandError(f"No pay period {value}.")
    return period


class Command(BaseCommand):
    help = "Export a closed pay period's payroll as CSV (to stdout or --output)."

    def add_arguments(self, parser):
        parser.add_argument("period", help="Pay period id, or a date inside it (YYYY-MM-DD).")
        parser.add_argument("-o", "--output", help="Write to this file instead of stdout.")

    def handle(self, *args, period, output=None, **options):
        found = find_period(period)
        try:
            chunks = payroll.payroll_export(period_id=found.pk, actor=None, channel="command")
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        if output:
            with open(output, "wb") as target:
                for chunk in chunks:
                    target.write(chunk)
        else:
            stream = getattr(self.stdout, "_out", sys.stdout)
            target = getattr(stream, "buffer", None)
            for chunk in chunks:
                if target is not None:
                    target.write(chunk)
                else:
                    stream.write(chunk.decode())
            stream.flush()
        latest = found.exports.order_by("-id").first()
        self.stderr.write(f"period {found.pk}: {latest.row_count} rows, sha256 {latest.sha256}")
