"""Model instances from the rows of hand-written statements.

The hot paths read with one prepared statement (``config.prepared``) instead
of the ORM, whose building of a query costs more CPU than PostgreSQL's running
it.  ``Reader`` turns the row back into the instance the ORM would have made:
the same fields, each value through the same converters (the backend's and
the field's: SQLite's text datetimes and integer booleans, JSON fields), and
marked as loaded from the database.
"""

from __future__ import annotations

from django.db import models


class Reader:
    """Reads instances of ``model`` from ``columns(alias)``, in that order."""

    def __init__(self, model: type[models.Model], fields: list[models.Field] | None = None):
        self.model = model
        self.fields = list(fields or model._meta.concrete_fields)
        self.attnames = [field.attname for field in self.fields]
        self._converters: dict[str, list] = {}  # per database alias

    def columns(self, alias: str) -> str:
        """``alias.col1, alias.col2, …``: what the statement selects, in order."""
        return ", ".join(f"{alias}.{field.column}" for field in self.fields)

    def _converters_for(self, connection) -> list:
        if connection.alias not in self._converters:
            table = self.model._meta.db_table
            converters = []
            for field in self.fields:
                column = field.get_col(table)
                found = connection.ops.get_db_converters(column) + column.get_db_converters(
                    connection
                )
                converters.append((column, found))
            self._converters[connection.alias] = converters
        return self._converters[connection.alias]

    def read(self, connection, values) -> models.Model:
        """The instance from ``values`` (as many as there are fields, in order)."""
        converted = []
        for value, (column, converters) in zip(
            values, self._converters_for(connection), strict=True
        ):
            for converter in converters:
                value = converter(value, column, connection)
            converted.append(value)
        return self.model.from_db(connection.alias, self.attnames, converted)
