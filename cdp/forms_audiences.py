"""Audience input shared by the builder pages and the REST API.

A definition arrives in either of its two forms — the rule tree (what the builder edits) or PQL
text plus the audience's kind — and ``read_definition`` turns it into the one AST, or a
``DefinitionError`` that says what is wrong and where (a JSON path, or a line and column). The
form below only checks the shape of the page's input; ``cdp.services.audiences.save_audience``
decides what may be saved, and its refusals land on the form.
"""

import csv
import datetime as dt
from dataclasses import dataclass

from django import forms
from django.db.models import Exists, OuterRef, Subquery

from cdp.choices import AudienceKind, MembershipStatus
from cdp.exceptions import RuleViolation
from cdp.models import Account, AccountPerson, Audience, AudienceMember, Person


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
    """Delete an audience unless another audience reads it with inSegment."""
    users = list(audience.dependents.order_by("name").values_list("name", flat=True)[:5])
    if users:
        raise RuleViolation(
            f"“{audience.name}” is used by {', '.join(users)} (inSegment); change those audiences first.",
            rule="audience_in_use",
        )
    audience.delete()


def evaluation_interval_text(interval: dt.timedelta) -> str:
    minutes = int(interval.total_seconds() // 60)
    for size, unit in ((7 * 24 * 60, "week"), (24 * 60, "day"), (60, "hour"), (1, "minute")):
        if minutes % size == 0 and minutes >= size:
            count = minutes // size
            return f"every {unit}" if count == 1 else f"every {count} {unit}s"
    return str(interval)


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


class _Echo:
    def write(self, value):
        return value


def members_csv(audience: Audience, *, status: str | None = MembershipStatus.REALIZED):
    """CSV lines of the members, produced in chunks so a large audience streams in constant memory."""
    writer = csv.writer(_Echo())
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


# -------------------------------------------------------------------------------------- form
UNIT_MINUTES = {"minutes": 1, "hours": 60, "days": 24 * 60, "weeks": 7 * 24 * 60}


class AudienceForm(forms.Form):
    """The builder page's fields. The rule tree comes from the visual builder (a hidden input)."""

    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    kind = forms.ChoiceField(choices=AudienceKind.choices, label="Audience of", initial=AudienceKind.PERSON)
    interval_amount = forms.IntegerField(min_value=1, max_value=10_000, initial=1, label="Evaluate in full every")
    interval_unit = forms.ChoiceField(
        choices=[(u, u) for u in UNIT_MINUTES],
        initial="days",
        label="Unit",
        help_text="Changes to profiles are applied within seconds in between; this is the full re-evaluation.",
    )
    definition = forms.JSONField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, audience: Audience | None = None, **kwargs):
        if audience is not None and "initial" not in kwargs:
            amount, unit = _interval_parts(audience.evaluation_interval)
            kwargs["initial"] = {
                "name": audience.name,
                "description": audience.description,
                "kind": audience.kind,
                "interval_amount": amount,
                "interval_unit": unit,
                "definition": audience.definition,
            }
        super().__init__(*args, **kwargs)
        if audience is not None and AudienceMember.objects.filter(audience=audience).exists():
            self.fields["kind"].disabled = True
            self.fields["kind"].help_text = "Fixed once the audience has members."

    def clean(self):
        data = super().clean()
        if "interval_amount" in data and "interval_unit" in data:
            data["evaluation_interval"] = dt.timedelta(minutes=data["interval_amount"] * UNIT_MINUTES[data["interval_unit"]])
            if data["evaluation_interval"] < dt.timedelta(minutes=5):
                self.add_error(
                    "interval_amount", "Evaluate at most every 5 minutes; changes are applied within seconds anyway."
                )
        if "kind" in data and not self.errors.get("definition"):
            try:
                data["parsed"] = read_definition(definition=data.get("definition"), kind=data["kind"])
            except DefinitionError as error:
                self.add_error("definition", error.message)
        return data


def _interval_parts(interval: dt.timedelta) -> tuple[int, str]:
    minutes = int(interval.total_seconds() // 60)
    for unit in ("weeks", "days", "hours"):
        if minutes and minutes % UNIT_MINUTES[unit] == 0:
            return minutes // UNIT_MINUTES[unit], unit
    return max(minutes, 1), "minutes"


def add_rule_violation(form: forms.Form, violation: RuleViolation) -> None:
    form.add_error(violation.field if violation.field in form.fields else None, violation.message)
