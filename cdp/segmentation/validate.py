"""Semantic validation of an AST against the catalog: every field exists, every value has the
field's type, every operator suits the type. Both forms go through it (the parser with line and
column, ``from_tree`` with JSON paths), and so does an AST built in code."""

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal

from . import catalog
from .ast import (
    CASE_OPS,
    COMPARE_OPS,
    DIRECTIONS,
    LIST_OPS,
    ORDER_OPS,
    SUBJECTS,
    UNITS,
    VALUELESS_OPS,
    WINDOW_OPS,
    And,
    Audience,
    Between,
    Compare,
    Count,
    InSegment,
    Not,
    Occurrence,
    Occurs,
    Or,
)
from .catalog import BOOL, DATE, DATETIME, DECIMAL, INT, TEXT, TYPE_WORDS
from .errors import PQLValidationError

MAX_DEPTH = 25
MAX_LIST_VALUES = 1000
MAX_COUNT = 1_000_000
MAX_AUDIENCE_ID = 255
# The longest window per unit (a century): keeps date arithmetic in range and windows sensible.
MAX_AMOUNT = {"minutes": 52_560_000, "hours": 876_000, "days": 36_500, "weeks": 5_200, "months": 1_200, "years": 100}
# A group holding a quantifier, itself quantified: "(a+)+", "(\\w*x)*", "(x{2,})+". Backtracking
# engines (Python's re, which evaluates REGEXP on SQLite) take exponential time on such patterns.
NESTED_QUANTIFIER = re.compile(r"\((?:[^()\\]|\\.)*[+*}](?:[^()\\]|\\.)*\)(?:[+*]|\{\d*,)")
TEXT_ONLY_OPS = ("contains", "startsWith", "endsWith", "like", "matches")
OP_WORDS = {
    "eq": "=", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">=", "in": "in", "notIn": "notIn",
    "contains": "contains()", "startsWith": "startsWith()", "endsWith": "endsWith()", "like": "like()",
    "matches": "matches()", "isNull": "isNull()", "isNotNull": "isNotNull()", "exists": "exists()",
}  # fmt: skip


@dataclass(frozen=True)
class Scope:
    entity: catalog.Entity
    prefix: str  # how PQL names the scope: the subject ("person") or a variable ("e")
    depth: int = 0


def validate(audience: Audience) -> None:
    """Raise PQLValidationError on the first problem found; return None when the AST is valid."""
    if not isinstance(audience, Audience):
        raise PQLValidationError("expected an Audience", json_path="$")
    if audience.subject not in SUBJECTS:
        raise PQLValidationError(f'subject is "person" or "account", not "{audience.subject}"', json_path="$.subject")
    _Validator().condition(audience.condition, Scope(catalog.ENTITIES[audience.subject], audience.subject), "$.condition")


def segment_references(audience: Audience) -> list[tuple[str, str]]:
    """(audience id, "person" | "account") for each inSegment of a valid AST: the kind of
    audience each reference must name."""
    validator = _Validator()
    validator.condition(audience.condition, Scope(catalog.ENTITIES[audience.subject], audience.subject), "$.condition")
    return validator.references


def field_text(scope: Scope, path) -> str:
    return ".".join((scope.prefix, *path))


