"""What an audience can talk about: the entities of the profile store as the segmentation language
sees them, their fields (PQL camelCase names mapped to our snake_case columns), the to-one links
between them and the to-many collections a condition can quantify over.

One catalog serves the parser's validation, the compiler, the builder's schema browser
(``describe_subject``) and the tests' reference evaluator, so a field added to ``cdp.schema``
appears everywhere at once.

Semantics worth knowing (the compiler and the language docs follow them):
- A text column holding "" is *missing*, like NULL: only ``isNull()`` matches it.
- A link (``account.parent``) that leads nowhere makes every condition beyond it false; test the
  link itself with ``isNull()`` / ``isNotNull()`` / ``exists()``.
- ``person.account`` is the person's *primary, active* account (AccountPerson with is_primary and
  is_active); a person with several such relations matches a condition when any of them does,
  each condition on its own. To ask several things of one and the same account, or of any
  account whatever the role: ``exists ap from person.accountPersons where ap.account.… and …``.
- An account's ``xEvent`` are the events of its active people.
"""

import re
from dataclasses import dataclass, field

from cdp.schema import ACCOUNT_FIELDS, OPPORTUNITY_FIELDS, OPPORTUNITY_PERSON_FIELDS, PERSON_FIELDS

TEXT, INT, DECIMAL, BOOL, DATE, DATETIME = "text", "int", "decimal", "bool", "date", "datetime"
VALUE_TYPES = (TEXT, INT, DECIMAL, BOOL, DATE, DATETIME)
TYPE_WORDS = {
    TEXT: "text",
    INT: "a whole number",
    DECIMAL: "a number",
    BOOL: "true or false",
    DATE: "a date",
    DATETIME: "a date-time",
}
SUBJECTS = ("person", "account")
# What a JSON key may be called: no quotes, backslashes, backticks or control characters (they
# would need escaping in SQLite JSON paths and in PQL), at most 100 characters.
JSON_KEY_RE = re.compile(r'^[^"\\`\x00-\x1f]{1,100}$')


@dataclass(frozen=True)
class Field:
    name: str  # as PQL writes it (camelCase)
    column: str  # the Django field
    type: str
    nullable: bool
    label: str = ""


@dataclass(frozen=True)
class JsonColumn:
    """``attributes`` / ``properties``: a JSON object whose keys are addressed as ``<name>.<key>``."""

    name: str
    column: str
    label: str = ""


@dataclass(frozen=True)
class Link:
    """A to-one step: a foreign key, or (``virtual``) the person's primary active account."""

    name: str
    target: str
    column: str = ""
    nullable: bool = False
    virtual: bool = False
    label: str = ""


@dataclass(frozen=True)
class Owner:
    """Where a collection's owner id is read when the element has no column for it: the rows of
    ``model`` sharing the element's ``shared`` column (an event's person) and passing ``filter``;
    the collection's ``key`` is then their column. The compiler joins them to the element on that
    column directly, never through the table both columns point at (cdp_person)."""

    model: str
    shared: str
    filter: tuple = ()


@dataclass(frozen=True)
class Collection:
    """A to-many step: the rows of ``model`` whose ``key`` is the owner's id; each row is one
    ``element``. With ``owner``, ``key`` is a column of the owner rows joined to each element."""

    name: str
    element: str
    model: str  # "app_label.ModelName", resolved lazily so the catalog imports without Django set up
    key: str
    default_var: str
    owner: Owner | None = None
    timestamp: str = ""  # the element field first()/last() order by ("" = not orderable)
    label: str = ""


@dataclass(frozen=True)
class Entity:
    name: str
    label: str
    model: str
    fields: dict = field(default_factory=dict)
    json: JsonColumn | None = None
    links: dict = field(default_factory=dict)
    collections: dict = field(default_factory=dict)
    segmentable: bool = False  # inSegment() applies (audiences are of people or accounts)

    def member_names(self) -> list[str]:
        names = list(self.fields) + list(self.links) + list(self.collections)
        return names + ([self.json.name] if self.json else [])


def camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.title() for part in rest)


def _schema_fields(specs) -> dict:
    fields = {}
    for spec in specs.values():
        value_type = TEXT if spec.type == "email" else spec.type
        fields[camel(spec.name)] = Field(camel(spec.name), spec.name, value_type, value_type not in (TEXT, BOOL), spec.label)
    return fields


def _fields(*fields: Field) -> dict:
    return {f.name: f for f in fields}


def _by_name(*items) -> dict:
    return {item.name: item for item in items}


CREATED_AT = Field("createdAt", "created_at", DATETIME, False, "Created at")
ATTRIBUTES = JsonColumn("attributes", "attributes", "Custom and source-specific fields")
EVENTS_OF_PERSON = Collection("xEvent", "event", "cdp.ExperienceEvent", "person_id", "e", timestamp="occurredAt", label="Events")

