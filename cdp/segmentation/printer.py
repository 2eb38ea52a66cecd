"""AST → canonical PQL text. ``parse_pql(to_pql(a), a.subject) == a`` for every valid AST.

Canonical choices: ``=`` for equality; and/or groups inside other groups are parenthesised (the
parser would flatten ``a and (b and c)`` otherwise, and mixed and/or reads better explicit);
variables are the collection's default name (``e``, ``ap``, ``op``…), numbered when nested
quantifiers would reuse one; ``xEvent`` of the subject is written bare; a quantifier is put in
parentheses unless it ends its group (its ``where`` would swallow what follows);
``exists`` for ``count() >= 1``.
"""

import datetime as dt
import json
import re
from decimal import Decimal

from . import catalog
from .ast import And, Audience, Between, Compare, Count, InSegment, Not, Occurrence, Occurs, Or, format_datetime, format_decimal

SYMBOLS = {"eq": "=", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
KEYWORDS = {
    "and", "or", "not", "in", "notIn", "like", "exists", "select", "from", "where", "occurs",
    "between", "now", "before", "after", "true", "false",
}  # fmt: skip


def to_pql(audience: Audience) -> str:
    """The audience's condition as canonical PQL (the subject is the audience's kind, not text)."""
    scope = _Scope(catalog.ENTITIES[audience.subject], audience.subject, root=True, taken=frozenset({audience.subject}))
    return _Printer().condition(audience.condition, scope, tail=True)


class _Scope:
    def __init__(self, entity, prefix, *, root=False, taken=frozenset()):
        self.entity, self.prefix, self.root, self.taken = entity, prefix, root, taken


def literal(value) -> str:
    if isinstance(value, tuple | list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.datetime):
        return format_datetime(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"not a PQL literal: {value!r}")


def segment(name: str) -> str:
    return name if PLAIN_NAME.match(name) and name not in KEYWORDS else f"`{name}`"


def path_text(prefix: str, path) -> str:
    return ".".join([prefix, *(segment(p) for p in path)])


class _Printer:
    def condition(self, node, scope, *, tail) -> str:
        if isinstance(node, And | Or):
            return self.group(node, scope, tail=tail)
        if isinstance(node, Not):
            inner = node.condition
            text = self.condition(inner, scope, tail=tail)
            return f"not ({text})" if isinstance(inner, And | Or) else f"not {text}"
        if isinstance(node, Compare):
            return self.compare(node, scope)
        if isinstance(node, Occurs):
            return f"{path_text(scope.prefix, node.field)} {self.occurs_test(node)}"
        if isinstance(node, Between):
            return f"{path_text(scope.prefix, node.field)} {self.between_test(node)}"
        if isinstance(node, InSegment):
            call = f"inSegment({literal(node.audience_id)})"
            return call if scope.root and not node.path else f"{path_text(scope.prefix, node.path)}.{call}"
        if isinstance(node, Count):
            return self.count(node, scope, tail=tail)
        if isinstance(node, Occurrence):
            return self.occurrence(node, scope)
        raise TypeError(f"not a condition: {node!r}")

    def group(self, node, scope, *, tail) -> str:
        word = " and " if isinstance(node, And) else " or "
        last = len(node.conditions) - 1
        parts = []
        for i, child in enumerate(node.conditions):
            if isinstance(child, And | Or):
                parts.append(f"({self.condition(child, scope, tail=True)})")
            else:
                parts.append(self.condition(child, scope, tail=tail and i == last))
        return word.join(parts)

    def compare(self, node, scope) -> str:
        subject = path_text(scope.prefix, node.field)
        op = node.op
        if op in SYMBOLS:
            return f"{subject} {SYMBOLS[op]} {literal(node.value)}"
        if op in ("in", "notIn"):
            return f"{subject} {op} {literal(node.value)}"
        if op in ("isNull", "isNotNull", "exists"):
            return f"{subject}.{op}()"
        flag = "" if node.case_sensitive else ", false"
        return f"{subject}.{op}({literal(node.value)}{flag})"

    def occurs_test(self, node) -> str:
        unit = node.unit[:-1] if node.amount == 1 else node.unit
        return f"occurs {SYMBOLS[node.op]} {node.amount} {unit} {node.direction} now"

    def between_test(self, node) -> str:
        return f"occurs between {literal(node.start)} and {literal(node.end)}"

    def element_scope(self, node, scope):
        resolved = catalog.resolve(scope.entity, node.collection)
        collection = resolved.collection
        var, n = collection.default_var, 1
        while var in scope.taken or var in KEYWORDS or var == "xEvent":
            n += 1
            var = f"{collection.default_var}{n}"
        element = _Scope(catalog.ENTITIES[collection.element], var, taken=scope.taken | {var})
        source = "xEvent" if scope.root and node.collection == ("xEvent",) else path_text(scope.prefix, node.collection)
        return element, source

    def selection(self, node, scope) -> tuple[str, _Scope]:
        element, source = self.element_scope(node, scope)
        where = "" if node.where is None else f" where {self.condition(node.where, element, tail=True)}"
        return f"select {element.prefix} from {source}{where}", element

    def count(self, node, scope, *, tail) -> str:
        if node.is_exists:
            element, source = self.element_scope(node, scope)
            where = "" if node.where is None else f" where {self.condition(node.where, element, tail=True)}"
            text = f"exists {element.prefix} from {source}{where}"
            # A where clause reaches as far as it can: stop it with parentheses when more follows.
            return text if tail or node.where is None else f"({text})"
        selection, _ = self.selection(node, scope)
        return f"({selection}).count() {SYMBOLS[node.op]} {node.value}"

    def occurrence(self, node, scope) -> str:
        selection, element = self.selection(node, scope)
        test = node.test
        head = f"({selection}).{node.which}().{segment(test.field[0])}"
        if isinstance(test, Occurs):
            return f"{head} {self.occurs_test(test)}"
        if isinstance(test, Between):
            return f"{head} {self.between_test(test)}"
        return f"{head} {SYMBOLS[test.op]} {literal(test.value)}"
