"""Forms of the admin pages. They validate input; the services in ``cdp.services`` decide whether the
change is allowed and make it (``apply_service_errors`` puts a service's refusal on the right field)."""

from django import forms
from django.core.exceptions import ValidationError

from cdp.choices import Role, SandboxType
from cdp.exceptions import RuleViolation
from cdp.models import Organization, Sandbox
from cdp.models.tenancy import slug_validator

NO_ROLE = ""


def apply_service_errors(form: forms.Form, exc: Exception) -> None:
    """Show a service's ValidationError or RuleViolation on the form, on the named field when the form
    has it, else at the top of the form."""
    if isinstance(exc, RuleViolation):
        field = exc.field if exc.field in form.fields else None
        form.add_error(field, exc.message)
        return
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
        return
    form.add_error(None, exc)


class OrganizationCreateForm(forms.ModelForm):
    class Meta:
        model = Organization
        fields = ["name", "slug"]
        help_texts = {"slug": "Short identifier used in URLs and exports, e.g. acme-corp."}


class OrganizationRenameForm(forms.Form):
    name = forms.CharField(max_length=200)


class SandboxCreateForm(forms.Form):
    name = forms.CharField(
        max_length=63,
        validators=[slug_validator],
        help_text="Short identifier, unique in the organization, e.g. dev-emea.",
    )
    title = forms.CharField(max_length=200, help_text="What people see in the sandbox switcher.")
    type = forms.ChoiceField(
        choices=SandboxType.choices,
        initial=SandboxType.DEVELOPMENT,
        help_text="Production sandboxes cannot be deleted, only reset.",
    )


class SandboxTitleForm(forms.Form):
    title = forms.CharField(max_length=200)


class SandboxResetForm(forms.Form):
    confirm = forms.CharField(
        label="Sandbox name",
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    def __init__(self, *args, sandbox: Sandbox, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["confirm"].help_text = f"Type {sandbox.name} to confirm."


class _RolesFormMixin:
    """One 'role' select per sandbox of the organization (no access, viewer, marketer, admin)."""

    role_field_prefix = "role_"

    def add_role_fields(self, sandboxes, current: dict[int, str]):
        self.sandboxes = list(sandboxes)
        for sandbox in self.sandboxes:
            self.fields[f"{self.role_field_prefix}{sandbox.pk}"] = forms.ChoiceField(
                label=f"{sandbox.title} ({sandbox.name})",
                choices=[(NO_ROLE, "No access"), *Role.choices],
                required=False,
                initial=current.get(sandbox.pk, NO_ROLE),
            )

    def main_fields(self):
        return [field for field in self.visible_fields() if not field.name.startswith(self.role_field_prefix)]

    def role_fields(self):
        return [self[f"{self.role_field_prefix}{sandbox.pk}"] for sandbox in self.sandboxes]

    def chosen_roles(self) -> list[tuple[Sandbox, str]]:
        roles = []
        for sandbox in self.sandboxes:
            role = self.cleaned_data.get(f"{self.role_field_prefix}{sandbox.pk}")
            if role:
                roles.append((sandbox, role))
        return roles


class MemberAddForm(_RolesFormMixin, forms.Form):
    username = forms.CharField(max_length=150, help_text="An existing user, or the name of a new one.")
    email = forms.EmailField(required=False, help_text="Only for a new user.")
    password = forms.CharField(
        required=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Give a password to create a new user; leave empty to add an existing user.",
    )
    is_admin = forms.BooleanField(
        required=False,
        label="Organization admin",
        help_text="Admins are admins of every sandbox and manage sandboxes, members and tokens.",
    )

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_role_fields(organization.sandboxes.all(), {})


class MemberEditForm(_RolesFormMixin, forms.Form):
    is_admin = forms.BooleanField(
        required=False,
        label="Organization admin",
        help_text="Admins are admins of every sandbox, whatever the roles below say.",
    )

    def __init__(self, *args, membership, **kwargs):
        kwargs.setdefault("initial", {"is_admin": membership.is_admin})
        super().__init__(*args, **kwargs)
        current = dict(membership.sandbox_roles.values_list("sandbox_id", "role"))
        self.add_role_fields(membership.organization.sandboxes.all(), current)


class TokenIssueForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. 'CRM sync job'.")
    user = forms.ModelChoiceField(
        queryset=None, empty_label=None, help_text="The token acts as this user, with their roles."
    )

    def __init__(self, *args, owners, me, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = owners.order_by("username")
        self.fields["user"].initial = me.pk
        self.fields["user"].label_from_instance = lambda u: f"{u.username} (you)" if u.pk == me.pk else u.username
        if not owners.exclude(pk=me.pk).exists():
            # Only their own tokens to manage: no choice to offer.
            self.fields["user"].widget = forms.HiddenInput()
