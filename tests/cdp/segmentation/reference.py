"""A brute-force reference evaluator, for tests only: it loads a sandbox's rows into Python and
decides membership by walking the AST object by object. It shares nothing with the compiler but
the catalog's name → column mapping, so the two can only agree if both implement the documented
semantics:

- a comparison with a missing value (NULL, "" for text, an absent/null/"" JSON key, a JSON value of
  another type than the literal) is false; ``not`` is plain negation;
- a link that leads nowhere makes conditions beyond it false; ``person.account`` is any primary
  active account relation;
- a date compared with a date-time compares the date-time's UTC day;
- an account's xEvent are the events of its active people.
"""

import datetime as dt
import re
from collections import defaultdict
from decimal import Decimal

from dateutil.relativedelta import relativedelta

from cdp.models import (
    Account,
    AccountPerson,
    Campaign,
    CampaignMember,
    ExperienceEvent,
    ListMember,
    MarketingList,
    Opportunity,
    OpportunityPerson,
    Person,
)
from cdp.segmentation import ast
from cdp.segmentation.catalog import ENTITIES

COMPARE = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
}
MISSING = object()


class Entity:
    """A row and what kind of entity it is (its catalog name)."""

    def __init__(self, kind, row):
        self.kind, self.row = kind, row


class Reference:
    def __init__(self, sandbox, *, now, memberships=None):
        self.now = now
        self.today = now.astimezone(dt.UTC).date()
        self.memberships = memberships or {}
        rows = lambda model: list(model.objects.filter(sandbox=sandbox))  # noqa: E731
        self.people = {p.pk: p for p in rows(Person)}
        self.accounts = {a.pk: a for a in rows(Account)}
        self.opportunities = {o.pk: o for o in rows(Opportunity)}
        self.lists = {m.pk: m for m in rows(MarketingList)}
        self.campaigns = {c.pk: c for c in rows(Campaign)}
        self.relations = rows(AccountPerson)
        self.by_owner = defaultdict(list)  # (owner kind, owner id, collection) -> [Entity]
        for relation in self.relations:
            self.by_owner["person", relation.person_id, "accountPersons"].append(Entity("accountPerson", relation))
            self.by_owner["account", relation.account_id, "accountPersons"].append(Entity("accountPerson", relation))
        for role in rows(OpportunityPerson):
            self.by_owner["person", role.person_id, "opportunityPersons"].append(Entity("opportunityPerson", role))
            self.by_owner["opportunity", role.opportunity_id, "opportunityPersons"].append(Entity("opportunityPerson", role))
        for member in rows(ListMember):
            self.by_owner["person", member.person_id, "listMembers"].append(Entity("listMember", member))
        for member in rows(CampaignMember):
            self.by_owner["person", member.person_id, "campaignMembers"].append(Entity("campaignMember", member))
        for opportunity in self.opportunities.values():
            if opportunity.account_id:
                self.by_owner["account", opportunity.account_id, "opportunities"].append(Entity("opportunity", opportunity))
        for event in rows(ExperienceEvent):
            self.by_owner["person", event.person_id, "xEvent"].append(Entity("event", event))

    # --- Entry point -----------------------------------------------------------------------------

    def members(self, audience) -> set:
        subjects = self.people if audience.subject == "person" else self.accounts
        return {pk for pk, row in subjects.items() if self.holds(audience.condition, Entity(audience.subject, row))}

    def holds(self, node, entity) -> bool:
        if isinstance(node, ast.And):
            return all(self.holds(c, entity) for c in node.conditions)
        if isinstance(node, ast.Or):
            return any(self.holds(c, entity) for c in node.conditions)
        if isinstance(node, ast.Not):
            return not self.holds(node.condition, entity)
        if isinstance(node, ast.InSegment):
            members = self.memberships[node.audience_id]
            return any(target.row.pk in members for target in self.follow_all(entity, node.path))
        if isinstance(node, ast.Count):
            return self.count(node, entity)
        if isinstance(node, ast.Occurrence):
            return self.occurrence(node, entity)
        return self.leaf(node, entity)

    # --- Navigation --------------------------------------------------------------------------------

    def link(self, entity, name) -> list:
        """The entities one to-one step away (a list: person.account may give several)."""
        row = entity.row
        if entity.kind == "person" and name == "account":
            return [
                Entity("account", self.accounts[r.account_id])
                for r in self.relations
                if r.person_id == row.pk and r.is_primary and r.is_active
            ]
        targets = {
            ("account", "parent"): lambda: (self.accounts.get(row.parent_id), "account"),
            ("opportunity", "account"): lambda: (self.accounts.get(row.account_id), "account"),
            ("accountPerson", "account"): lambda: (self.accounts[row.account_id], "account"),
            ("accountPerson", "person"): lambda: (self.people[row.person_id], "person"),
            ("opportunityPerson", "opportunity"): lambda: (self.opportunities[row.opportunity_id], "opportunity"),
            ("opportunityPerson", "person"): lambda: (self.people[row.person_id], "person"),
            ("listMember", "list"): lambda: (self.lists[row.marketing_list_id], "list"),
            ("listMember", "person"): lambda: (self.people[row.person_id], "person"),
            ("campaignMember", "campaign"): lambda: (self.campaigns[row.campaign_id], "campaign"),
            ("campaignMember", "person"): lambda: (self.people[row.person_id], "person"),
        }
        target, kind = targets[entity.kind, name]()
        return [] if target is None else [Entity(kind, target)]

    def follow_all(self, entity, path) -> list:
        entities = [entity]
        for name in path:
            entities = [target for e in entities for target in self.link(e, name)]
        return entities

    def split(self, entity_kind, path):
        """(links, rest): the leading names of ``path`` that are links, and what follows."""
        links = []
        kind = entity_kind
        for index, name in enumerate(path):
            if name not in ENTITIES[kind].links:
                return links, path[index:]
            links.append(name)
            kind = ENTITIES[kind].links[name].target
        return links, ()

    def collection(self, entity, name) -> list:
        if entity.kind == "account" and name == "xEvent":
            people = {r.person_id for r in self.relations if r.account_id == entity.row.pk and r.is_active}
            return [e for pk in people for e in self.by_owner["person", pk, "xEvent"]]
        return list(self.by_owner[entity.kind, entity.row.pk, name])

    # --- Leaves ----------------------------------------------------------------------------------

    def leaf(self, node, entity) -> bool:
        links, rest = self.split(entity.kind, node.field)
        if not rest:  # the path names a relation: test whether its last link leads somewhere
            *head, last = links
            reached = [bool(self.link(e, last)) for e in self.follow_all(entity, head)]
            if node.op == "isNull":
                return any(not r for r in reached)
            return any(reached)
        return any(self.test(node, target, rest) for target in self.follow_all(entity, links))

    def value(self, target, rest, literal):
        """(value, type) of a field, or MISSING."""
        spec_entity = ENTITIES[target.kind]
        if rest[0] in spec_entity.fields:
            spec = spec_entity.fields[rest[0]]
            value = getattr(target.row, spec.column)
            if value is None or value == "":
                return MISSING, spec.type
            return value, spec.type
        document = getattr(target.row, spec_entity.json.column) or {}
        value = document.get(rest[1], None)
        kind = json_kind(literal)
        if kind == "text" and isinstance(value, str) and value != "":
            return value, "text"
        if kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
            return Decimal(str(value)), "number"
        if kind == "bool" and isinstance(value, bool):
            return value, "bool"
        return MISSING, "json"

    def test(self, node, target, rest) -> bool:
        if isinstance(node, ast.Compare) and node.op in ("isNull", "isNotNull", "exists"):
            return self.presence(node.op, target, rest)
        sample = node.value[0] if isinstance(node, ast.Compare) and isinstance(node.value, tuple) else getattr(node, "value", None)
        value, kind = self.value(target, rest, sample)
        if value is MISSING:
            return False
        return self.check(node, value, kind)

    def presence(self, op, target, rest) -> bool:
        spec_entity = ENTITIES[target.kind]
        if rest[0] in spec_entity.fields:
            value = getattr(target.row, spec_entity.fields[rest[0]].column)
            present = value is not None and value != ""
        else:
            document = getattr(target.row, spec_entity.json.column) or {}
            if op == "exists":
                return rest[1] in document
            present = document.get(rest[1]) not in (None, "")
        return not present if op == "isNull" else present

    def check(self, node, value, kind) -> bool:
        """``node``'s test on a present ``value`` of ``kind``."""
        if isinstance(node, ast.Occurs):
            return self.window(node, value, kind)
        if isinstance(node, ast.Between):
            if kind == "datetime" and not isinstance(node.start, dt.datetime):
                day = value.astimezone(dt.UTC).date()
                return node.start <= day <= node.end
            return node.start <= value <= node.end
        op, literal = node.op, node.value
        if op in ("in", "notIn"):
            found = any(self.equal(value, kind, v) for v in literal)
            return found if op == "in" else not found
        if op in ("contains", "startsWith", "endsWith", "like", "matches"):
            return text_test(op, value, literal, node.case_sensitive)
        left, right = comparable(value, kind, literal)
        return COMPARE[op](left, right)

    def equal(self, value, kind, literal) -> bool:
        left, right = comparable(value, kind, literal)
        return left == right

    def window(self, node, value, kind) -> bool:
        origin = self.today if kind == "date" else self.now
        step = relativedelta(**{node.unit: node.amount})
        edge = origin - step if node.direction == "before" else origin + step
        if node.direction == "before":
            return {
                "le": edge <= value <= origin,
                "lt": edge < value <= origin,
                "ge": value <= edge,
                "gt": value < edge,
            }[node.op]
        return {
            "le": origin <= value <= edge,
            "lt": origin <= value < edge,
            "ge": value >= edge,
            "gt": value > edge,
        }[node.op]

    # --- Collections -----------------------------------------------------------------------------

    def elements(self, node, entity) -> list:
        links, rest = self.split(entity.kind, node.collection)
        owners = self.follow_all(entity, links)
        return owners, rest[0]

    def count(self, node, entity) -> bool:
        owners, name = self.elements(node, entity)
        for owner in owners:
            matching = [e for e in self.collection(owner, name) if node.where is None or self.holds(node.where, e)]
            if COMPARE[node.op](len(matching), node.value):
                return True
        return False

    def occurrence(self, node, entity) -> bool:
        owners, name = self.elements(node, entity)
        for owner in owners:
            elements = [e for e in self.collection(owner, name) if node.where is None or self.holds(node.where, e)]
            if not elements:
                continue
            field = ENTITIES[elements[0].kind].fields[node.test.field[0]]
            moments = [getattr(e.row, field.column) for e in elements]
            moment = max(moments) if node.which == "last" else min(moments)
            if self.check(node.test, moment, field.type):
                return True
        return False


