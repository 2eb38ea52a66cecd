"""Hypothesis strategies for random *valid* audience ASTs: every node type, every operator each
field type allows, every literal type, paths through links and nested collections.

``Literals`` decides the values: ``ANY_VALUES`` draws from the whole space (round trips must
survive quotes, unicode, keywords as keys, big numbers, microseconds…); ``dataset_values()``
draws mostly from what the dataset holds, field by field (``stored_values``), so random
conditions sit on the data's edges (``<=`` a stored value, ``=`` a stored moment) and select some.
"""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.apps import apps

from hypothesis import strategies as st

from cdp.segmentation import ast, catalog
from cdp.segmentation.validate import MAX_AMOUNT

from . import dataset

REGEXES = ["^a", "o$", "[0-9]", "^(VP|vp)", "a.c", "@acme\\.com$", "(?i)gold", "^$", "x*", "Sales|Ops"]
NUMBER_OPS = ("eq", "ne", "lt", "le", "gt", "ge")


@dataclass(frozen=True)
class Literals:
    text: st.SearchStrategy
    integer: st.SearchStrategy
    decimal: st.SearchStrategy
    date: st.SearchStrategy
    datetime: st.SearchStrategy
    json_key: st.SearchStrategy
    audience_id: st.SearchStrategy
    like: st.SearchStrategy
    amount_cap: int  # the largest window amount drawn (per unit, capped by the validator's limit)
    # Values the data holds: (entity, field) -> values; (entity, json column) -> {key: values}.
    stored: dict = field(default_factory=dict)


def _text(min_size=1, max_size=20):
    # Any printable text but surrogates (no database stores them).
    return st.text(st.characters(blacklist_categories=("Cs",)), min_size=min_size, max_size=max_size)


ANY_VALUES = Literals(
    text=_text(),
    integer=st.integers(-(2**63) + 1, 2**63 - 1),
    decimal=st.decimals(allow_nan=False, allow_infinity=False).filter(lambda d: abs(d) < Decimal(10) ** 20),
    date=st.dates(),
    datetime=st.datetimes(timezones=st.just(dt.UTC)),
    json_key=st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters='"\\`'), min_size=1, max_size=12),
    audience_id=_text(max_size=40),
    like=_text(),
    amount_cap=10**9,
)


def stored_values(sandbox) -> dict:
    """Every distinct value of every catalog field and JSON key in ``sandbox``."""
    stored = {}
    for name, entity in catalog.ENTITIES.items():
        rows = apps.get_model(entity.model).objects.filter(sandbox=sandbox)
        for spec in entity.fields.values():
            values = {v for v in rows.values_list(spec.column, flat=True) if v not in (None, "")}
            if spec.type == catalog.DECIMAL:
                values = {v.quantize(Decimal("0.01")) for v in values}
            stored[name, spec.name] = tuple(sorted(values))
        if entity.json:
            keys = defaultdict(set)
            for document in rows.values_list(entity.json.column, flat=True):
                for key, value in (document or {}).items():
                    if value not in (None, ""):
                        keys[key].add(Decimal(str(value)) if isinstance(value, float) else value)
            stored[name, entity.json.name] = {k: tuple(sorted(v, key=repr)) for k, v in keys.items()}
    return stored


def dataset_values(stored=None) -> Literals:
    offsets = [0, 1, 2, 5, 7, 10, 15, 29, 30, 31, 45, 90, 100, 200, 365, 400, -1, -3, -20, -200]
    return Literals(
        text=st.sampled_from(dataset.text_pool()),
        integer=st.sampled_from([0, 9, 10, 20, 45, 55, 60, 85, 99, 120, 500, -1]),
        decimal=st.sampled_from([Decimal("0.00"), Decimal("99.99"), Decimal("4.5"), Decimal("2.5"), Decimal("40.5"), Decimal("8000.50"), 1000, 50000, 90]),
        date=st.sampled_from([dataset.TODAY - dt.timedelta(days=d) for d in offsets]),
        datetime=st.sampled_from([dataset.NOW - dt.timedelta(days=d) for d in offsets] + [dataset.NOW - dt.timedelta(days=7, minutes=15)]),
        json_key=st.sampled_from(["tier", "score", "vip", "beta", "note", "region code", "5", "campaign", "url", "flag", "source", "priority", "nope"]),
        audience_id=st.sampled_from(["vip-people", "key-accounts"]),
        like=st.sampled_from(["%o%", "VP%", "%ol%", "_old", "%", "%.com", "Developer_Advocate", "50%%", "%s%"]),
        amount_cap=400,
        stored=stored or {},
    )


# --- Paths in the catalog --------------------------------------------------------------------


