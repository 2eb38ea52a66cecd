"""Set-wise writes that are fast on PostgreSQL and correct everywhere.

On PostgreSQL new rows go in with COPY (ids drawn from the table's sequence in one query) and
updates with COPY into a temporary table + one UPDATE … FROM. Other databases use the ORM's
bulk_create / bulk_update. Only concrete columns are written.

The hot ingest path passes plain value tuples (``insert_values`` / ``update_values``): building a
model instance per row cost more than the database work itself. ``insert_rows`` / ``update_rows``
take model instances and go through the same writers.
"""

import json
import re
import uuid

from django.db import connection
from django.db.models import JSONField
from django.utils import timezone
from psycopg.types.json import set_json_dumps

# From this many rows COPY beats INSERT: Django spells out, and the driver rewrites, one placeholder
# per value (100 events: 5 ms of CPU as a bulk INSERT, under 2 ms as sequence query + COPY).
COPY_THRESHOLD = 10
UPDATE_COPY_THRESHOLD = 200  # an update through COPY costs a temporary table: only for big sets


def _is_postgres():
    return connection.vendor == "postgresql"


def set_local(setting: str, value: str) -> None:
    """``SET LOCAL setting = value`` for the rest of this transaction, on PostgreSQL (else nothing)."""
    if _is_postgres():
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL {setting} = {value}")


def _is_auto_time(field) -> bool:
    return getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)


# JSON values as json.dumps(value, default=str) writes them, with one encoder for every row.
_JSON_ENCODER = json.JSONEncoder(default=str)


def _encode_json(value) -> str:
    # Most profiles' attributes are empty: skip the encoder for them.
    return "{}" if value == {} else _JSON_ENCODER.encode(value)


def _copy_type(field) -> str:
    """The PostgreSQL type name COPY writes a field's values as: "varchar(120)" -> "varchar",
    "numeric(18, 2)" -> "numeric", "varchar(50)[]" -> "varchar[]"."""
    return re.sub(r"\(.*?\)", "", field.db_type(connection))


def _copy(cursor, table, fields, rows) -> None:
    """COPY value tuples into ``table``'s columns of ``fields``, in PostgreSQL's binary format.

    Binary: a value goes over as it is, instead of being formatted as text here and parsed back
    by the server (several times less CPU on each side). So each value must already have its
    column's Python type — str for text, int, bool, Decimal, date, aware datetime — as the typed
    records and model values of the ingest path do; JSON fields take Python objects."""
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    driver_cursor = cursor.cursor  # the driver's own cursor; its errors are wrapped below
    if any(isinstance(f, JSONField) for f in fields):
        set_json_dumps(_encode_json, driver_cursor)  # this cursor only
    with connection.wrap_database_errors, driver_cursor.copy(
        f"COPY {connection.ops.quote_name(table)} ({columns}) FROM STDIN (FORMAT BINARY)"
    ) as copy:
        copy.set_types([_copy_type(f) for f in fields])
        for row in rows:
            copy.write_row(row)


def insert_values(model, field_names, rows, *, batch_size=5000) -> list:
    """Insert rows given as value tuples in ``field_names`` order; returns their new primary keys.
    Fields not named take their model default (auto_now/auto_now_add fields: now)."""
    if not rows:
        return []
    named = [model._meta.get_field(name) for name in field_names]
    defaults = [f for f in model._meta.concrete_fields if f not in named and not f.primary_key]
    if not _is_postgres() or len(rows) < COPY_THRESHOLD:
        attnames = [f.attname for f in named]
        objs = [model(**dict(zip(attnames, row, strict=True))) for row in rows]
        model.objects.bulk_create(objs, batch_size=batch_size)
        return [obj.pk for obj in objs]
    now = timezone.now()
    default_values = tuple(
        now if _is_auto_time(f) else f.get_default() for f in defaults
    )
    pk = model._meta.pk
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)", [table, pk.column, len(rows)]
        )
        ids = [new_id for (new_id,) in cursor.fetchall()]
        _copy(cursor, table, [pk, *named, *defaults], ((new_id, *row, *default_values) for new_id, row in zip(ids, rows, strict=True)))
    return ids


