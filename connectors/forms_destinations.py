"""Forms of the destination and dataflow pages. They shape input; the rules (config per kind,
pairings, lead creation, mapping) are checked by ``connectors.services.activation``, whose refusals the
views put back on the form under the field they name."""

import json

from django import forms

from cdp.models import Audience
from connectors.models import Dataflow, DataflowMode, Destination, DestinationKind, MarketoInstance


class DestinationForm(forms.Form):
    """New (``destination`` None) or existing destination of ``kind``. The secret is never rendered
    back; left empty when editing, the stored one stays."""

    name = forms.CharField(max_length=200)

    def __init__(self, *args, kind: str, organization, destination: Destination | None = None, **kwargs):
        if destination is not None:
            kwargs.setdefault("initial", _destination_initial(destination))
        super().__init__(*args, **kwargs)
        self.kind = kind
        self.destination = destination
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
                required=destination is None,
                widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
                help_text="Signs each batch (X-Quorum-Signature: sha256=HMAC). Stored encrypted; never shown again."
                + (" Leave empty to keep the stored secret." if destination is not None else ""),
            )
            self.fields["batch_size"] = forms.IntegerField(initial=100, min_value=1, max_value=1000)
            self.fields["max_attempts"] = forms.IntegerField(
                initial=5, min_value=1, max_value=10, help_text="Tries before a batch goes to the dead letters."
            )
        else:
            self.fields["directory"] = forms.CharField(
                max_length=300, help_text="Folder inside the server's export directory, e.g. marketing/weekly."
            )
        if destination is not None:
            self.fields["enabled"] = forms.BooleanField(
                required=False, help_text="A disabled destination receives nothing; its dataflows wait."
            )

    def service_arguments(self) -> dict:
        """Keyword arguments of ``create_destination`` (add ``kind``) and ``update_destination``."""
        data = self.cleaned_data
        config = {k: v for k, v in data.items() if k in _CONFIG_FIELDS}
        arguments = {
            "name": data["name"],
            # Settings the page doesn't show (set through the API) are kept.
            "config": {**self.destination.config, **config} if self.destination else config,
            "marketo_instance": data.get("marketo_instance"),
            "allow_lead_creation": data.get("allow_lead_creation", False),
            "secret": data.get("secret", ""),
        }
        if "enabled" in self.fields:
            arguments["enabled"] = data["enabled"]
        return arguments


_CONFIG_FIELDS = {"list_id", "url", "batch_size", "max_attempts", "directory"}


def _destination_initial(destination: Destination) -> dict:
    pairing = destination.pairing
    return {
        **{k: v for k, v in destination.config.items() if k in _CONFIG_FIELDS},
        "name": destination.name,
        "marketo_instance": pairing.marketo_instance_id if pairing else None,
        "allow_lead_creation": destination.allow_lead_creation,
        "enabled": destination.enabled,
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
    """New dataflow, or an existing one (``dataflow``): its destination then stays as it is."""

    audiences = forms.ModelMultipleChoiceField(Audience.objects.none(), widget=forms.CheckboxSelectMultiple)
    destination = forms.ModelChoiceField(Destination.objects.none(), widget=forms.RadioSelect, empty_label=None)
    mapping = MappingField(required=False)
    mode = forms.ChoiceField(choices=DataflowMode.choices, initial=DataflowMode.STREAMING, widget=forms.RadioSelect)
    batch_time = forms.TimeField(
        required=False, initial="02:00", widget=forms.TimeInput(attrs={"type": "time"}), help_text="UTC, for batch mode."
    )
    name = forms.CharField(max_length=200)

    def __init__(self, *args, sandbox, dataflow: Dataflow | None = None, **kwargs):
        if dataflow is not None:
            kwargs.setdefault("initial", {
                "audiences": list(dataflow.audiences.all()), "destination": dataflow.destination,
                "mapping": dataflow.mapping, "mode": dataflow.mode, "batch_time": dataflow.batch_time, "name": dataflow.name,
            })  # fmt: skip
        super().__init__(*args, **kwargs)
        self.fields["audiences"].queryset = Audience.objects.for_sandbox(sandbox).order_by("name")
        destinations = Destination.objects.for_sandbox(sandbox)
        if dataflow is None:
            self.fields["destination"].queryset = destinations.filter(enabled=True)
        else:
            self.fields["destination"].queryset = destinations.filter(pk=dataflow.destination_id)
            self.fields["destination"].disabled = True