ENTITIES = {
    "person": Entity(
        "person",
        "Person",
        "cdp.Person",
        fields={**_schema_fields(PERSON_FIELDS), "createdAt": CREATED_AT},
        json=ATTRIBUTES,
        links=_by_name(Link("account", "account", virtual=True, label="Primary account")),
        collections=_by_name(
            EVENTS_OF_PERSON,
            Collection("accountPersons", "accountPerson", "cdp.AccountPerson", "person_id", "ap", label="Account relations"),
            Collection(
                "opportunityPersons", "opportunityPerson", "cdp.OpportunityPerson", "person_id", "op", label="Opportunity contact roles"
            ),
            Collection(
                "listMembers", "listMember", "cdp.ListMember", "person_id", "lm", timestamp="addedAt", label="Static list memberships"
            ),
            Collection(
                "campaignMembers", "campaignMember", "cdp.CampaignMember", "person_id", "cm", timestamp="addedAt", label="Campaign memberships"
            ),
        ),
        segmentable=True,
    ),
    "account": Entity(
        "account",
        "Account",
        "cdp.Account",
        fields={**_schema_fields(ACCOUNT_FIELDS), "createdAt": CREATED_AT},
        json=ATTRIBUTES,
        links=_by_name(Link("parent", "account", "parent", nullable=True, label="Parent account")),
        collections=_by_name(
            Collection("accountPersons", "accountPerson", "cdp.AccountPerson", "account_id", "ap", label="People (relations)"),
            Collection("opportunities", "opportunity", "cdp.Opportunity", "account_id", "o", label="Opportunities"),
            Collection(
                "xEvent",
                "event",
                "cdp.ExperienceEvent",
                "account",
                "e",
                owner=Owner("cdp.AccountPerson", "person", (("is_active", True),)),
                timestamp="occurredAt",
                label="Events of the account's active people",
            ),
        ),
        segmentable=True,
    ),
    "opportunity": Entity(
        "opportunity",
        "Opportunity",
        "cdp.Opportunity",
        fields={
            **_schema_fields(OPPORTUNITY_FIELDS),
            "externalId": Field("externalId", "external_id", TEXT, False, "External id"),
            "createdAt": CREATED_AT,
        },
        json=ATTRIBUTES,
        links=_by_name(Link("account", "account", "account", nullable=True, label="Account")),
        collections=_by_name(
            Collection("opportunityPersons", "opportunityPerson", "cdp.OpportunityPerson", "opportunity_id", "op", label="Contact roles")
        ),
    ),
    "accountPerson": Entity(
        "accountPerson",
        "Account–person relation",
        "cdp.AccountPerson",
        fields=_fields(
            Field("role", "role", TEXT, False, "Role"),
            Field("isPrimary", "is_primary", BOOL, False, "Primary"),
            Field("isActive", "is_active", BOOL, False, "Active"),
        ),
        links=_by_name(Link("account", "account", "account"), Link("person", "person", "person")),
    ),
    "opportunityPerson": Entity(
        "opportunityPerson",
        "Opportunity contact role",
        "cdp.OpportunityPerson",
        fields=_schema_fields(OPPORTUNITY_PERSON_FIELDS),
        links=_by_name(Link("opportunity", "opportunity", "opportunity"), Link("person", "person", "person")),
    ),
    "listMember": Entity(
        "listMember",
        "Static list membership",
        "cdp.ListMember",
        fields=_fields(Field("addedAt", "added_at", DATETIME, False, "Added at")),
        links=_by_name(Link("list", "list", "marketing_list"), Link("person", "person", "person")),
    ),
    "list": Entity(
        "list",
        "Static list",
        "cdp.MarketingList",
        fields=_fields(Field("name", "name", TEXT, False, "Name"), Field("externalId", "external_id", TEXT, False, "External id")),
    ),
    "campaignMember": Entity(
        "campaignMember",
        "Campaign membership",
        "cdp.CampaignMember",
        fields=_fields(
            Field("status", "status", TEXT, False, "Status"),
            Field("hasResponded", "has_responded", BOOL, False, "Responded"),
            Field("addedAt", "added_at", DATETIME, False, "Added at"),
        ),
        links=_by_name(Link("campaign", "campaign", "campaign"), Link("person", "person", "person")),
    ),
    "campaign": Entity(
        "campaign",
        "Campaign",
        "cdp.Campaign",
        fields=_fields(
            Field("name", "name", TEXT, False, "Name"),
            Field("externalId", "external_id", TEXT, False, "External id"),
            Field("type", "type", TEXT, False, "Type"),
            Field("status", "status", TEXT, False, "Status"),
        ),
    ),
    "event": Entity(
        "event",
        "Experience event",
        "cdp.ExperienceEvent",
        fields=_fields(
            Field("type", "type", TEXT, False, "Type"),
            Field("occurredAt", "occurred_at", DATETIME, False, "Occurred at"),
        ),
        json=JsonColumn("properties", "properties", "Event properties"),
    ),
}


