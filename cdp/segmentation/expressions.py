"""ORM expressions the compiler needs that Django doesn't ship: typed reads of one key of a JSON
column, written per database (``as_postgresql`` / ``as_sqlite``) the way Django's own functions
are, so the compiler stays one piece of ORM code for both.

A JSON value is compared by its JSON type, the same way on both databases: a string only with
text, a number only with numbers, true/false only with booleans (``"42"`` is not ``42``). Keys are
always object keys (Django's KeyTransform reads "5" as an array index; we never do).
"""

import json

from django.db import NotSupportedError
from django.db.models import BooleanField, DecimalField, F, Func, TextField, Value

KINDS = {"text": TextField, "number": DecimalField, "bool": BooleanField}
PG_TYPES = {"text": "string", "number": "number", "bool": "boolean"}
PG_CASTS = {"text": "", "number": "::numeric", "bool": "::boolean"}
SQLITE_TYPES = {"text": "('text')", "number": "('integer', 'real')", "bool": "('true', 'false')"}


def sqlite_path(key: str) -> str:
    # Always a quoted object member: $."key" (catalog.JSON_KEY_RE keeps quotes and backslashes out).
    return "$." + json.dumps(key)


class _JsonKey(Func):
    """Base: one key of a JSON column (``column`` is a lookup path such as ``account__attributes``)."""

    def __init__(self, column: str, key: str, output_field):
        super().__init__(F(column), output_field=output_field)
        self.key = key

    def as_sql(self, compiler, connection, **extra_context):
        raise NotSupportedError(f"audiences run on PostgreSQL and SQLite, not {connection.vendor}")

    def _column(self, compiler):
        return compiler.compile(self.source_expressions[0])


class JsonValue(_JsonKey):
    """The value under ``key`` if its JSON type is ``kind`` (text | number | bool), else NULL."""

    def __init__(self, column: str, key: str, kind: str):
        super().__init__(column, key, KINDS[kind]())
        self.kind = kind

    def as_postgresql(self, compiler, connection, **extra_context):
        column, params = self._column(compiler)
        sql = (
            f"(CASE WHEN jsonb_typeof({column} -> %s) = '{PG_TYPES[self.kind]}' "
            f"THEN ({column} ->> %s){PG_CASTS[self.kind]} END)"
        )
        return sql, (*params, self.key, *params, self.key)

    def as_sqlite(self, compiler, connection, **extra_context):
        column, params = self._column(compiler)
        path = sqlite_path(self.key)
        value = f"json_type({column}, %s) = 'true'" if self.kind == "bool" else f"json_extract({column}, %s)"
        sql = f"(CASE WHEN json_type({column}, %s) IN {SQLITE_TYPES[self.kind]} THEN {value} END)"
        return sql, (*params, path, *params, path)


class JsonPresent(_JsonKey):
    """True when the key holds a value: present, not null and not the empty string (like a blank
    text column, "" counts as missing). Never NULL."""

    def __init__(self, column: str, key: str):
        super().__init__(column, key, BooleanField())

    def as_postgresql(self, compiler, connection, **extra_context):
        column, params = self._column(compiler)
        sql = f"COALESCE(jsonb_typeof({column} -> %s) <> 'null' AND ({column} ->> %s) <> '', FALSE)"
        return sql, (*params, self.key, *params, self.key)

    def as_sqlite(self, compiler, connection, **extra_context):
        column, params = self._column(compiler)
        path = sqlite_path(self.key)
        sql = (
            f"COALESCE(json_type({column}, %s) <> 'null' "
            f"AND NOT (json_type({column}, %s) = 'text' AND json_extract({column}, %s) = ''), 0)"
        )
        return sql, (*params, path, *params, path, *params, path)


class JsonHasKey(_JsonKey):
    """True when the object has the key, whatever its value (null included). Never NULL."""

    def __init__(self, column: str, key: str):
        super().__init__(column, key, BooleanField())

    def as_postgresql(self, compiler, connection, **extra_context):
        column, params = self._column(compiler)
        return f"(({column} -> %s) IS NOT NULL)", (*params, self.key)

    def as_sqlite(self, compiler, connection, **extra_context):
        column, params = self._column(compiler)
        return f"(json_type({column}, %s) IS NOT NULL)", (*params, sqlite_path(self.key))


class NumberLiteral(Value):
    """A number to compare with a JSON number: numeric on PostgreSQL; on SQLite a REAL, since a
    decimal parameter would arrive as text and text never equals a number there."""

    def __init__(self, value):
        super().__init__(value, output_field=DecimalField())

    def as_postgresql(self, compiler, connection, **extra_context):
        return "%s::numeric", (str(self.value),)

    def as_sqlite(self, compiler, connection, **extra_context):
        return "%s", (float(self.value),)
