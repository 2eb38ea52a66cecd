"""The one compiler: an audience AST → a Django ORM queryset of member ids.

The same compiled condition serves preview counts, full evaluation and incremental evaluation
(``restrict_to_ids``); nothing else decides who is in an audience. It is plain ORM (Q, Exists,
OuterRef, Subquery-style ``__in``, aggregates) plus the typed JSON reads in ``expressions``, so it
runs on SQLite and PostgreSQL; every subquery is filtered by the sandbox.

Shapes chosen for PostgreSQL:
- "at least one" (``exists``) is a correlated ``EXISTS`` (a semi-join; never JOIN + DISTINCT);
- an account's events are joined to its relations on ``person_id`` directly (``Owner`` in the
  catalog), not through cdp_person: the ORM only joins along declared relations, so that one join
  is added by hand (``join_owner_rows``);
- "at least N" (N ≥ 2) is an uncorrelated grouped subquery
  (``id IN (SELECT person_id … GROUP BY person_id HAVING COUNT(*) >= N)``) — one pass over the
  matching rows, served by the (person, type, occurred_at) index; when evaluating only some ids
  the subquery is restricted to them too;
- first/last occurrence tested against a window are EXISTS / NOT EXISTS probes of the window
  and what lies beyond it (no aggregate over every event), except for a window open on the far
  side (last … before X, first … after X), which is a grouped max (min): the probe would read
  nearly every element there;
- other counts are combinations of "at least" (``count() < 3`` is ``not at least 3``);
- ``inSegment`` is ``id IN (<stored membership>)`` from ``membership_lookup``; another
  audience's SQL is never inlined.

Semantics (shared with the docs and the tests' reference evaluator): a comparison with a missing
value is false, and ``not`` is plain negation (two-valued logic: a leaf under a negation is made
never-NULL by testing presence first; elsewhere a NULL comparison already reads as false, so the
test is left out unless the comparison could match a missing value). Text "" is missing. A link
that leads nowhere makes conditions beyond it false. A date compared with a date-time field
compares the field's (UTC) day.
"""

import calendar
import datetime as dt
import operator
import re
from dataclasses import dataclass
from functools import reduce

from django.apps import apps
from django.db.models import Count as CountRows
from django.db.models import Exists, F, Max, Min, OuterRef, Q, Value
from django.db.models.expressions import Col
from django.db.models.functions import Left, Lower, Right, StrIndex
from django.db.models.lookups import Exact, GreaterThan, GreaterThanOrEqual, In, IsNull, LessThan, LessThanOrEqual, Regex
from django.db.models.sql.constants import INNER
from django.db.models.sql.datastructures import Join
from django.utils import timezone

from . import catalog
from .ast import And, Audience, Between, Compare, Count, InSegment, Not, Occurrence, Occurs, Or, from_tree
from .catalog import DATE, DATETIME, TEXT
from .errors import SegmentationError
from .expressions import JsonHasKey, JsonPresent, JsonValue, NumberLiteral
from .validate import json_kind, validate

LOOKUPS = {"exact": Exact, "gt": GreaterThan, "gte": GreaterThanOrEqual, "lt": LessThan, "lte": LessThanOrEqual, "in": In, "regex": Regex}
ORDER_OPS = ("eq", "ne", "lt", "le", "gt", "ge")
TEXT_OPS_MATCHING_EMPTY = ("ne", "notIn", "like", "matches")
SUBJECT_MODELS = {"person": "cdp.Person", "account": "cdp.Account"}


