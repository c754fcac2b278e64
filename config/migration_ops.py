"""Migration operations that leave a live database writable while they run.

``AddIndexOnline`` and ``RemoveIndexOnline`` build and drop an index
``CONCURRENTLY`` on PostgreSQL: a plain ``CREATE INDEX`` on the tickets table
holds back every insert and update of it (opening a ticket, offering it) for
as long as the build takes, which on a table of millions is minutes of
customers not reaching anyone.  Elsewhere (the embedded SQLite default) they
are the plain operations.  A migration using them sets ``atomic = False``:
PostgreSQL builds an index concurrently only outside a transaction.  If such
a build fails it leaves an invalid index behind; drop it before migrating
again.
"""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db.migrations.operations import AddIndex, RemoveIndex


class _OnlineOnPostgreSQL:
    """The concurrent operation on PostgreSQL, ``plain`` elsewhere."""

    plain: type

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
        else:
            self.plain.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
        else:
            self.plain.database_backwards(self, app_label, schema_editor, from_state, to_state)


class AddIndexOnline(_OnlineOnPostgreSQL, AddIndexConcurrently):
    plain = AddIndex


class RemoveIndexOnline(_OnlineOnPostgreSQL, RemoveIndexConcurrently):
    plain = RemoveIndex