def value_paths(entity_name: str, hops: int = 2):
    """(path, kind, spec, owner entity) for every field, JSON column and relation reachable in
    ≤ hops links."""
    entity = catalog.ENTITIES[entity_name]
    found = [((name,), "field", spec, entity_name) for name, spec in entity.fields.items()]
    if entity.json:
        found.append(((entity.json.name,), "json", entity.json, entity_name))
    if hops:
        for name, link in entity.links.items():
            found.append(((name,), "relation", link, entity_name))
            found += [((name, *p), kind, spec, owner) for p, kind, spec, owner in value_paths(link.target, hops - 1)]
    return found


def collection_paths(entity_name: str, hops: int = 1):
    entity = catalog.ENTITIES[entity_name]
    found = [((name,), c) for name, c in entity.collections.items()]
    if hops:
        for name, link in entity.links.items():
            found += [((name, *p), c) for p, c in collection_paths(link.target, hops - 1)]
    return found


def segmentable_paths(entity_name: str, hops: int = 1):
    entity = catalog.ENTITIES[entity_name]
    found = [()] if entity.segmentable else []
    if hops:
        for name, link in entity.links.items():
            found += [(name, *p) for p in segmentable_paths(link.target, hops - 1)]
    return found


# --- Nodes -----------------------------------------------------------------------------------