def compile_audience(audience, sandbox, *, restrict_to_ids=None, now=None, membership_lookup=None):
    """A queryset of the ids (Person ids or Account ids, by the audience's subject) that match.

    ``audience``: an Audience (or its rule tree). ``restrict_to_ids``: evaluate only these ids
    (the incremental path; a list, set or queryset of ids). ``now``: the moment time windows are
    measured from (default: now). ``membership_lookup(audience_id)``: the stored member ids of
    another audience, for ``inSegment`` (a queryset or an iterable of ids).
    """
    audience = _as_audience(audience)
    model = subject_model(audience.subject)
    now = now or timezone.now()
    if timezone.is_naive(now):
        now = timezone.make_aware(now, timezone.get_default_timezone())
    compiler = _Compiler(sandbox, now, membership_lookup, restrict_to_ids)
    condition = compiler.condition(audience.condition, Scope(catalog.ENTITIES[audience.subject], root=True), positive=True)
    subjects = model.objects.filter(sandbox=sandbox)
    if restrict_to_ids is not None:
        subjects = subjects.filter(pk__in=restrict_to_ids)
    return subjects.filter(condition).order_by().values_list("pk", flat=True)


def preview_count(audience, sandbox, *, now=None, membership_lookup=None) -> int:
    """How many people (or accounts) match now: the builder's estimate."""
    return compile_audience(audience, sandbox, now=now, membership_lookup=membership_lookup).count()


def subject_model(subject: str):
    return apps.get_model(SUBJECT_MODELS[subject])


def _as_audience(audience) -> Audience:
    if isinstance(audience, dict):
        return from_tree(audience)
    validate(audience)
    return audience


# --- Scopes and values ------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """An entity as reached from the query being built: ``prefix`` is the lookup path from the
    query's model to it ("" for the model itself, "person__" for an AccountPerson's person)."""

    entity: catalog.Entity
    prefix: str = ""
    root: bool = False  # the audience's subject in the outer query

    @property
    def pk(self) -> str:
        return f"{self.prefix}pk"


def always(value: bool) -> Q:
    # The query model's own id is never NULL: a constant that negates and combines safely.
    return Q(pk__isnull=not value)


@dataclass(frozen=True)
class Ref:
    """What a leaf tests: a ``column`` (a lookup path the ORM resolves) or an ``expression``."""

    type: str  # text | int | decimal | bool | date | datetime | json kinds text/number/bool
    column: str = ""
    expression: object = None
    nullable: bool = True
    json_number: bool = False

    def lhs(self):
        return F(self.column) if self.column else self.expression

    def q(self, lookup: str, value) -> Q:
        if self.column:
            return Q(**{f"{self.column}__{lookup}": value})
        if self.json_number:
            value = [NumberLiteral(v) for v in value] if lookup == "in" else NumberLiteral(value)
        return Q(LOOKUPS[lookup](self.expression, value))

    def present(self) -> Q:
        """The value is there: not NULL and, for text, not ""."""
        parts = []
        if self.nullable:
            parts.append(Q(**{f"{self.column}__isnull": False}) if self.column else Q(IsNull(self.expression, False)))
        if self.type == TEXT:
            parts.append(~self.q("exact", ""))
        return reduce(operator.and_, parts) if parts else always(True)

    def guard(self, op: str, positive: bool) -> bool:
        """Whether ``op`` needs an explicit presence test. To miss "": ``!=``, ``notIn``, ``like``
        and ``matches`` could match an empty text (the other text tests compare with values that
        validation keeps non-empty). To stay two-valued: a NULL operand makes the comparison
        NULL, which reads as false where the leaf is ``positive`` (no ``not`` above it in its
        query), but ``not`` of NULL is NULL too; ``!=`` and ``notIn`` are negations themselves."""
        if self.type == TEXT and op in TEXT_OPS_MATCHING_EMPTY:
            return True
        return self.nullable and (not positive or op in ("ne", "notIn"))


# --- Time --------------------------------------------------------------------------------------


def add_months(moment, months: int):
    """``moment`` (a date or datetime) moved by whole months, the day clamped to the month's end."""
    year, month = divmod(moment.month - 1 + months, 12)
    year += moment.year
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def shift(moment, amount: int, unit: str):
    if unit == "months":
        return add_months(moment, amount)
    if unit == "years":
        return add_months(moment, 12 * amount)
    return moment + dt.timedelta(**{unit: amount})


