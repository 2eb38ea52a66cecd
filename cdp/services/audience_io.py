"""Reading audience definitions in either form, deleting audiences, and reading their members:
shared by the builder pages and the REST API.

A definition arrives as the rule tree (what the builder edits) or as PQL text plus the audience's
kind; ``read_definition`` turns it into the one AST, or a ``DefinitionError`` that says what is
wrong and where (a JSON path, or a line and column).
"""

import csv
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Subquery

from cdp.choices import AudienceKind, MembershipStatus
from cdp.exceptions import RuleViolation
from cdp.models import Account, AccountPerson, Audience, AudienceMember, Person
from cdp.signals import audience_deletion_requested


class DefinitionError(Exception):
    """A definition that can't be read. ``field`` is the input it came from (definition | pql);
    ``location`` holds json_path, or line and column (and the field it names), when known."""

    def __init__(self, message: str, *, field: str, location: dict | None = None):
        super().__init__(message)
        self.message, self.field, self.location = message, field, dict(location or {})

    def to_dict(self) -> dict:
        return {"message": self.message, "field": self.field, **self.location}


@dataclass(frozen=True)
class Definition:
    """Both forms of a valid definition."""

    ast: object
    tree: dict
    pql: str

    @property
    def kind(self) -> str:
        return self.ast.subject


def read_definition(*, definition=None, pql=None, kind=None) -> Definition:
    """The definition given as a rule tree, or as PQL text for an audience of ``kind``."""
    from cdp.segmentation import SegmentationError, from_tree, parse_pql, to_pql

    if definition is not None and pql not in (None, ""):
        raise DefinitionError("Give the definition as a rule tree or as PQL text, not both.", field="definition")
    if definition is not None:
        source = "definition"
        if kind and isinstance(definition, dict) and definition.get("subject") not in (None, kind):
            raise DefinitionError(
                f'The rule tree is about "{definition.get("subject")}" but kind is "{kind}".',
                field="kind",
                location={"json_path": "$.subject"},
            )
        read = lambda: from_tree(definition)  # noqa: E731
    elif pql not in (None, ""):
        source = "pql"
        if kind not in AudienceKind.values:
            raise DefinitionError('PQL text needs the audience\'s kind: "person" or "account".', field="kind")
        read = lambda: parse_pql(pql, kind)  # noqa: E731
    else:
        raise DefinitionError("Give a definition: a rule tree (definition) or PQL text (pql).", field="definition")
    try:
        ast = read()
    except SegmentationError as error:
        location = {k: v for k, v in error.to_dict().items() if k != "message"}
        raise DefinitionError(error.message, field=source, location=location) from None
    return Definition(ast, ast.to_tree(), to_pql(ast))


def definition_of(audience: Audience) -> Definition | None:
    """Both forms of a stored audience's definition (None when it no longer reads, e.g. after a
    catalog change: the audience then shows its error)."""
    try:
        return read_definition(definition=audience.definition)
    except DefinitionError:
        return None


def delete_audience(audience: Audience) -> None:
    """Delete an audience unless another audience reads it with inSegment, or another part of
    Quorum (dataflows, live journeys) still needs it."""
    users = list(audience.dependents.order_by("name").values_list("name", flat=True)[:5])
    refusals = [f"“{audience.name}” is used by {', '.join(users)} (inSegment); change those audiences first."] if users else []
    refusals += [answer for _, answer in audience_deletion_requested.send(sender=Audience, audience=audience) if answer]
    if refusals:
        raise RuleViolation(" ".join(refusals), rule="audience_in_use")
    audience.delete()


# ----------------------------------------------------------------------------------- members
def member_rows(audience: Audience, *, status: str | None = MembershipStatus.REALIZED):
    """The audience's membership rows (newest entries first), optionally of one status."""
    rows = AudienceMember.objects.filter(sandbox=audience.sandbox, audience=audience)
    if status:
        rows = rows.filter(status=status)
    return rows.order_by("-realized_at", "-id")


def attach_profiles(audience: Audience, members) -> list:
    """Give each membership row its ``person`` or ``account`` (one query for the whole page) and,
    for people, their primary account."""
    members = list(members)
    ids = [m.member_id for m in members]
    if audience.kind == AudienceKind.PERSON:
        people = Person.objects.for_sandbox(audience.sandbox).filter(pk__in=ids)
        primary = AccountPerson.objects.filter(person=OuterRef("pk"), is_primary=True).values("account__name")[:1]
        by_id = {p.pk: p for p in people.annotate(primary_account=Subquery(primary))}
        for member in members:
            member.person, member.account = by_id.get(member.member_id), None
    else:
        by_id = Account.objects.for_sandbox(audience.sandbox).filter(pk__in=ids).in_bulk()
        for member in members:
            member.person, member.account = None, by_id.get(member.member_id)
    return members


CSV_CHUNK = 2000
PERSON_COLUMNS = [
    "person_id", "email", "first_name", "last_name", "job_title", "country", "status", "realized_at", "exited_at",
]  # fmt: skip
ACCOUNT_COLUMNS = ["account_id", "name", "domain", "industry", "country", "status", "realized_at", "exited_at"]


class Echo:
    """A file-like object whose write returns the line: csv.writer over it yields rows to stream."""

    def write(self, value):
        return value


def members_csv(audience: Audience, *, status: str | None = MembershipStatus.REALIZED):
    """CSV lines of the members, produced in chunks so a large audience streams in constant memory."""
    writer = csv.writer(Echo())
    person = audience.kind == AudienceKind.PERSON
    yield writer.writerow(PERSON_COLUMNS if person else ACCOUNT_COLUMNS)
    last_id = 0
    base = AudienceMember.objects.filter(sandbox=audience.sandbox, audience=audience)
    if status:
        base = base.filter(status=status)
    while True:
        chunk = attach_profiles(audience, base.filter(id__gt=last_id).order_by("id")[:CSV_CHUNK])
        if not chunk:
            return
        for m in chunk:
            times = [m.status, _iso(m.realized_at), _iso(m.exited_at)]
            if person:
                p = m.person
                basics = ("",) * 5 if p is None else (p.email, p.first_name, p.last_name, p.job_title, p.country)
                values = [m.member_id, *basics]
            else:
                a = m.account
                basics = ("",) * 4 if a is None else (a.name, a.domain, a.industry, a.country)
                values = [m.member_id, *basics]
            yield writer.writerow([*values, *times])
        last_id = chunk[-1].id


def _iso(value):
    return value.isoformat() if value else ""


def members_csv_name(audience: Audience) -> str:
    from django.utils.text import slugify

    return f"{slugify(audience.name) or 'audience'}-{audience.pk}-members.csv"


def audiences_for_picker(sandbox, *, exclude=None) -> list[dict]:
    """The audiences an inSegment condition may name (id, name, kind), for the builder."""
    audiences = Audience.objects.for_sandbox(sandbox).order_by("name")
    if exclude is not None:
        audiences = audiences.exclude(pk=exclude.pk).exclude(
            Exists(Audience.depends_on.through.objects.filter(from_audience=OuterRef("pk"), to_audience=exclude))
        )
    return [{"id": str(a.pk), "name": a.name, "kind": a.kind} for a in audiences.only("pk", "name", "kind")]