# --- Path resolution ------------------------------------------------------------------------


@dataclass(frozen=True)
class Resolved:
    """Where a path leads: through ``links``, to a ``field``, a JSON ``key``, a ``collection``,
    or (none of them) to the entity the last link reaches."""

    entity: Entity  # the entity the terminal belongs to (after the links)
    links: tuple = ()
    field: Field | None = None
    json: JsonColumn | None = None
    key: str = ""
    collection: Collection | None = None

    @property
    def is_relation(self) -> bool:
        return self.field is None and self.json is None and self.collection is None

    @property
    def target(self) -> Entity:
        """The entity a relation path reaches (the start entity for an empty path)."""
        return self.entity


class PathError(Exception):
    """A path that names nothing; ``index`` is the offending segment, ``message`` says why."""

    def __init__(self, index: int, message: str):
        super().__init__(message)
        self.index, self.message = index, message


def resolve(entity: Entity, path: tuple[str, ...]) -> Resolved:
    """Follow ``path`` from ``entity``. Raises PathError naming the first segment that fails."""
    links = []
    for index, name in enumerate(path):
        last = index == len(path) - 1
        if name in entity.links:
            link = entity.links[name]
            links.append(link)
            entity = ENTITIES[link.target]
            continue
        if name in entity.fields:
            if not last:
                raise PathError(index + 1, f"{name} is {TYPE_WORDS[entity.fields[name].type]}, not something with fields")
            return Resolved(entity, tuple(links), field=entity.fields[name])
        if entity.json and name == entity.json.name:
            if index != len(path) - 2:
                raise PathError(index, f"{name} is followed by exactly one key, e.g. {name}.tier")
            key = path[-1]
            if not JSON_KEY_RE.match(key):
                raise PathError(index + 1, f"'{key}' can't be a key: use 1–100 characters without quotes, backslashes or backticks")
            return Resolved(entity, tuple(links), json=entity.json, key=key)
        if name in entity.collections:
            if not last:
                raise PathError(index + 1, f"{name} is a collection; quantify over it with exists … from or select … from")
            return Resolved(entity, tuple(links), collection=entity.collections[name])
        raise PathError(index, unknown_member_message(entity, name))
    return Resolved(entity, tuple(links))


def unknown_member_message(entity: Entity, name: str) -> str:
    import difflib

    names = entity.member_names()
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"; did you mean {close[0]}?" if close else f"; it has {', '.join(names)}"
    return f"{entity.label.lower()} has no field '{name}'{hint}"


# --- Schema browser ---------------------------------------------------------------------------

TEXT_OPS = ("eq", "ne", "in", "notIn", "contains", "startsWith", "endsWith", "like", "matches", "isNull", "isNotNull")
NUMBER_OPS = ("eq", "ne", "lt", "le", "gt", "ge", "in", "notIn", "isNull", "isNotNull")
BOOL_OPS = ("eq", "ne", "isNull", "isNotNull")
TIME_OPS = NUMBER_OPS  # plus the occurs / between nodes
OPS_BY_TYPE = {TEXT: TEXT_OPS, INT: NUMBER_OPS, DECIMAL: NUMBER_OPS, BOOL: BOOL_OPS, DATE: TIME_OPS, DATETIME: TIME_OPS}
JSON_OPS = tuple(dict.fromkeys(TEXT_OPS + NUMBER_OPS + ("exists",)))
RELATION_OPS = ("isNull", "isNotNull", "exists")


def describe_entity(name: str) -> dict:
    """An entity's fields, links and collections with their types and operators (plain data)."""
    entity = ENTITIES[name]
    return {
        "name": entity.name,
        "label": entity.label,
        "fields": [
            {"name": f.name, "label": f.label or f.name, "type": f.type, "ops": list(OPS_BY_TYPE[f.type])}
            for f in entity.fields.values()
        ],
        "json": {"name": entity.json.name, "label": entity.json.label, "ops": list(JSON_OPS)} if entity.json else None,
        "links": [{"name": link.name, "label": link.label or link.name, "entity": link.target} for link in entity.links.values()],
        "collections": [
            {"name": c.name, "label": c.label or c.name, "entity": c.element, "variable": c.default_var, "orderedBy": c.timestamp}
            for c in entity.collections.values()
        ],
        "inSegment": entity.segmentable,
    }


def describe_subject(subject: str) -> dict:
    """Everything reachable from an audience's subject, for the builder's schema browser."""
    return {"subject": subject, "entities": {name: describe_entity(name) for name in ENTITIES}}
