"""Forms of the buying group pages, and the buying group filters shared by the list page and the API."""

from django import forms
from django_filters import rest_framework as django_filters

from journeys.choices import BuyingGroupStatus, RoleWeight, StageKind
from journeys.models import BuyingGroup, RolesTemplate, StagesModel
from journeys.services.buying_groups import condition_pql


class BuyingGroupFilterSet(django_filters.FilterSet):
    """Filters of the buying group list (page and API): one implementation for both."""

    # Ids rather than choices: the queryset is already the sandbox's, so another sandbox's id finds nothing.
    solution_interest = django_filters.NumberFilter(field_name="solution_interest_id", label="Solution interest id")
    status = django_filters.ChoiceFilter(choices=BuyingGroupStatus.choices, empty_label="Any status")
    stage = django_filters.CharFilter(field_name="stage__name", lookup_expr="iexact", label="Stage")
    completeness_min = django_filters.NumberFilter(field_name="completeness_score", lookup_expr="gte", label="Completeness from")
    completeness_max = django_filters.NumberFilter(field_name="completeness_score", lookup_expr="lte", label="Completeness to")
    account = django_filters.NumberFilter(field_name="account_id", label="Account id")
    q = django_filters.CharFilter(field_name="account__name", lookup_expr="icontains", label="Account name contains")

    class Meta:
        model = BuyingGroup
        fields = ["solution_interest", "status", "stage", "completeness_min", "completeness_max", "account", "q"]


class NameForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class RoleForm(forms.Form):
    name = forms.CharField(max_length=100, label="New role")
    description = forms.CharField(max_length=255, required=False)


class RolesTemplateForm(NameForm):
    """The roles come as one row per role of the sandbox (see ``rows``); the service checks them."""

    def __init__(self, *args, roles=(), template=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.role_choices = list(roles)
        current = {r.role_id: r for r in template.roles.all()} if template is not None else {}
        self.rows = []
        for role in self.role_choices:
            row = current.get(role.pk)
            prefix = f"role-{role.pk}"
            posted = self.data if self.is_bound else None
            self.rows.append({
                "role": role,
                "prefix": prefix,
                "included": (f"{prefix}-included" in posted) if posted is not None else row is not None,
                "weight": _whole(posted.get(f"{prefix}-weight") or RoleWeight.NORMAL) if posted is not None else (row.weight if row else RoleWeight.NORMAL),
                "required": (f"{prefix}-required" in posted) if posted is not None else bool(row and row.required),
                "required_count": (posted.get(f"{prefix}-required_count") or "1") if posted is not None else (row.required_count if row else 1),
                "pql": (posted.get(f"{prefix}-pql") or "") if posted is not None else condition_pql(row.condition if row else None),
            })  # fmt: skip

    def role_specs(self) -> list[dict]:
        specs = []
        for row in self.rows:
            if row["included"]:
                specs.append({"role": row["role"], "weight": row["weight"], "required": row["required"],
                              "required_count": _whole(row["required_count"]), "condition_pql": row["pql"].strip() or None})  # fmt: skip
        return specs


def _whole(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0  # refused by the service with a message naming the role


class StagesModelForm(NameForm):
    """Stages one per line as ``Name: kind`` and transitions one per line as ``From -> To``."""

    stages = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="One stage per line, in order: “Name: entry|intermediate|success|failure”.",
    )
    transitions = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 6}), help_text="One allowed move per line: “From -> To”."
    )

    @staticmethod
    def initial_for(stages_model, as_dict) -> dict:
        return {
            "name": stages_model.name,
            "description": stages_model.description,
            "stages": "\n".join(f"{s['name']}: {s['kind']}" for s in as_dict["stages"]),
            "transitions": "\n".join(f"{t['from']} -> {t['to']}" for t in as_dict["transitions"]),
        }

    def clean_stages(self):
        stages = []
        for line in self.cleaned_data["stages"].splitlines():
            if not line.strip():
                continue
            name, _, kind = line.rpartition(":") if ":" in line else (line, "", StageKind.INTERMEDIATE)
            stages.append({"name": name.strip(), "kind": kind.strip().lower() or StageKind.INTERMEDIATE})
        return stages

    def clean_transitions(self):
        transitions = []
        for number, line in enumerate(self.cleaned_data["transitions"].splitlines(), start=1):
            if not line.strip():
                continue
            if "->" not in line:
                raise forms.ValidationError(f"Line {number}: write a transition as “From -> To”.")
            source, target = line.split("->", 1)
            transitions.append({"from": source.strip(), "to": target.strip()})
        return transitions


class SolutionInterestForm(NameForm):
    roles_template = forms.ModelChoiceField(queryset=RolesTemplate.objects.none(), help_text="Only live templates.")
    stages_model = forms.ModelChoiceField(queryset=StagesModel.objects.none(), required=False, help_text="Only published models.")

    def __init__(self, *args, sandbox, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["roles_template"].queryset = RolesTemplate.objects.for_sandbox(sandbox).filter(status="live")
        self.fields["stages_model"].queryset = StagesModel.objects.for_sandbox(sandbox).filter(status="published")


class BuildForm(forms.Form):
    audience = forms.ModelChoiceField(queryset=None, label="Account audience")

    def __init__(self, *args, sandbox, **kwargs):
        from cdp.models import Audience

        super().__init__(*args, **kwargs)
        self.fields["audience"].queryset = Audience.objects.for_sandbox(sandbox).filter(kind="account")


class StageForm(forms.Form):
    stage = forms.CharField()


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=BuyingGroupStatus.choices)


class MemberForm(forms.Form):
    person = forms.IntegerField(label="Person id")
    role = forms.IntegerField(label="Role")