class _Validator:
    def __init__(self):
        self.references = []  # (audience id, entity name) of each inSegment

    def fail(self, message, node, json_path, field=""):
        # Text knows lines and columns, a rule tree JSON paths: say where in the form at hand.
        if getattr(node, "pos", None):
            line, column = node.pos
            raise PQLValidationError(f"{message} (line {line}, column {column})", field=field, line=line, column=column)
        raise PQLValidationError(f"{message} (at {json_path})", field=field, json_path=json_path)

    def condition(self, node, scope: Scope, path: str):
        if scope.depth > MAX_DEPTH:
            self.fail(f"conditions nest more than {MAX_DEPTH} levels deep", node, path)
        handler = {
            And: self.group,
            Or: self.group,
            Not: self.negation,
            Compare: self.compare,
            Occurs: self.occurs,
            Between: self.between,
            InSegment: self.in_segment,
            Count: self.count,
            Occurrence: self.occurrence,
        }.get(type(node))
        if handler is None:
            self.fail(f"{type(node).__name__} is not a condition", node, path)
        handler(node, scope, path)

    def group(self, node, scope, path):
        if len(node.conditions) < 2:
            self.fail("a group needs at least two conditions", node, f"{path}.conditions")
        for i, child in enumerate(node.conditions):
            self.condition(child, Scope(scope.entity, scope.prefix, scope.depth + 1), f"{path}.conditions[{i}]")

    def negation(self, node, scope, path):
        self.condition(node.condition, Scope(scope.entity, scope.prefix, scope.depth + 1), f"{path}.condition")

    # --- Paths ---------------------------------------------------------------------------------

    def resolve(self, node, scope, path_tuple, json_path) -> catalog.Resolved:
        try:
            return catalog.resolve(scope.entity, path_tuple)
        except catalog.PathError as error:
            shown = field_text(scope, path_tuple[: error.index + 1])
            self.fail(f"{shown}: {error.message}", node, json_path, field_text(scope, path_tuple))

    def value_field(self, node, scope, path, *, what):
        """The column or JSON key a leaf tests; refuses relations and collections."""
        resolved = self.resolve(node, scope, node.field, f"{path}.field")
        name = field_text(scope, node.field)
        if resolved.collection is not None:
            var = resolved.collection.default_var
            self.fail(
                f"{name} is a collection; write exists {var} from {name} where … or (select {var} from {name} …).count()",
                node, f"{path}.field", name,
            )  # fmt: skip
        if resolved.is_relation and what != "relation":
            self.fail(
                f"{name} is {'an' if resolved.target.label[0] in 'AEIO' else 'a'} {resolved.target.label.lower()}; "
                f"compare one of its fields (e.g. {name}.{next(iter(resolved.target.fields))}) "
                "or test it with isNull(), isNotNull() or exists()",
                node, f"{path}.field", name,
            )  # fmt: skip
        return resolved, name

    # --- Leaves --------------------------------------------------------------------------------

    def compare(self, node, scope, path):
        if node.op not in COMPARE_OPS:
            self.fail(f'unknown operator "{node.op}"', node, f"{path}.op")
        resolved = self.resolve(node, scope, node.field, f"{path}.field")
        what = "relation" if resolved.is_relation and node.op in VALUELESS_OPS else "value"
        resolved, name = self.value_field(node, scope, path, what=what)
        if not node.case_sensitive and node.op not in CASE_OPS:
            self.fail(f"case-insensitive matching applies to {', '.join(CASE_OPS)} only", node, path, name)
        if node.op in VALUELESS_OPS:
            self.valueless(node, resolved, name, path)
            return
        if node.op in LIST_OPS:
            values = node.value
            if not isinstance(values, tuple) or not values:
                self.fail(f"{node.op} needs a non-empty list of values, e.g. {name} {node.op} [\"a\", \"b\"]", node, f"{path}.value", name)
            if len(values) > MAX_LIST_VALUES:
                self.fail(f"{node.op} takes at most {MAX_LIST_VALUES} values", node, f"{path}.value", name)
        else:
            values = (node.value,)
            if isinstance(node.value, tuple):
                self.fail(f"{OP_WORDS[node.op]} takes one value, not a list", node, f"{path}.value", name)
        if resolved.json is not None:
            self.json_values(node, values, name, path)
        else:
            self.column_values(node, resolved.field, values, name, path)
        if node.op == "matches":
            try:
                re.compile(node.value)
            except re.error as error:
                self.fail(f"{name}.matches(): the regular expression is invalid ({error})", node, f"{path}.value", name)
            if NESTED_QUANTIFIER.search(node.value):
                self.fail(
                    f"{name}.matches(): a repeated group that itself repeats (like (a+)+) can take exponential "
                    "time to match; write it without the nested repetition",
                    node, f"{path}.value", name,
                )  # fmt: skip

    def valueless(self, node, resolved, name, path):
        if node.op == "exists" and resolved.field is not None:
            self.fail(
                f"exists() tests a relation or an attributes/properties key; use {name}.isNotNull() for a field",
                node, f"{path}.op", name,
            )  # fmt: skip
        if node.value is not None:
            self.fail(f"{OP_WORDS[node.op]} takes no value", node, f"{path}.value", name)

    def column_values(self, node, spec, values, name, path):
        allowed = catalog.OPS_BY_TYPE[spec.type]
        if node.op not in allowed:
            words = ", ".join(OP_WORDS[o] for o in allowed)
            self.fail(f"{OP_WORDS[node.op]} does not apply to {name} ({TYPE_WORDS[spec.type]}); use {words}", node, f"{path}.op", name)
        for i, value in enumerate(values):
            problem = literal_problem(spec.type, value)
            if problem:
                where = f"{path}.value[{i}]" if node.op in LIST_OPS else f"{path}.value"
                self.fail(f"{name} is {TYPE_WORDS[spec.type]}; {problem}", node, where, name)

    def json_values(self, node, values, name, path):
        kinds = {json_kind(v) for v in values}
        if None in kinds:
            bad = next(v for v in values if json_kind(v) is None)
            self.fail(
                f"{name} is compared as text, a number or true/false; {describe_literal(bad)} is none of them"
                + (' (write dates as text, e.g. "2026-01-31")' if isinstance(bad, dt.date) else ""),
                node, f"{path}.value", name,
            )  # fmt: skip
        if len(kinds) > 1:
            self.fail(f"the values of {node.op} must all be text, all numbers or all true/false", node, f"{path}.value", name)
        kind = kinds.pop()
        if node.op in TEXT_ONLY_OPS and kind != "text":
            self.fail(f"{OP_WORDS[node.op]} compares text; give {name} a string", node, f"{path}.value", name)
        if node.op in ("lt", "le", "gt", "ge") and kind != "number":
            self.fail(f"{OP_WORDS[node.op]} compares numbers; give {name} a number", node, f"{path}.value", name)
        if kind == "text" and any(v == "" for v in values):
            self.fail(f"compare {name} with a non-empty string; use isNull() to find a missing value", node, f"{path}.value", name)

    def time_field(self, node, scope, path):
        resolved, name = self.value_field(node, scope, path, what="value")
        if resolved.field is None or resolved.field.type not in (DATE, DATETIME):
            self.fail(f"{name} is not a date or date-time; occurs applies to dates and date-times", node, f"{path}.field", name)
        return resolved.field, name

    def occurs(self, node, scope, path):
        spec, name = self.time_field(node, scope, path)
        if node.op not in WINDOW_OPS:
            self.fail("occurs compares with <, <=, > or >=", node, f"{path}.op", name)
        if node.unit not in UNITS:
            self.fail(f'unknown time unit "{node.unit}"; use {", ".join(UNITS)}', node, f"{path}.unit", name)
        if spec.type == DATE and node.unit in ("minutes", "hours"):
            self.fail(f"{name} is a date; measure its distance from now in days, weeks, months or years", node, f"{path}.unit", name)
        if node.direction not in DIRECTIONS:
            self.fail('the direction is "before" or "after" now', node, f"{path}.direction", name)
        if not isinstance(node.amount, int) or isinstance(node.amount, bool) or not 0 <= node.amount <= MAX_AMOUNT[node.unit]:
            self.fail(f"the amount is a whole number from 0 to {MAX_AMOUNT[node.unit]} {node.unit}", node, f"{path}.amount", name)

    def between(self, node, scope, path):
        spec, name = self.time_field(node, scope, path)
        for key, value in (("from", node.start), ("to", node.end)):
            problem = literal_problem(spec.type, value)
            if problem:
                self.fail(f"{name} is {TYPE_WORDS[spec.type]}; {problem}", node, f"{path}.{key}", name)
        if isinstance(node.start, dt.datetime) != isinstance(node.end, dt.datetime):
            self.fail("occurs between takes two dates or two date-times", node, f"{path}.to", name)
        if node.start > node.end:
            self.fail(f"occurs between needs the earlier {'date' if spec.type == DATE else 'moment'} first", node, f"{path}.to", name)

    def in_segment(self, node, scope, path):
        if not isinstance(node.audience_id, str) or not node.audience_id or len(node.audience_id) > MAX_AUDIENCE_ID:
            self.fail(f"inSegment takes an audience id (1–{MAX_AUDIENCE_ID} characters)", node, f"{path}.audience")
        resolved = self.resolve(node, scope, node.path, f"{path}.field")
        name = field_text(scope, node.path)
        if not resolved.is_relation or not resolved.target.segmentable:
            self.fail(f"inSegment applies to a person or an account; {name} is neither", node, f"{path}.field", name)
        self.references.append((node.audience_id, resolved.target.name))

    # --- Quantifiers ---------------------------------------------------------------------------

    def collection(self, node, scope, path):
        resolved = self.resolve(node, scope, node.collection, f"{path}.collection")
        name = field_text(scope, node.collection)
        if resolved.collection is None:
            self.fail(f"{name} is not a collection; collections of {scope.entity.label.lower()}: "
                      f"{', '.join(scope.entity.collections) or 'none'}", node, f"{path}.collection", name)  # fmt: skip
        collection = resolved.collection
        element = Scope(catalog.ENTITIES[collection.element], node.var or collection.default_var, scope.depth + 1)
        if node.where is not None:
            self.condition(node.where, element, f"{path}.where")
        return collection, element, name

    def count(self, node, scope, path):
        _, _, name = self.collection(node, scope, path)
        if node.op not in ORDER_OPS:
            self.fail("count() compares with =, !=, <, <=, > or >=", node, f"{path}.op", name)
        if not isinstance(node.value, int) or isinstance(node.value, bool) or not 0 <= node.value <= MAX_COUNT:
            self.fail(f"count() compares with a whole number from 0 to {MAX_COUNT}", node, f"{path}.value", name)

    def occurrence(self, node, scope, path):
        collection, element, name = self.collection(node, scope, path)
        if node.which not in ("first", "last"):
            self.fail('which is "first" or "last"', node, f"{path}.which", name)
        if not collection.timestamp:
            ordered = "xEvent, listMembers, campaignMembers"
            self.fail(f"{node.which}() applies to collections ordered in time ({ordered}); {name} is not", node, f"{path}.which", name)
        test = node.test
        if not isinstance(test, Compare | Occurs | Between) or test.field != (collection.timestamp,):
            self.fail(f"after {node.which}() test {element.prefix}.{collection.timestamp}", node, f"{path}.test", name)
        if isinstance(test, Compare) and test.op not in ORDER_OPS:
            words = "=, !=, <, <=, >, >=, occurs or between"
            self.fail(f"{node.which}().{collection.timestamp} compares with {words}", node, f"{path}.test.op", name)
        self.condition(test, element, f"{path}.test")