def day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=timezone.get_default_timezone())


def relative_bounds(node: Occurs, now: dt.datetime, value_type: str):
    """(low, low_inclusive, high, high_inclusive) for ``occurs <op> N <unit> before|after now``;
    an open end is None. Date fields measure from today's date."""
    origin = timezone.localtime(now, timezone.get_default_timezone()).date() if value_type == DATE else now
    sign = -1 if node.direction == "before" else 1
    edge = shift(origin, sign * node.amount, node.unit)
    closer = node.op in ("lt", "le")  # between now and the edge (else: beyond the edge)
    strict = node.op in ("lt", "gt")
    if node.direction == "before":
        return (edge, not strict, origin, True) if closer else (None, False, edge, not strict)
    return (origin, True, edge, not strict) if closer else (edge, not strict, None, False)


def like_regex(pattern: str, case_sensitive: bool) -> str:
    """A PQL ``like`` pattern (% any run, _ one character) as a regular expression meaning the
    same in PostgreSQL (ARE) and Python: anchored with \\A…\\Z, dot matching newlines."""
    body = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return f"(?{'s' if case_sensitive else 'is'})\\A{body}\\Z"


# --- The compiler --------------------------------------------------------------------------------


class _Compiler:
    def __init__(self, sandbox, now, membership_lookup, restrict_to_ids):
        self.sandbox, self.now = sandbox, now
        self.membership_lookup, self.restrict_to_ids = membership_lookup, restrict_to_ids

    def rows(self, model: str):
        return apps.get_model(model).objects.filter(sandbox=self.sandbox).order_by()

    def condition(self, node, scope: Scope, positive: bool) -> Q:
        """``node`` as a filter on ``scope``; ``positive``: no ``not`` above it in this query (a
        subquery's WHERE starts positive again, whatever is around the subquery)."""
        if isinstance(node, And):
            return reduce(operator.and_, (self.condition(c, scope, positive) for c in node.conditions))
        if isinstance(node, Or):
            return reduce(operator.or_, (self.condition(c, scope, positive) for c in node.conditions))
        if isinstance(node, Not):
            return ~self.condition(node.condition, scope, not positive)
        if isinstance(node, Compare | Occurs | Between):
            return self.leaf(node, scope, positive)
        if isinstance(node, InSegment):
            return self.in_segment(node, scope)
        if isinstance(node, Count | Occurrence):
            return self.quantifier(node, scope)
        raise TypeError(f"not a condition: {node!r}")

    # --- Links ---------------------------------------------------------------------------------

    def through(self, scope: Scope, links, build, positive: bool = True) -> Q:
        """``build(scope, positive)`` at the end of ``links``, false if any link leads nowhere
        (``positive``: see ``condition``; builds that make never-NULL tests may leave it)."""
        if not links:
            return build(scope, positive)
        link, rest = links[0], links[1:]
        if link.virtual:
            # person.account: through the person's primary, active account relations, in a
            # subquery (whose WHERE starts positive).
            inner = Scope(catalog.ENTITIES[link.target], "account__")
            return Q(Exists(self.primary_relations(scope).filter(self.through(inner, rest, build, positive=True))))
        inner = Scope(catalog.ENTITIES[link.target], f"{scope.prefix}{link.column}__")
        condition = self.through(inner, rest, build, positive)
        return self.link_present(scope, link) & condition if link.nullable else condition

    def primary_relations(self, scope: Scope):
        return self.rows("cdp.AccountPerson").filter(person=OuterRef(scope.pk), is_primary=True, is_active=True)

    def link_present(self, scope: Scope, link) -> Q:
        if link.virtual:
            return Q(Exists(self.primary_relations(scope)))
        if not link.nullable:
            return always(True)
        return Q(**{f"{scope.prefix}{link.column}__isnull": False})

    # --- Leaves --------------------------------------------------------------------------------

    def leaf(self, node, scope: Scope, positive: bool) -> Q:
        resolved = catalog.resolve(scope.entity, node.field)
        if resolved.is_relation:
            *head, last = resolved.links

            def relation(at, _):
                present = self.link_present(at, last)
                return ~present if node.op == "isNull" else present

            return self.through(scope, head, relation, positive)

        def compare(at, positive_there):
            return self.test(self.ref(at, resolved, node), node, positive_there)

        return self.through(scope, resolved.links, compare, positive)

    def ref(self, scope: Scope, resolved, node) -> Ref:
        if resolved.field is not None:
            spec = resolved.field
            # Through a link the column may read NULL when the link leads nowhere, but through()
            # has then made the whole leaf false already: only the column's own NULLs matter.
            return Ref(spec.type, column=f"{scope.prefix}{spec.column}", nullable=spec.nullable)
        column = f"{scope.prefix}{resolved.json.column}"
        if isinstance(node, Compare) and node.op in ("isNull", "isNotNull", "exists"):
            reader = JsonHasKey if node.op == "exists" else JsonPresent
            return Ref("json", expression=reader(column, resolved.key), nullable=False)
        sample = node.value[0] if isinstance(node.value, tuple) else node.value
        kind = json_kind(sample)
        return Ref(TEXT if kind == "text" else kind, expression=JsonValue(column, resolved.key, kind), json_number=kind == "number")

    def test(self, ref: Ref, node, positive: bool) -> Q:
        """The leaf ``node`` applied to ``ref`` (``positive``: see ``condition``)."""
        if isinstance(node, Compare) and node.op in ("isNull", "isNotNull", "exists"):
            if ref.type == "json":  # presence tests on a JSON key: the expression is the answer
                return ~Q(ref.expression) if node.op == "isNull" else Q(ref.expression)
            return ~ref.present() if node.op == "isNull" else ref.present()
        if isinstance(node, Occurs | Between) or node.op in ORDER_OPS:
            interval, negated = self.interval(ref.type, node)
            found = within(ref, interval)
            found = ~found if negated else found
        else:
            found = self.match(ref, node.op, node.value, node.case_sensitive)
        op = node.op if isinstance(node, Compare) else "eq"  # occurs / between: a range, like eq
        return ref.present() & found if ref.guard(op, positive) else found

    def interval(self, value_type: str, node):
        """((low, low_inclusive, high, high_inclusive), negated) for a test on an ordered value:
        occurs, between and =, !=, <, <=, >, >=."""
        if isinstance(node, Occurs):
            return relative_bounds(node, self.now, value_type), False
        if isinstance(node, Between):
            if value_type == DATETIME and _is_day(node.start):
                return (day_start(node.start), True, day_start(node.end + dt.timedelta(days=1)), False), False
            return (node.start, True, node.end, True), False
        return compare_interval(value_type, node.op, node.value), node.op == "ne"

    def match(self, ref: Ref, op: str, value, case_sensitive: bool) -> Q:
        if op in ("contains", "startsWith", "endsWith", "like", "matches"):
            return self.text_match(ref, op, value, case_sensitive)
        if op in ("in", "notIn"):
            if ref.type == DATETIME and any(_is_day(v) for v in value):
                found = reduce(operator.or_, (within(ref, compare_interval(ref.type, "eq", v)) for v in value))
            else:
                found = ref.q("in", list(value))
            return found if op == "in" else ~found
        raise ValueError(f"no match for {op}")

    def text_match(self, ref: Ref, op: str, text: str, case_sensitive: bool) -> Q:
        if op == "like":
            return Q(Regex(ref.lhs(), like_regex(text, case_sensitive)))
        if op == "matches":
            return Q(Regex(ref.lhs(), text))
        # Functions rather than LIKE: SQLite's LIKE ignores case, and the answer must not depend
        # on the database. Case-insensitive compares lowercased text.
        subject = ref.lhs() if case_sensitive else Lower(ref.lhs())
        needle = text if case_sensitive else text.lower()
        if op == "contains":
            return Q(GreaterThan(StrIndex(subject, Value(needle)), 0))
        cut = Left if op == "startsWith" else Right
        return Q(Exact(cut(subject, len(needle)), needle))

    # --- Other audiences ------------------------------------------------------------------------

    def in_segment(self, node: InSegment, scope: Scope) -> Q:
        resolved = catalog.resolve(scope.entity, node.path)
        return self.through(scope, resolved.links, lambda at, _: Q(**{f"{at.pk}__in": self.members_of(node.audience_id)}))

    def members_of(self, audience_id: str):
        if self.membership_lookup is None:
            raise SegmentationError(f'inSegment("{audience_id}") needs the stored membership of that audience: pass membership_lookup')
        members = self.membership_lookup(audience_id)
        return members if hasattr(members, "query") else list(members)

    # --- Collections ----------------------------------------------------------------------------

    def quantifier(self, node, scope: Scope) -> Q:
        resolved = catalog.resolve(scope.entity, node.collection)
        collection = resolved.collection
        build = self.count_at if isinstance(node, Count) else self.occurrence_at
        return self.through(scope, resolved.links, lambda at, _: build(at, collection, node))

    def where(self, collection, node) -> Q | None:
        element = Scope(catalog.ENTITIES[collection.element])
        return None if node.where is None else self.condition(node.where, element, positive=True)

    def elements(self, collection, where):
        """(the collection's matching elements of every owner, the owner id as an expression)."""
        elements = self.rows(collection.model)
        if collection.owner is None:
            owner = F(collection.key)
        else:
            elements, owner = self.join_owner_rows(elements, collection.owner, collection.key)
        return (elements if where is None else elements.filter(where)), owner

    def join_owner_rows(self, elements, spec: catalog.Owner, key: str):
        """``elements`` joined to the ``spec.model`` rows sharing their ``spec.shared`` column (an
        event's person's relations), filtered by ``spec.filter`` and the sandbox; returns them and
        the ``key`` column of those rows."""
        model = apps.get_model(spec.model)
        elements = elements.all()  # a copy: the join is added to its query in place
        query = elements.query
        on = _SameColumn(elements.model._meta.get_field(spec.shared), model._meta.get_field(spec.shared))
        alias = query.join(Join(model._meta.db_table, query.get_initial_alias(), None, INNER, on, nullable=False))

        def column(name):
            return Col(alias, model._meta.get_field(name))

        conditions = [Exact(column("sandbox"), self.sandbox.pk)] + [Exact(column(n), v) for n, v in spec.filter]
        return elements.filter(*conditions), column(key)

    def owned_by(self, scope: Scope, collection, where):
        """The matching elements of the owner ``scope`` (for a correlated EXISTS)."""
        elements, owner = self.elements(collection, where)
        return elements.filter(Exact(owner, OuterRef(scope.pk)))

    def grouped(self, scope: Scope, collection, where):
        """The collection's matching elements grouped by owner (for counts of at least 2); the
        owner id is ``_owner``."""
        elements, owner = self.elements(collection, where)
        elements = elements.filter(IsNull(owner, False))
        if scope.root and self.restrict_to_ids is not None:
            elements = elements.filter(In(owner, self.restrict_to_ids))
        return elements.values(_owner=owner)

    def count_at(self, scope: Scope, collection, node: Count) -> Q:
        where = self.where(collection, node)

        def at_least(n: int) -> Q:
            if n <= 0:
                return always(True)
            if n == 1:
                return Q(Exists(self.owned_by(scope, collection, where)))
            owners = self.grouped(scope, collection, where).annotate(matches=CountRows("*")).filter(matches__gte=n)
            return Q(**{f"{scope.pk}__in": owners.values("_owner")})

        n = node.value
        exactly = lambda: at_least(n) & ~at_least(n + 1)  # noqa: E731
        return {
            "ge": lambda: at_least(n),
            "gt": lambda: at_least(n + 1),
            "le": lambda: ~at_least(n + 1),
            "lt": lambda: ~at_least(n),
            "eq": exactly,
            "ne": lambda: ~exactly(),
        }[node.op]()

    def occurrence_at(self, scope: Scope, collection, node: Occurrence) -> Q:
        """first()/last() tested against an interval, as EXISTS probes rather than an aggregate:
        the last moment lies in [low, high] when some element does and none is later than high
        (the first: none earlier than low). Each probe reads the window through the
        (person, type, occurred_at) index instead of grouping every event."""
        where = self.where(collection, node)
        timestamp = catalog.ENTITIES[collection.element].fields[collection.timestamp]
        moment = Ref(timestamp.type, column=timestamp.column, nullable=timestamp.nullable)
        bounds, negated = self.interval(timestamp.type, node.test)
        low, low_inclusive, high, high_inclusive = bounds

        def some(extra=None) -> Q:
            elements = self.owned_by(scope, collection, where)
            return Q(Exists(elements if extra is None else elements.filter(extra)))

        if (low if node.which == "last" else high) is None:
            # Open on the far side ("last … more than 30 days ago"): a window probe would read
            # nearly every element, so one grouped pass over them comparing max (min) is cheaper.
            extreme = (Max if node.which == "last" else Min)(timestamp.column)
            owners = self.grouped(scope, collection, where).annotate(_moment=extreme)
            owners = owners.filter(within(Ref(timestamp.type, column="_moment"), bounds)).values("_owner")
            found = Q(**{f"{scope.pk}__in": owners})
        else:
            if node.which == "last":
                beyond = None if high is None else moment.q("gt" if high_inclusive else "gte", high)
            else:
                beyond = None if low is None else moment.q("lt" if low_inclusive else "lte", low)
            found = some(within(moment, bounds))
            if beyond is not None:
                found &= ~some(beyond)
        return some() & ~found if negated else found


