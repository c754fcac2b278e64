"""Model instances read and written by plain statements, on PostgreSQL.

The ORM composes a query's SQL again on every call.  For the reads and writes
every ticket runs (an accept's offer locked with its ticket, the ticket's
customer and the agent; the tickets an offer locks; the offers it writes; a
ticket locked with its customer, agent and rating, as a resolve reads it)
composing cost more Python than PostgreSQL spends running them: 0.9 ms of the
accept's 1.0 ms read.  A statement built once from the models' fields is only
run.  A row read is made into instances as the ORM makes them on PostgreSQL:
``Model.from_db``, each value through its field's ``from_db_value`` (the
documented conversion hook; psycopg2 returns every other column as its field
holds it).  A row written has each value prepared by its field as the ORM's
insert prepares it.

SQLite returns datetimes and decimals that only the backend's own converters
make right, so there (the embedded default) callers use the ORM; ``direct()``
says which.  The test suite runs both.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import Model


def direct() -> bool:
    """Are rows read by these statements here (PostgreSQL), or through the ORM?"""
    return connection.vendor == "postgresql"


def columns(model: type[Model], alias: str) -> str:
    """Every column of the model, in its fields' order, as ``alias.column``."""
    return ", ".join(
        f"{alias}.{connection.ops.quote_name(field.column)}"
        for field in model._meta.concrete_fields
    )


def instances(row, models: tuple[type[Model], ...]) -> list[Model | None]:
    """The instances in a row that holds ``columns(model)`` of each model in turn;
    None for a model whose primary key is null (an outer join found no row)."""
    made, start = [], 0
    for model in models:
        fields = model._meta.concrete_fields
        values = list(row[start : start + len(fields)])
        start += len(fields)
        if values[fields.index(model._meta.pk)] is None:
            made.append(None)
            continue
        for n, field in enumerate(fields):
            if hasattr(field, "from_db_value") and values[n] is not None:
                values[n] = field.from_db_value(values[n], None, connection)
        made.append(model.from_db(connection.alias, [f.attname for f in fields], values))
    return made


def insert(objs: list[Model]) -> None:
    """Write new instances of one model in one ``INSERT`` (PostgreSQL), each value
    prepared by its field as the ORM's insert prepares it (``pre_save``,
    ``get_db_prep_save``); their ids are set from ``RETURNING``."""
    model = type(objs[0])
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    row = f"({', '.join(['%s'] * len(fields))})"
    sql = (
        f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)}"  # noqa: S608 (names only)
        f" ({', '.join(connection.ops.quote_name(f.column) for f in fields)})"
        f" VALUES {', '.join([row] * len(objs))}"
        f" RETURNING {connection.ops.quote_name(model._meta.pk.column)}"
    )
    values = [
        field.get_db_prep_save(field.pre_save(obj, add=True), connection)
        for obj in objs
        for field in fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        ids = cursor.fetchall()
    for obj, (pk,) in zip(objs, ids, strict=True):
        obj.pk = pk
        obj._state.adding, obj._state.db = False, connection.alias
