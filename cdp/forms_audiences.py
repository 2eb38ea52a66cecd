"""The audience builder page's form. ``cdp.services.audiences.save_audience`` decides what may be
saved; its refusals land on the form."""

import datetime as dt

from django import forms

from cdp.choices import AudienceKind
from cdp.exceptions import RuleViolation
from cdp.models import Audience, AudienceMember
from cdp.services.audience_io import DefinitionError, read_definition


def evaluation_interval_text(interval: dt.timedelta) -> str:
    minutes = int(interval.total_seconds() // 60)
    for size, unit in ((7 * 24 * 60, "week"), (24 * 60, "day"), (60, "hour"), (1, "minute")):
        if minutes % size == 0 and minutes >= size:
            count = minutes // size
            return f"every {unit}" if count == 1 else f"every {count} {unit}s"
    return str(interval)


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
