"""On SQLite (the embedded default), triggers refuse what PostgreSQL refuses.

On PostgreSQL migration 0002's exclusion constraint keeps an agent's
place-holding bookings from overlapping, and migration 0005's triggers keep the
ledger append-only and closed pay periods frozen.  Here SQLite triggers do the
same: an overlapping booking, an UPDATE of a ledger entry, an entry in a closed
period and a change to a closed period are refused (IntegrityError), with
messages like PostgreSQL's.

DELETE is left alone: SQLite has no TRUNCATE, and emptying a table (Django's
``flush``, which the transactional tests run after each test) deletes its
rows.  Rebuilding one of these tables (Django's SQLite schema editor copies it
into a new one) drops its triggers: a later migration that does must create
them again; ``tests/pay/test_append_only.py`` and
``tests/marketplace/test_booking.py`` fail on SQLite if it does not.
"""

from django.db import migrations

HOLDING = "('booked', 'attended', 'no_show')"

OVERLAP = f"""
NEW.status IN {HOLDING} AND EXISTS (
  SELECT 1 FROM marketplace_shiftbooking other
  WHERE other.agent_id = NEW.agent_id AND other.id IS NOT NEW.id
    AND other.status IN {HOLDING}
    AND other.starts_at < NEW.ends_at AND NEW.starts_at < other.ends_at
)
"""

# Timestamps are ISO text in UTC here, so comparing them as text orders them.
TRIGGERS = {
    "booking_no_overlap_per_agent_insert": f"""
CREATE TRIGGER booking_no_overlap_per_agent_insert
BEFORE INSERT ON marketplace_shiftbooking WHEN {OVERLAP}
BEGIN
  SELECT RAISE(ABORT, 'booking_no_overlap_per_agent: an agent''s bookings may not overlap');
END
""",
    "booking_no_overlap_per_agent_update": f"""
CREATE TRIGGER booking_no_overlap_per_agent_update
BEFORE UPDATE OF agent_id, status, starts_at, ends_at ON marketplace_shiftbooking WHEN {OVERLAP}
BEGIN
  SELECT RAISE(ABORT, 'booking_no_overlap_per_agent: an agent''s bookings may not overlap');
END
""",
    "ledger_append_only": """
CREATE TRIGGER ledger_append_only
BEFORE UPDATE ON marketplace_ledgerentry
BEGIN
  SELECT RAISE(ABORT, 'the pay ledger is append-only: UPDATE refused on marketplace_ledgerentry');
END
""",
    "ledger_no_entry_in_closed_period": """
CREATE TRIGGER ledger_no_entry_in_closed_period
BEFORE INSERT ON marketplace_ledgerentry
WHEN EXISTS (SELECT 1 FROM marketplace_payperiod WHERE id = NEW.period_id AND status = 'closed')
BEGIN
  SELECT RAISE(ABORT, 'the pay period is closed: entries go to the next open period');
END
""",
    "pay_period_frozen_when_closed": """
CREATE TRIGGER pay_period_frozen_when_closed
BEFORE UPDATE ON marketplace_payperiod WHEN OLD.status = 'closed'
BEGIN
  SELECT RAISE(ABORT, 'the pay period is closed and frozen: UPDATE refused');
END
""",
}


def create_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for sql in TRIGGERS.values():
            schema_editor.execute(sql, params=None)


def drop_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for name in TRIGGERS:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}", params=None)


class Migration(migrations.Migration):
    dependencies = [("marketplace", "0007_drop_indexes_covered_by_composites")]
    operations = [migrations.RunPython(create_triggers, drop_triggers)]
