"""Forms for the "Instances & pairings" pages.

Secrets are plain (non-model) password fields that never render a value: on an edit form, leaving
them blank keeps the stored secret. Everything else is validated by the models' ``clean()`` (the
same code the API runs) and, for pairings, by ``connectors.services.pairings``.
"""

from django import forms

from connectors.choices import PairingKind
from connectors.models import MarketoInstance, SalesforceOrg

KEEP_SECRET_HELP = "Leave blank to keep the stored one. Stored encrypted; never shown again."


class SecretTextarea(forms.Textarea):
    """A textarea that never renders a value, not even the one just submitted (like PasswordInput)."""

    def format_value(self, value):
        return None


def _https_url_field(label, help_text, required=False):
    return forms.URLField(label=label, required=required, assume_scheme="https", help_text=help_text, max_length=300)


class _InstanceForm(forms.ModelForm):
    """Base for instance forms: bound to an organization; secret fields write-only."""

    secret_fields: tuple[str, ...] = ()
    required_secrets: tuple[str, ...] = ()

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        # Set before validation: the model's clean() checks uniqueness within the organization.
        self.instance.organization = organization
        editing = self.instance.pk is not None
        for name in self.secret_fields:
            field = self.fields[name]
            field.required = name in self.required_secrets and not editing
            if editing:
                field.help_text = KEEP_SECRET_HELP

    def clean(self):
        cleaned = super().clean()
        for name in self.secret_fields:
            value = cleaned.get(name)
            if value:
                setattr(self.instance, name, value)
        return cleaned


class MarketoInstanceForm(_InstanceForm):
    client_secret = forms.CharField(
        label="Client secret",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="From the LaunchPoint API service. Stored encrypted; never shown again.",
        max_length=10000,
    )
    rest_base_url = _https_url_field(
        "REST base URL", "Leave blank for https://<munchkin-id>.mktorest.com/rest (Admin → Web Services)."
    )
    identity_base_url = _https_url_field(
        "Identity base URL", "Leave blank for https://<munchkin-id>.mktorest.com/identity."
    )

    secret_fields = ("client_secret",)
    required_secrets = ("client_secret",)
    field_order = ["name", "munchkin_id", "client_id", "client_secret", "rest_base_url", "identity_base_url"]

    class Meta:
        model = MarketoInstance
        fields = ["name", "munchkin_id", "client_id", "rest_base_url", "identity_base_url"]
        widgets = {"munchkin_id": forms.TextInput(attrs={"placeholder": "123-ABC-456", "autocomplete": "off"})}


class SalesforceOrgForm(_InstanceForm):
    instance_url = _https_url_field(
        "Instance URL", "Your My Domain URL, e.g. https://acme.my.salesforce.com.", required=True
    )
    client_secret = forms.CharField(
        label="Consumer secret",
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Needed for client credentials. Stored encrypted; never shown again.",
        max_length=10000,
    )
    private_key = forms.CharField(
        label="Private key",
        required=False,
        widget=SecretTextarea(attrs={"rows": 4, "placeholder": "-----BEGIN PRIVATE KEY-----", "autocomplete": "off"}),
        help_text="PEM private key of the connected app's certificate, for JWT bearer. Stored encrypted.",
        max_length=10000,
    )

    secret_fields = ("client_secret", "private_key")
    field_order = ["name", "instance_url", "org_id", "auth_flow", "client_id", "client_secret", "username", "private_key"]

    class Meta:
        model = SalesforceOrg
        fields = ["name", "instance_url", "org_id", "auth_flow", "client_id", "username"]


class PairingForm(forms.Form):
    """Kind + one instance of the sandbox's organization, offered as "marketo:<id>" / "salesforce:<id>"."""

    kind = forms.ChoiceField(choices=PairingKind.choices)
    instance = forms.ChoiceField(label="Instance")

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.marketo_instances = {
            str(i.pk): i for i in MarketoInstance.objects.filter(organization=organization).defer("client_secret")
        }
        self.salesforce_orgs = {
            str(o.pk): o
            for o in SalesforceOrg.objects.filter(organization=organization).defer("client_secret", "private_key")
        }
        choices = [("", "Choose an instance…")]
        if self.marketo_instances:
            choices.append(
                ("Marketo Engage", [(f"marketo:{pk}", str(i)) for pk, i in self.marketo_instances.items()])
            )
        if self.salesforce_orgs:
            choices.append(("Salesforce", [(f"salesforce:{pk}", o.name) for pk, o in self.salesforce_orgs.items()]))
        self.fields["instance"].choices = choices

    @property
    def has_instances(self) -> bool:
        return bool(self.marketo_instances or self.salesforce_orgs)

    def clean(self):
        cleaned = super().clean()
        system, _, pk = (cleaned.get("instance") or "").partition(":")
        cleaned["marketo_instance"] = self.marketo_instances.get(pk) if system == "marketo" else None
        cleaned["salesforce_org"] = self.salesforce_orgs.get(pk) if system == "salesforce" else None
        return cleaned