def json_kind(literal):
    if isinstance(literal, bool):
        return "bool"
    if isinstance(literal, str):
        return "text"
    if isinstance(literal, int | Decimal):
        return "number"
    return None


def comparable(value, kind, literal):
    """Both sides of a comparison in one domain (a date-time against a date: its UTC day)."""
    if kind == "datetime" and isinstance(literal, dt.date) and not isinstance(literal, dt.datetime):
        return value.astimezone(dt.UTC).date(), literal
    if kind in ("decimal", "number", "int"):
        return Decimal(value), Decimal(literal)
    return value, literal


def like_match(text: str, pattern: str) -> bool:
    """% matches any run of characters, _ exactly one; everything else itself (dynamic programming)."""
    reachable = {0}
    for p in pattern:
        if p == "%":
            start = min(reachable) if reachable else None
            reachable = set(range(start, len(text) + 1)) if start is not None else set()
        else:
            reachable = {i + 1 for i in reachable if i < len(text) and (p == "_" or text[i] == p)}
    return len(text) in reachable


def text_test(op, value, literal, case_sensitive) -> bool:
    if op == "matches":
        return re.search(literal, value) is not None
    if not case_sensitive:
        value, literal = value.lower(), literal.lower()
    if op == "contains":
        return literal in value
    if op == "startsWith":
        return value.startswith(literal)
    if op == "endsWith":
        return value.endswith(literal)
    return like_match(value, literal)
