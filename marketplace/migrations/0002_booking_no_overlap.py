"""On PostgreSQL, an exclusion constraint: an agent's place-holding bookings never overlap.

The booking service already checks overlap with the agent's row locked; this
makes the database refuse it too, whatever code path writes.  It is raw SQL
because SQLite (the embedded default) has no range types: there the service's
check, serialised by SQLite's single writer, is the guard, with migration
0008's triggers.
"""

from django.db import migrations

CREATE = """
CREATE EXTENSION IF NOT EXISTS btree_gist;
ALTER TABLE marketplace_shiftbooking
  ADD CONSTRAINT booking_no_overlap_per_agent
  EXCLUDE USING gist (agent_id WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&)
  WHERE (status IN ('booked', 'attended', 'no_show'));
"""

DROP = "ALTER TABLE marketplace_shiftbooking DROP CONSTRAINT booking_no_overlap_per_agent;"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("marketplace", "0001_shifts")]
    operations = [migrations.RunPython(create, drop)]
