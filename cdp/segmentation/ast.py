"""The one AST of an audience definition, shared by the PQL text form and the rule-tree JSON form.

Nodes are immutable dataclasses. Field paths are tuples of PQL names *relative to the current
scope*: the audience's subject at the top level, the element of a collection inside
``exists … where`` / ``select … where`` (``("account", "parent", "name")``,
``("attributes", "tier")``, ``("type",)``). Literal values are ``str``, ``int``, ``Decimal``,
``bool``, ``datetime.date``, ``datetime.datetime`` (always UTC) or tuples of them.

Rule tree (what the builder edits) — ``Audience.to_tree()`` / ``from_tree()``::

    {"subject": "person", "condition": <node>}
    {"type": "and" | "or", "conditions": [<node>, <node>, …]}          two or more
    {"type": "not", "condition": <node>}
    {"type": "compare", "field": "account.parent.name", "op": "eq", "value": "Acme"}
        op: eq ne lt le gt ge in notIn contains startsWith endsWith like matches isNull isNotNull exists
        "caseSensitive": false  (contains/startsWith/endsWith/like only; default true)
    {"type": "occurs", "field": "occurredAt", "op": "le", "amount": 30, "unit": "days", "direction": "before"}
    {"type": "between", "field": "closeDate", "from": {"date": "2026-01-01"}, "to": {"date": "2026-03-31"}}
    {"type": "inSegment", "audience": "<id>", "field": "account"}       field optional ("" = the subject)
    {"type": "count", "collection": "xEvent", "where": <node>, "op": "ge", "value": 2}
        where optional; exists = count ge 1
    {"type": "occurrence", "which": "first" | "last", "collection": "xEvent", "where": <node>,
     "test": <compare | occurs | between node on the collection's timestamp field>}

Values: strings, whole numbers, true/false as JSON; decimals, dates and date-times tagged:
``{"decimal": "12.50"}``, ``{"date": "2026-01-31"}``, ``{"datetime": "2026-01-31T09:30:00Z"}``;
``in``/``notIn`` take a list. Errors name the JSON path of the bad node (``$.condition.conditions[1].value``).
"""

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from .errors import RuleTreeError

COMPARE_OPS = (
    "eq", "ne", "lt", "le", "gt", "ge", "in", "notIn", "contains", "startsWith", "endsWith",
    "like", "matches", "isNull", "isNotNull", "exists",
)  # fmt: skip
VALUELESS_OPS = ("isNull", "isNotNull", "exists")
LIST_OPS = ("in", "notIn")
CASE_OPS = ("contains", "startsWith", "endsWith", "like")
ORDER_OPS = ("eq", "ne", "lt", "le", "gt", "ge")
WINDOW_OPS = ("lt", "le", "gt", "ge")
UNITS = ("minutes", "hours", "days", "weeks", "months", "years")
DIRECTIONS = ("before", "after")
SUBJECTS = ("person", "account")


def _unit(unit: str) -> str:
    return unit if unit in UNITS or f"{unit}s" not in UNITS else f"{unit}s"


def normalize_literal(value):
    """The canonical form of a literal: UTC datetimes, decimals with a fractional part (so they
    print as decimals and never read back as whole numbers), tuples for lists."""
    if isinstance(value, list | tuple):
        return tuple(normalize_literal(v) for v in value)
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    if isinstance(value, Decimal) and value.is_finite() and value.as_tuple().exponent >= 0:
        return value.quantize(Decimal("0.0"))
    return value


def _freeze(node, name, value):
    object.__setattr__(node, name, value)


@dataclass(frozen=True)
class Node:
    # Where the node came from in PQL text (line, column); not part of equality.
    pos: tuple | None = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class And(Node):
    conditions: tuple

    def __post_init__(self):
        _freeze(self, "conditions", tuple(self.conditions))

    def to_tree(self) -> dict:
        return {"type": "and", "conditions": [c.to_tree() for c in self.conditions]}


@dataclass(frozen=True)
class Or(Node):
    conditions: tuple

    def __post_init__(self):
        _freeze(self, "conditions", tuple(self.conditions))

    def to_tree(self) -> dict:
        return {"type": "or", "conditions": [c.to_tree() for c in self.conditions]}


@dataclass(frozen=True)
class Not(Node):
    condition: Node

    def to_tree(self) -> dict:
        return {"type": "not", "condition": self.condition.to_tree()}


@dataclass(frozen=True)
class Compare(Node):
    """``field op value``; ``value`` is None for isNull/isNotNull/exists, a tuple for in/notIn."""

    field: tuple
    op: str
    value: object = None
    case_sensitive: bool = True

    def __post_init__(self):
        _freeze(self, "field", tuple(self.field))
        _freeze(self, "value", normalize_literal(self.value))

    def to_tree(self) -> dict:
        tree = {"type": "compare", "field": ".".join(self.field), "op": self.op}
        if self.op not in VALUELESS_OPS:
            tree["value"] = encode_value(self.value)
        if not self.case_sensitive:
            tree["caseSensitive"] = False
        return tree