# --- Literals -----------------------------------------------------------------------------------


def describe_literal(value) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, str):
        return f'the text "{value}"' if len(value) <= 40 else "a text"
    if isinstance(value, dt.datetime):
        return "a date-time"
    if isinstance(value, dt.date):
        return "a date"
    if isinstance(value, int | Decimal):
        return f"the number {value}"
    return f"a {type(value).__name__}"


def literal_problem(value_type: str, value) -> str:
    """Why ``value`` can't be compared with a field of ``value_type`` ("" when it can)."""
    got = f"got {describe_literal(value)}"
    if value_type == TEXT:
        if not isinstance(value, str):
            return f'give a string in double quotes, {got}'
        return "" if value else "compare with a non-empty string; use isNull() to find a missing value"
    if value_type == INT:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"give a whole number, {got}"
        return "" if abs(value) < 2**63 else f"{value} is out of range"
    if value_type == DECIMAL:
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            return f"give a number, {got}"
        return "" if not isinstance(value, Decimal) or value.is_finite() else "give a finite number"
    if value_type == BOOL:
        return "" if isinstance(value, bool) else f"give true or false, {got}"
    if value_type == DATE:
        if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
            return f"give a date like 2026-01-31, {got}"
        return ""
    if value_type == DATETIME:
        # A date compares by day: createdAt >= 2026-01-31 means from that day's start (UTC).
        return "" if isinstance(value, dt.date) else f"give a date-time like 2026-01-31T09:30:00Z or a date, {got}"
    return f"unknown type {value_type}"


def json_kind(value) -> str | None:
    """How a literal compares with a JSON value: as text, a number or true/false."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "text"
    if isinstance(value, int) or (isinstance(value, Decimal) and value.is_finite()):
        return "number"
    return None
