"""Set-wise writes that are fast on PostgreSQL and correct everywhere.

On PostgreSQL new rows go in with COPY (ids drawn from the table's sequence in one query) and
updates with COPY into a temporary table + one UPDATE … FROM. Other databases use the ORM's
bulk_create / bulk_update. Only concrete columns are written; callers pass model instances.
"""

import json
import uuid

from django.db import connection
from django.db.models import JSONField

COPY_THRESHOLD = 200  # below this, plain INSERTs are as fast and simpler to reason about


def _is_postgres():
    return connection.vendor == "postgresql"


def _columns(model, field_names):
    fields = [model._meta.get_field(name) for name in field_names]
    return fields, [f.column for f in fields]


def _row(obj, fields, connection_):
    values = []
    for f in fields:
        value = getattr(obj, f.attname)
        if isinstance(f, JSONField):
            value = json.dumps(value, default=str)
        values.append(value)
    return values


def _fill_auto_fields(model, objs):
    from django.utils import timezone

    now = timezone.now()
    for f in model._meta.concrete_fields:
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            for obj in objs:
                if getattr(obj, f.attname) is None or getattr(f, "auto_now", False):
                    setattr(obj, f.attname, now)


def insert_rows(model, objs, *, batch_size=5000) -> None:
    """Insert new instances and set their primary keys."""
    if not objs:
        return
    if not _is_postgres() or len(objs) < COPY_THRESHOLD:
        model.objects.bulk_create(objs, batch_size=batch_size)
        return
    _fill_auto_fields(model, objs)
    table = model._meta.db_table
    pk = model._meta.pk
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)", [table, pk.column, len(objs)]
        )
        for obj, (new_id,) in zip(objs, cursor.fetchall(), strict=True):
            setattr(obj, pk.attname, new_id)
        fields = [f for f in model._meta.concrete_fields]
        columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
        with cursor.cursor.copy(f"COPY {connection.ops.quote_name(table)} ({columns}) FROM STDIN") as copy:
            for obj in objs:
                copy.write_row(_row(obj, fields, connection))
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias


def update_rows(model, objs, field_names, *, batch_size=1000) -> None:
    """Write ``field_names`` of existing instances."""
    if not objs:
        return
    if not _is_postgres() or len(objs) < COPY_THRESHOLD:
        model.objects.bulk_update(objs, field_names, batch_size=batch_size)
        return
    table = connection.ops.quote_name(model._meta.db_table)
    pk = model._meta.pk
    fields, _ = _columns(model, field_names)
    all_fields = [pk, *fields]
    names = [connection.ops.quote_name(f.column) for f in all_fields]
    temp = f"_quorum_update_{uuid.uuid4().hex}"
    with connection.cursor() as cursor:
        # Only the columns being written, without the table's NOT NULL constraints.
        cursor.execute(f"CREATE TEMP TABLE {temp} AS SELECT {', '.join(names)} FROM {table} WITH NO DATA")
        try:
            with cursor.cursor.copy(f"COPY {temp} ({', '.join(names)}) FROM STDIN") as copy:
                for obj in objs:
                    copy.write_row(_row(obj, all_fields, connection))
            assignments = ", ".join(f"{name} = t.{name}" for name in names[1:])
            cursor.execute(f"UPDATE {table} AS m SET {assignments} FROM {temp} AS t WHERE m.{names[0]} = t.{names[0]}")
        finally:
            cursor.execute(f"DROP TABLE IF EXISTS {temp}")