@dataclass(frozen=True)
class Occurs(Node):
    """A date or date-time relative to now: ``field occurs <op> <amount> <unit> <direction> now``."""

    field: tuple
    op: str
    amount: int
    unit: str
    direction: str = "before"

    def __post_init__(self):
        _freeze(self, "field", tuple(self.field))
        _freeze(self, "unit", _unit(self.unit))

    def to_tree(self) -> dict:
        return {
            "type": "occurs",
            "field": ".".join(self.field),
            "op": self.op,
            "amount": self.amount,
            "unit": self.unit,
            "direction": self.direction,
        }


@dataclass(frozen=True)
class Between(Node):
    """``field occurs between start and end``, both ends included (a date end includes its day)."""

    field: tuple
    start: object
    end: object

    def __post_init__(self):
        _freeze(self, "field", tuple(self.field))
        _freeze(self, "start", normalize_literal(self.start))
        _freeze(self, "end", normalize_literal(self.end))

    def to_tree(self) -> dict:
        return {"type": "between", "field": ".".join(self.field), "from": encode_value(self.start), "to": encode_value(self.end)}


@dataclass(frozen=True)
class InSegment(Node):
    """Membership of the entity at ``path`` (the scope itself when empty) in another audience."""

    audience_id: str
    path: tuple = ()

    def __post_init__(self):
        _freeze(self, "path", tuple(self.path))

    def to_tree(self) -> dict:
        tree = {"type": "inSegment", "audience": self.audience_id}
        if self.path:
            tree["field"] = ".".join(self.path)
        return tree


@dataclass(frozen=True)
class Count(Node):
    """How many elements of ``collection`` satisfy ``where``, compared with ``value``.
    ``exists v from c where …`` is ``Count(c, where, "ge", 1)``."""

    collection: tuple
    where: Node | None = None
    op: str = "ge"
    value: int = 1
    var: str | None = field(default=None, compare=False, repr=False)  # the name PQL text used

    def __post_init__(self):
        _freeze(self, "collection", tuple(self.collection))

    @property
    def is_exists(self) -> bool:
        return self.op == "ge" and self.value == 1

    def to_tree(self) -> dict:
        tree = {"type": "count", "collection": ".".join(self.collection)}
        if self.where is not None:
            tree["where"] = self.where.to_tree()
        tree.update(op=self.op, value=self.value)
        return tree


@dataclass(frozen=True)
class Occurrence(Node):
    """The first or last time an element of ``collection`` satisfying ``where`` happened, tested
    by ``test`` (a Compare, Occurs or Between on the collection's timestamp field). False when
    no element matches."""

    which: str
    collection: tuple
    where: Node | None
    test: Node
    var: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        _freeze(self, "collection", tuple(self.collection))

    def to_tree(self) -> dict:
        tree = {"type": "occurrence", "which": self.which, "collection": ".".join(self.collection)}
        if self.where is not None:
            tree["where"] = self.where.to_tree()
        tree["test"] = self.test.to_tree()
        return tree


@dataclass(frozen=True)
class Audience:
    """The root: who the audience is made of (``subject``: person | account) and the condition."""

    subject: str
    condition: Node

    def to_tree(self) -> dict:
        return {"subject": self.subject, "condition": self.condition.to_tree()}


LEAVES = (Compare, Occurs, Between, InSegment)
QUANTIFIERS = (Count, Occurrence)


def children(node) -> tuple:
    """The conditions directly inside ``node`` (for walks)."""
    if isinstance(node, And | Or):
        return node.conditions
    if isinstance(node, Not):
        return (node.condition,)
    if isinstance(node, Count):
        return () if node.where is None else (node.where,)
    if isinstance(node, Occurrence):
        return ((node.where,) if node.where is not None else ()) + (node.test,)
    if isinstance(node, Audience):
        return (node.condition,)
    return ()


def walk(node):
    yield node
    for child in children(node):
        yield from walk(child)


def referenced_audiences(audience: Audience) -> set[str]:
    """The ids of the audiences ``inSegment`` refers to: evaluate those first."""
    return {n.audience_id for n in walk(audience) if isinstance(n, InSegment)}


def uses_relative_time(audience: Audience) -> bool:
    """Whether the audience's result changes with time alone (``occurs … now``): such audiences
    need the periodic sweep, not just re-evaluation on data changes."""
    return any(isinstance(n, Occurs) for n in walk(audience))


# --- Values in the rule tree ------------------------------------------------------------------