@dataclass(frozen=True)
class _SameColumn:
    """The ON clause of a join the ORM has no relation for: ``lhs`` = ``rhs`` (two fields, one
    per table), standing in for the relation field a ``Join`` is made from. Django reads only
    these three members of it (tests/cdp/segmentation cover each on SQLite and PostgreSQL)."""

    lhs: object
    rhs: object

    @property
    def related_model(self):  # the joined table's model (read when the query nests another)
        return self.rhs.model

    def get_joining_fields(self):
        return ((self.lhs, self.rhs),)

    def get_extra_restriction(self, alias, related_alias):
        return None


def compare_interval(value_type: str, op: str, value):
    """The values ``= value`` (also for !=), ``< value``… cover, as an interval. A date compared
    with a date-time stands for its whole day: [its start, the next day's start)."""
    if value_type == DATETIME and _is_day(value):
        first, after = (day_start(value), True), (day_start(value + dt.timedelta(days=1)), False)
    else:
        first, after = (value, True), (value, True)
    return {
        "eq": (*first, *after),
        "ne": (*first, *after),
        "lt": (None, False, first[0], False),
        "le": (None, False, *after),
        "gt": (after[0], not after[1], None, False),
        "ge": (*first, None, False),
    }[op]


def within(ref: Ref, interval) -> Q:
    """``ref`` inside the interval (an open end is None); a single point is an equality."""
    low, low_inclusive, high, high_inclusive = interval
    if low is not None and low == high and low_inclusive and high_inclusive:
        return ref.q("exact", low)
    parts = []
    if low is not None:
        parts.append(ref.q("gte" if low_inclusive else "gt", low))
    if high is not None:
        parts.append(ref.q("lte" if high_inclusive else "lt", high))
    return reduce(operator.and_, parts)


def _is_day(value) -> bool:
    return isinstance(value, dt.date) and not isinstance(value, dt.datetime)