class AstStrategies:
    def __init__(self, values: Literals):
        self.values = values

    def audiences(self, max_depth=3, subjects=("person", "account")):
        return st.sampled_from(subjects).flatmap(lambda s: self.condition(s, max_depth).map(lambda c: ast.Audience(s, c)))

    def condition(self, entity_name, depth):
        # (strategy, weight): mostly comparisons, as in real audiences, but every kind of node.
        choices = [(self.compare(entity_name), 6), (self.time_window(entity_name), 1), (self.between(entity_name), 1)]
        if segmentable_paths(entity_name):
            choices.append((self.in_segment(entity_name), 1))
        if depth > 0:
            inner = st.deferred(lambda: self.condition(entity_name, depth - 1))
            choices += [
                (st.lists(inner, min_size=2, max_size=3).map(lambda cs: ast.And(tuple(cs))), 2),
                (st.lists(inner, min_size=2, max_size=3).map(lambda cs: ast.Or(tuple(cs))), 2),
                (inner.map(ast.Not), 1),
            ]
            if collection_paths(entity_name):
                choices.append((self.count(entity_name, depth), 2))
                if any(c.timestamp for _, c in collection_paths(entity_name)):
                    choices.append((self.occurrence(entity_name, depth), 1))
        weighted = [strategy for strategy, weight in choices for _ in range(weight)]
        return st.sampled_from(weighted).flatmap(lambda strategy: strategy)

    # Leaves ------------------------------------------------------------------------------------

    def literal(self, value_type):
        v = self.values
        return {
            catalog.TEXT: v.text,
            catalog.INT: v.integer,
            catalog.DECIMAL: st.one_of(v.decimal, v.integer),
            catalog.BOOL: st.booleans(),
            catalog.DATE: v.date,
            catalog.DATETIME: st.one_of(v.datetime, v.date),
        }[value_type]

    def compare(self, entity_name):
        options = value_paths(entity_name)
        return st.sampled_from(options).flatmap(lambda option: self.compare_at(*option))

    def mixed(self, stored, general):
        """Mostly values the data holds (when known), sometimes any value of the type."""
        if not stored:
            return general
        return st.sampled_from([st.sampled_from(stored)] * 3 + [general]).flatmap(lambda strategy: strategy)

    def compare_at(self, path, kind, spec, owner):
        if kind == "relation":
            return st.sampled_from(["isNull", "isNotNull", "exists"]).map(lambda op: ast.Compare(path, op))
        if kind == "json":
            return self.json_compare(path, self.values.stored.get((owner, spec.name), {}))
        value = self.mixed(self.values.stored.get((owner, spec.name)), self.literal(spec.type))
        return st.sampled_from(catalog.OPS_BY_TYPE[spec.type]).flatmap(lambda op: self.column_compare(path, spec.type, op, value))

    def column_compare(self, path, value_type, op, value=None):
        if op in ("isNull", "isNotNull"):
            return st.just(ast.Compare(path, op))
        value = value if value is not None else self.literal(value_type)
        if op in ("in", "notIn"):
            return st.lists(value, min_size=1, max_size=3).map(lambda vs: ast.Compare(path, op, tuple(vs)))
        if op == "matches":
            return st.sampled_from(REGEXES).map(lambda r: ast.Compare(path, op, r))
        if op in ast.CASE_OPS:
            text = self.values.like if op == "like" else st.one_of(self.values.text, value, fragments(value))
            return st.tuples(text, st.booleans()).map(lambda t: ast.Compare(path, op, t[0], t[1]))
        return value.map(lambda v: ast.Compare(path, op, v))

    def json_compare(self, json_path, stored):
        def of_kind(key, kind):
            held = [v for v in stored.get(key, ()) if ast_kind(v) == kind]
            general = {"text": self.values.text, "bool": st.booleans(), "number": st.one_of(self.values.integer, self.values.decimal)}[kind]
            return self.mixed(held, general)

        def build(key, kind, op):
            path = (*json_path, key)
            if op in ("isNull", "isNotNull", "exists"):
                return st.just(ast.Compare(path, op))
            values = of_kind(key, kind)
            if kind == "text":
                return self.column_compare(path, catalog.TEXT, op, values)
            if op in ("in", "notIn"):
                return st.lists(values, min_size=1, max_size=3).map(lambda vs: ast.Compare(path, op, tuple(vs)))
            return values.map(lambda v: ast.Compare(path, op, v))

        ops = {
            "text": catalog.TEXT_OPS + ("exists",),
            "number": NUMBER_OPS + ("in", "notIn"),
            "bool": ("eq", "ne"),
        }
        keys = st.sampled_from([*stored, "nope"]) if stored else self.values.json_key
        return st.tuples(keys, st.sampled_from(["text", "number", "bool"])).flatmap(
            lambda t: st.sampled_from(ops[t[1]]).flatmap(lambda op: build(t[0], t[1], op))
        )

    def time_paths(self, entity_name):
        return [(p, s) for p, kind, s, _ in value_paths(entity_name) if kind == "field" and s.type in (catalog.DATE, catalog.DATETIME)]

    def time_window(self, entity_name):
        return st.sampled_from(self.time_paths(entity_name)).flatmap(lambda ps: self.window_on(ps[0], ps[1].type))

    def window_on(self, path, value_type):
        units = ast.UNITS if value_type == catalog.DATETIME else ("days", "weeks", "months", "years")
        return st.sampled_from(units).flatmap(
            lambda unit: st.builds(
                ast.Occurs,
                st.just(path),
                st.sampled_from(ast.WINDOW_OPS),
                st.integers(0, min(MAX_AMOUNT[unit], self.values.amount_cap)),
                st.just(unit),
                st.sampled_from(ast.DIRECTIONS),
            )
        )

    def between(self, entity_name):
        return st.sampled_from(self.time_paths(entity_name)).flatmap(lambda ps: self.range_on(ps[0], ps[1].type))

    def range_on(self, path, value_type):
        kinds = [self.values.date] if value_type == catalog.DATE else [self.values.date, self.values.datetime]
        return st.sampled_from(kinds).flatmap(lambda values: st.lists(values, min_size=2, max_size=2)).map(
            lambda ends: ast.Between(path, min(ends), max(ends))
        )

    def in_segment(self, entity_name):
        return st.builds(ast.InSegment, self.values.audience_id, st.sampled_from(segmentable_paths(entity_name)))

    # Quantifiers -------------------------------------------------------------------------------

    def where(self, collection, depth):
        return st.none() | st.deferred(lambda: self.condition(collection.element, depth - 1))

    def count(self, entity_name, depth):
        return st.sampled_from(collection_paths(entity_name)).flatmap(
            lambda pc: st.builds(ast.Count, st.just(pc[0]), self.where(pc[1], depth), st.sampled_from(NUMBER_OPS), st.integers(0, 4))
        )

    def occurrence(self, entity_name, depth):
        timed = [(p, c) for p, c in collection_paths(entity_name) if c.timestamp]

        def build(path, collection):
            spec = catalog.ENTITIES[collection.element].fields[collection.timestamp]
            field = (collection.timestamp,)
            test = st.one_of(
                st.tuples(st.sampled_from(NUMBER_OPS), self.literal(spec.type)).map(lambda t: ast.Compare(field, t[0], t[1])),
                self.window_on(field, spec.type),
                self.range_on(field, spec.type),
            )
            return st.builds(ast.Occurrence, st.sampled_from(["first", "last"]), st.just(path), self.where(collection, depth), test)

        return st.sampled_from(timed).flatmap(lambda pc: build(*pc))



def ast_kind(value) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "text"
    return "number" if isinstance(value, int | Decimal) else "other"


def fragments(texts):
    """Pieces of drawn texts (prefixes, suffixes, middles): what contains/startsWith/endsWith
    are for."""

    def cut(text):
        if not isinstance(text, str) or len(text) < 2:
            return st.just(text if isinstance(text, str) and text else "x")
        return st.tuples(st.integers(0, len(text) - 1), st.integers(1, len(text))).map(
            lambda ij: text[min(ij) : max(ij)] or text[0]
        )

    return texts.flatmap(cut)