def format_datetime(value: dt.datetime) -> str:
    text = value.astimezone(dt.UTC).replace(tzinfo=None).isoformat()
    return f"{text}Z"


def format_decimal(value: Decimal) -> str:
    text = format(value, "f")
    return text if "." in text else f"{text}.0"


def encode_value(value):
    if isinstance(value, tuple | list):
        return [encode_value(v) for v in value]
    if isinstance(value, Decimal):
        return {"decimal": format_decimal(value)}
    if isinstance(value, dt.datetime):
        return {"datetime": format_datetime(value)}
    if isinstance(value, dt.date):
        return {"date": value.isoformat()}
    return value


def parse_datetime_text(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _decode_tagged(raw: dict, path: str):
    if len(raw) != 1:
        raise RuleTreeError(f'a tagged value has exactly one key ("decimal", "date" or "datetime"), got {sorted(raw)}', json_path=path)
    (tag, text), = raw.items()
    readers = {"decimal": Decimal, "date": dt.date.fromisoformat, "datetime": parse_datetime_text}
    if tag not in readers:
        raise RuleTreeError(f'unknown value tag "{tag}"; use "decimal", "date" or "datetime"', json_path=path)
    if not isinstance(text, str):
        raise RuleTreeError(f'the "{tag}" value is written as a string', json_path=path)
    try:
        value = readers[tag](text)
    except (ValueError, InvalidOperation):
        examples = {"decimal": "12.50", "date": "2026-01-31", "datetime": "2026-01-31T09:30:00Z"}
        raise RuleTreeError(f'"{text}" is not a {tag}; write it like "{examples[tag]}"', json_path=path) from None
    if tag == "decimal" and not value.is_finite():
        raise RuleTreeError(f'"{text}" is not a finite number', json_path=path)
    return value


def decode_value(raw, path: str, *, allow_list: bool):
    if isinstance(raw, list):
        if not allow_list:
            raise RuleTreeError("a list of values is only allowed with in / notIn", json_path=path)
        return tuple(decode_value(item, f"{path}[{i}]", allow_list=False) for i, item in enumerate(raw))
    if isinstance(raw, dict):
        return _decode_tagged(raw, path)
    if isinstance(raw, float):
        # JSON numbers with a fraction arrive as floats; their shortest repr is what was written.
        return Decimal(repr(raw))
    if isinstance(raw, str | int | bool):
        return raw
    raise RuleTreeError(f"expected a value (text, number, true/false or a tagged value), got {type(raw).__name__}", json_path=path)


# --- Reading a rule tree ----------------------------------------------------------------------


def _get(tree: dict, key: str, path: str, kind, *, required=True, default=None):
    if key not in tree:
        if required:
            raise RuleTreeError(f'missing "{key}"', json_path=path)
        return default
    value = tree[key]
    if kind is not None and not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = {str: "a string", int: "a whole number", bool: "true or false", list: "a list", dict: "an object"}
        raise RuleTreeError(f'"{key}" must be {names.get(kind, kind)}', json_path=f"{path}.{key}")
    return value


def _only_keys(tree: dict, allowed: set, path: str):
    unknown = sorted(set(tree) - allowed)
    if unknown:
        keys = f"key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}"
        raise RuleTreeError(f"unknown {keys}; allowed: {', '.join(sorted(allowed))}", json_path=path)


def _path(text: str, path: str, *, allow_empty=False) -> tuple:
    if text == "" and allow_empty:
        return ()
    parts = tuple(text.split("."))
    if any(p == "" for p in parts):
        raise RuleTreeError(f'"{text}" is not a field path like "account.name"', json_path=path)
    return parts


def _json_field_path(text: str, path: str) -> tuple:
    # Keys of attributes/properties may contain dots: everything after "attributes." is the key.
    parts = text.split(".")
    for index, part in enumerate(parts[:-1]):
        if part in ("attributes", "properties"):
            head = ".".join(parts[: index + 1])
            return _path(head, path) + (text[len(head) + 1 :],)
    return _path(text, path)


def _conditions(tree, path, key):
    items = _get(tree, key, path, list)
    if len(items) < 2:
        raise RuleTreeError("a group needs at least two conditions (a single condition needs no group)", json_path=f"{path}.{key}")
    return tuple(node_from_tree(item, f"{path}.{key}[{i}]") for i, item in enumerate(items))


def _compare(tree, path):
    _only_keys(tree, {"type", "field", "op", "value", "caseSensitive"}, path)
    op = _get(tree, "op", path, str)
    if op not in COMPARE_OPS:
        raise RuleTreeError(f'unknown operator "{op}"; use one of {", ".join(COMPARE_OPS)}', json_path=f"{path}.op")
    if op in VALUELESS_OPS:
        if "value" in tree:
            raise RuleTreeError(f"{op} takes no value", json_path=f"{path}.value")
        value = None
    else:
        value = decode_value(_get(tree, "value", path, None), f"{path}.value", allow_list=op in LIST_OPS)
        if op in LIST_OPS and not isinstance(value, tuple):
            raise RuleTreeError(f"{op} takes a list of values", json_path=f"{path}.value")
    case_sensitive = _get(tree, "caseSensitive", path, bool, required=False, default=True)
    if not case_sensitive and op not in CASE_OPS:
        raise RuleTreeError(f"caseSensitive applies to {', '.join(CASE_OPS)} only", json_path=f"{path}.caseSensitive")
    field_path = _json_field_path(_get(tree, "field", path, str), f"{path}.field")
    return Compare(field_path, op, value, case_sensitive)


def _occurs(tree, path):
    _only_keys(tree, {"type", "field", "op", "amount", "unit", "direction"}, path)
    return Occurs(
        _json_field_path(_get(tree, "field", path, str), f"{path}.field"),
        _get(tree, "op", path, str),
        _get(tree, "amount", path, int),
        _get(tree, "unit", path, str),
        _get(tree, "direction", path, str, required=False, default="before"),
    )


def _between(tree, path):
    _only_keys(tree, {"type", "field", "from", "to"}, path)
    return Between(
        _json_field_path(_get(tree, "field", path, str), f"{path}.field"),
        decode_value(_get(tree, "from", path, None), f"{path}.from", allow_list=False),
        decode_value(_get(tree, "to", path, None), f"{path}.to", allow_list=False),
    )


def _in_segment(tree, path):
    _only_keys(tree, {"type", "audience", "field"}, path)
    field_path = _path(_get(tree, "field", path, str, required=False, default=""), f"{path}.field", allow_empty=True)
    return InSegment(_get(tree, "audience", path, str), field_path)


def _where(tree, path):
    raw = tree.get("where")
    return None if raw is None else node_from_tree(raw, f"{path}.where")


def _count(tree, path):
    _only_keys(tree, {"type", "collection", "where", "op", "value"}, path)
    return Count(
        _path(_get(tree, "collection", path, str), f"{path}.collection"),
        _where(tree, path),
        _get(tree, "op", path, str, required=False, default="ge"),
        _get(tree, "value", path, int, required=False, default=1),
    )


def _occurrence(tree, path):
    _only_keys(tree, {"type", "which", "collection", "where", "test"}, path)
    test = node_from_tree(_get(tree, "test", path, dict), f"{path}.test")
    if not isinstance(test, Compare | Occurs | Between):
        raise RuleTreeError("the test of an occurrence is a compare, occurs or between node", json_path=f"{path}.test")
    return Occurrence(
        _get(tree, "which", path, str),
        _path(_get(tree, "collection", path, str), f"{path}.collection"),
        _where(tree, path),
        test,
    )


def _group(kind):
    def read(tree, path):
        _only_keys(tree, {"type", "conditions"}, path)
        return kind(_conditions(tree, path, "conditions"))

    return read


def _not(tree, path):
    _only_keys(tree, {"type", "condition"}, path)
    return Not(node_from_tree(_get(tree, "condition", path, dict), f"{path}.condition"))


NODE_READERS = {
    "and": _group(And),
    "or": _group(Or),
    "not": _not,
    "compare": _compare,
    "occurs": _occurs,
    "between": _between,
    "inSegment": _in_segment,
    "count": _count,
    "occurrence": _occurrence,
}


def node_from_tree(tree, path: str = "$.condition") -> Node:
    if not isinstance(tree, dict):
        raise RuleTreeError(f"expected a condition object, got {type(tree).__name__}", json_path=path)
    node_type = _get(tree, "type", path, str)
    reader = NODE_READERS.get(node_type)
    if reader is None:
        raise RuleTreeError(f'unknown node type "{node_type}"; use one of {", ".join(NODE_READERS)}', json_path=f"{path}.type")
    return reader(tree, path)


def from_tree(tree) -> Audience:
    """The Audience a rule tree describes, checked for shape here and for meaning (fields, types,
    operators) by ``validate``. Every error names the JSON path of the bad node."""
    from .validate import validate

    if not isinstance(tree, dict):
        raise RuleTreeError("an audience definition is an object with subject and condition", json_path="$")
    _only_keys(tree, {"subject", "condition"}, "$")
    subject = _get(tree, "subject", "$", str)
    if subject not in SUBJECTS:
        raise RuleTreeError(f'subject is "person" or "account", not "{subject}"', json_path="$.subject")
    audience = Audience(subject, node_from_tree(_get(tree, "condition", "$", dict)))
    validate(audience)
    return audience