def update_values(model, field_names, rows, *, batch_size=1000) -> None:
    """Write ``field_names`` of existing rows given as tuples (pk, *values in field_names order)."""
    if not rows:
        return
    if not _is_postgres() or len(rows) < UPDATE_COPY_THRESHOLD:
        attnames = [model._meta.get_field(name).attname for name in field_names]
        objs = [model(pk=row[0], **dict(zip(attnames, row[1:], strict=True))) for row in rows]
        model.objects.bulk_update(objs, field_names, batch_size=batch_size)
        return
    table = connection.ops.quote_name(model._meta.db_table)
    all_fields = [model._meta.pk, *(model._meta.get_field(name) for name in field_names)]
    names = [connection.ops.quote_name(f.column) for f in all_fields]
    temp = f"_quorum_update_{uuid.uuid4().hex}"
    with connection.cursor() as cursor:
        # Only the columns being written, without the table's NOT NULL constraints. (COPY, not
        # array parameters: the driver quotes array elements one by one in Python.)
        cursor.execute(f"CREATE TEMP TABLE {temp} AS SELECT {', '.join(names)} FROM {table} WITH NO DATA")
        try:
            _copy(cursor, temp, all_fields, rows)
            assignments = ", ".join(f"{name} = t.{name}" for name in names[1:])
            cursor.execute(f"UPDATE {table} AS m SET {assignments} FROM {temp} AS t WHERE m.{names[0]} = t.{names[0]}")
        finally:
            cursor.execute(f"DROP TABLE IF EXISTS {temp}")


def existing_values(model, sandbox, field_name, values) -> set:
    """The ``values`` that rows of ``model`` in ``sandbox`` already hold in ``field_name``.

    PostgreSQL: one index probe per value (LATERAL … LIMIT 1) whatever the statistics say; a
    plain ``IN (…)``, planned while the table had no statistics, read the sandbox's every row."""
    values = list(values)
    if not values:
        return set()
    if not _is_postgres():
        return set(model.objects.filter(sandbox=sandbox, **{f"{field_name}__in": values}).values_list(field_name, flat=True))
    column = connection.ops.quote_name(model._meta.get_field(field_name).column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT found.v FROM unnest(%s::text[]) AS k(v) CROSS JOIN LATERAL (SELECT {column} AS v FROM "
            f"{connection.ops.quote_name(model._meta.db_table)} WHERE sandbox_id = %s AND {column} = k.v LIMIT 1) AS found",
            [values, sandbox.pk],
        )
        return {value for (value,) in cursor.fetchall()}


def _fill_auto_fields(model, objs):
    now = timezone.now()
    for f in model._meta.concrete_fields:
        if _is_auto_time(f):
            for obj in objs:
                if getattr(obj, f.attname) is None or getattr(f, "auto_now", False):
                    setattr(obj, f.attname, now)


def insert_rows(model, objs, *, batch_size=5000) -> None:
    """Insert new instances and set their primary keys. Their values must have their fields'
    Python types (an int, not "3"; a Decimal, not a float): on PostgreSQL they go over COPY's
    binary format without the ORM's conversions."""
    if not objs:
        return
    if not _is_postgres() or len(objs) < COPY_THRESHOLD:
        model.objects.bulk_create(objs, batch_size=batch_size)
        return
    _fill_auto_fields(model, objs)
    names = [f.name for f in model._meta.concrete_fields if not f.primary_key]
    attnames = [model._meta.get_field(name).attname for name in names]
    ids = insert_values(model, names, [tuple(getattr(obj, a) for a in attnames) for obj in objs])
    for obj, new_id in zip(objs, ids, strict=True):
        obj.pk = new_id
        obj._state.adding = False
        obj._state.db = connection.alias


def update_rows(model, objs, field_names, *, batch_size=1000) -> None:
    """Write ``field_names`` of existing instances (values of their fields' Python types, as for
    insert_rows)."""
    if not objs:
        return
    if not _is_postgres() or len(objs) < UPDATE_COPY_THRESHOLD:
        model.objects.bulk_update(objs, field_names, batch_size=batch_size)
        return
    attnames = [model._meta.get_field(name).attname for name in field_names]
    update_values(model, field_names, [(obj.pk, *(getattr(obj, a) for a in attnames)) for obj in objs])
