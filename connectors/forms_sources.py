"""Forms of the Sources pages. Rules (pairing, duplicates) are the service's; these only read input."""

from django import forms

from connectors.models import MarketoInstance, SalesforceOrg, SourceConnection

SETTINGS_FIELDS = ["name", "enabled", "sync_interval_minutes", "backfill_since"]


class SourceSettingsForm(forms.ModelForm):
    """Name, schedule and backfill start of a source connection."""

    backfill_since = forms.DateTimeField(
        label="Backfill from",
        required=False,
        widget=forms.DateTimeInput(attrs={"placeholder": "2026-01-01 00:00"}),
        help_text="How far back the historical backfill reads (UTC, e.g. 2026-01-01 00:00); blank for the last 90 days.",
    )

    class Meta:
        model = SourceConnection
        fields = SETTINGS_FIELDS

    def clean_sync_interval_minutes(self):
        value = self.cleaned_data["sync_interval_minutes"]
        if value < 1:
            raise forms.ValidationError("Sync at most once a minute: give 1 or more.")
        return value


class SourceConnectionForm(SourceSettingsForm):
    """A new source: which of the organization's instances, plus the settings."""

    instance = forms.ChoiceField(
        label="Instance",
        help_text="It is paired with this sandbox as a source if it isn't yet.",
    )

    class Meta(SourceSettingsForm.Meta):
        fields = ["instance", *SETTINGS_FIELDS]

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.marketo_instances = {
            str(i.pk): i for i in MarketoInstance.objects.filter(organization=organization).defer("client_secret")
        }
        self.salesforce_orgs = {
            str(o.pk): o for o in SalesforceOrg.objects.filter(organization=organization).defer("client_secret", "private_key")
        }
        choices = [("", "Choose an instance…")]
        if self.marketo_instances:
            choices.append(("Marketo Engage", [(f"marketo:{pk}", str(i)) for pk, i in self.marketo_instances.items()]))
        if self.salesforce_orgs:
            choices.append(("Salesforce", [(f"salesforce:{pk}", o.name) for pk, o in self.salesforce_orgs.items()]))
        self.fields["instance"].choices = choices
        self.order_fields(["instance", *SETTINGS_FIELDS])

    @property
    def has_instances(self) -> bool:
        return bool(self.marketo_instances or self.salesforce_orgs)

    def clean(self):
        cleaned = super().clean()
        system, _, pk = (cleaned.get("instance") or "").partition(":")
        cleaned["marketo_instance"] = self.marketo_instances.get(pk) if system == "marketo" else None
        cleaned["salesforce_org"] = self.salesforce_orgs.get(pk) if system == "salesforce" else None
        if cleaned.get("instance") and not (cleaned["marketo_instance"] or cleaned["salesforce_org"]):
            self.add_error("instance", "Choose one of this organization's instances.")
        return cleaned

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "marketo_instance": data["marketo_instance"],
            "salesforce_org": data["salesforce_org"],
            "enabled": data["enabled"],
            "sync_interval_minutes": data["sync_interval_minutes"],
            "backfill_since": data.get("backfill_since"),
        }
