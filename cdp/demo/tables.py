"""Writing generated rows straight into tables: COPY on PostgreSQL (psycopg 3), executemany
elsewhere, plus reserving blocks of primary keys so rows can reference each other before they
are written.

Callers chunk their rows and wrap each chunk in a transaction: memory stays constant and a
PostgreSQL transaction never queues millions of deferred foreign-key checks.
"""

import json

from django.db import connection, models, transaction


class JsonText(str):
    """A JSON document already serialised (cached for values repeated millions of times)."""


def _json(value):
    if value is None or isinstance(value, JsonText):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


class TableWriter:
    """Inserts tuples (in ``columns`` order, column attnames such as ``sandbox_id``) into a model's
    table. JSON columns take dicts/lists or JsonText; other values are plain Python values."""

    def __init__(self, model, columns):
        self.model = model
        self.columns = list(columns)
        self.table = model._meta.db_table
        fields = [model._meta.get_field(name) for name in self.columns]
        quote = connection.ops.quote_name
        column_list = ", ".join(quote(field.column) for field in fields)
        self.json_positions = [i for i, f in enumerate(fields) if isinstance(f, models.JSONField)]
        if is_postgresql():
            self.statement = f"COPY {quote(self.table)} ({column_list}) FROM STDIN"
            self.converters = None
        else:
            placeholders = ", ".join(["%s"] * len(fields))
            self.statement = f"INSERT INTO {quote(self.table)} ({column_list}) VALUES ({placeholders})"
            self.converters = [
                _json if isinstance(field, models.JSONField) else _prep_for(field) for field in fields
            ]

    def insert(self, rows) -> int:
        """Write ``rows`` (any iterable) in the current transaction; return how many."""
        count = 0
        with connection.cursor() as cursor:
            if self.converters is None:
                json_positions = self.json_positions
                with cursor.cursor.copy(self.statement) as copy:
                    write_row = copy.write_row
                    for row in rows:
                        if json_positions:
                            row = list(row)
                            for i in json_positions:
                                row[i] = _json(row[i])
                        write_row(row)
                        count += 1
            else:
                converters = self.converters
                batch = []
                for row in rows:
                    batch.append([convert(value) for convert, value in zip(converters, row, strict=True)])
                    if len(batch) >= 5000:
                        cursor.executemany(self.statement, batch)
                        count += len(batch)
                        batch = []
                if batch:
                    cursor.executemany(self.statement, batch)
                    count += len(batch)
        return count


def _prep_for(field):
    """What Django's SQLite backend stores for a field's value, without its per-value overhead
    (the ORM path costs ~20 µs a value; these are what get_db_prep_save returns)."""
    if isinstance(field, models.DateTimeField):
        zone = connection.timezone

        def prep_datetime(value):
            return None if value is None else str(value.astimezone(zone).replace(tzinfo=None))

        return prep_datetime
    if isinstance(field, models.DateField):
        return lambda value: None if value is None else str(value)
    if isinstance(field, (models.CharField, models.IntegerField, models.BooleanField, models.DecimalField, models.ForeignKey)):
        return lambda value: value
    return lambda value: None if value is None else field.get_db_prep_save(value, connection)


def reserve_ids(model, count: int) -> int:
    """The first of ``count`` consecutive primary keys that no other insert will be given.

    PostgreSQL: the table is locked against inserts for the moment it takes to move its identity
    sequence past the block. SQLite (writers are serialised): the AUTOINCREMENT counter is moved,
    so ids of deleted rows — merged people, for instance — are never handed out again.
    """
    if count <= 0:
        return 0
    table = model._meta.db_table
    quote = connection.ops.quote_name
    with transaction.atomic(), connection.cursor() as cursor:
        if is_postgresql():
            cursor.execute(f"LOCK TABLE {quote(table)} IN SHARE ROW EXCLUSIVE MODE")
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [quote(table)])
            sequence = cursor.fetchone()[0]
            cursor.execute(
                f"SELECT GREATEST(nextval(%s), (SELECT COALESCE(MAX(id), 0) + 1 FROM {quote(table)}))", [sequence]
            )
            start = cursor.fetchone()[0]
            cursor.execute("SELECT setval(%s, %s)", [sequence, start + count - 1])
        else:
            cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {quote(table)}")
            highest = cursor.fetchone()[0]
            cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
            row = cursor.fetchone()
            start = max(highest, row[0] if row else 0) + 1
            if row:
                cursor.execute("UPDATE sqlite_sequence SET seq = %s WHERE name = %s", [start + count - 1, table])
            else:
                cursor.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (%s, %s)", [table, start + count - 1])
    return start


def analyze(models_):
    """Refresh the planner's statistics after a bulk load (PostgreSQL; SQLite's ANALYZE is cheap too)."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for model in models_:
            cursor.execute(f"ANALYZE {quote(model._meta.db_table)}")
