"""Forms of the destination and dataflow pages. They shape input; the rules (config per kind,
pairings, lead creation, mapping) are checked by ``connectors.services.activation``, whose refusals the
views put back on the form under the field they name."""

import json

from django import forms

from cdp.models import Audience
from connectors.models import DataflowMode, Destination, DestinationKind, MarketoInstance


class DestinationForm(forms.Form):
    name = forms.CharField(max_length=200)

    def __init__(self, *args, kind: str, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind = kind
        if kind == DestinationKind.MARKETO_STATIC_LIST:
            self.fields["marketo_instance"] = forms.ModelChoiceField(
                MarketoInstance.objects.filter(organization=organization).defer("client_secret"),
                help_text="Paired with this sandbox as a destination when you save (pairing rules apply).",
            )
            self.fields["list_id"] = forms.IntegerField(
                label="Static list id", min_value=1, help_text="The number in the static list's URL in Marketo."
            )
            self.fields["allow_lead_creation"] = forms.BooleanField(
                required=False,
                label="Create leads for people Marketo doesn't know",
                help_text="Off by default: unmatched people are reported on each run instead.",
            )
        elif kind == DestinationKind.WEBHOOK:
            self.fields["url"] = forms.CharField(label="URL", max_length=500, help_text="https:// endpoint that receives the batches.")
            self.fields["secret"] = forms.CharField(
                label="Signing secret",
                min_length=16,
                widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
                help_text="Signs each batch (X-Quorum-Signature: sha256=HMAC). Stored encrypted; never shown again.",
            )
            self.fields["batch_size"] = forms.IntegerField(initial=100, min_value=1, max_value=1000)
            self.fields["max_attempts"] = forms.IntegerField(
                initial=5, min_value=1, max_value=10, help_text="Tries before a batch goes to the dead letters."
            )
        else:
            self.fields["directory"] = forms.CharField(
                max_length=300, help_text="Folder inside the server's export directory, e.g. marketing/weekly."
            )

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        config_keys = {"list_id", "url", "batch_size", "max_attempts", "directory"}
        return {
            "name": data["name"],
            "kind": self.kind,
            "config": {k: v for k, v in data.items() if k in config_keys},
            "marketo_instance": data.get("marketo_instance"),
            "allow_lead_creation": data.get("allow_lead_creation", False),
            "secret": data.get("secret", ""),
        }


class MappingField(forms.CharField):
    """The mapping as JSON (the wizard's rows write it); shown as "source → target" lines without JS."""

    widget = forms.HiddenInput

    def to_python(self, value):
        if value in (None, ""):
            return None
        try:
            return json.loads(value)
        except ValueError:
            raise forms.ValidationError("The field mapping can't be read; map each profile field to a destination field.") from None

    def prepare_value(self, value):
        return value if isinstance(value, str) else json.dumps(value or [])


class DataflowForm(forms.Form):
    audiences = forms.ModelMultipleChoiceField(Audience.objects.none(), widget=forms.CheckboxSelectMultiple)
    destination = forms.ModelChoiceField(Destination.objects.none(), widget=forms.RadioSelect, empty_label=None)
    mapping = MappingField(required=False)
    mode = forms.ChoiceField(choices=DataflowMode.choices, initial=DataflowMode.STREAMING, widget=forms.RadioSelect)
    batch_time = forms.TimeField(
        required=False, initial="02:00", widget=forms.TimeInput(attrs={"type": "time"}), help_text="UTC, for batch mode."
    )
    name = forms.CharField(max_length=200)

    def __init__(self, *args, sandbox, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["audiences"].queryset = Audience.objects.for_sandbox(sandbox).order_by("name")
        self.fields["destination"].queryset = Destination.objects.for_sandbox(sandbox).filter(enabled=True)
