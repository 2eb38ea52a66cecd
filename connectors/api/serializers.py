"""Serializers for Marketo instances, Salesforce orgs and pairings.

Secrets are write-only: they go in on create (and on update, to replace them) and never come out.
Validation beyond field formats is the model's (``clean()``), so the API and the pages agree.
Fields naming other objects accept only objects in the caller's organizations; any other id reads
as unknown.
"""

import copy

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cdp.models import Organization
from cdp.services import member_organizations
from connectors.choices import SalesforceAuthFlow
from connectors.models import MarketoInstance, Pairing, SalesforceOrg


@extend_schema_field(OpenApiTypes.INT)
class _MemberScopedField(serializers.PrimaryKeyRelatedField):
    """A primary key among the objects of organizations the caller belongs to."""

    default_error_messages = {"does_not_exist": "No {what} with id {pk_value} in your organizations."}
    model = None
    what = "object"
    organization_path = "organization"

    def get_queryset(self):
        request = self.context.get("request")
        if request is None:
            return self.model.objects.none()
        organizations = member_organizations(request.user)
        if self.model is Organization:
            return organizations
        return self.model.objects.filter(**{f"{self.organization_path}__in": organizations})

    def fail(self, key, **kwargs):
        return super().fail(key, what=self.what, **kwargs)


class MemberOrganizationField(_MemberScopedField):
    model = Organization
    what = "organization"


class MemberMarketoInstanceField(_MemberScopedField):
    model = MarketoInstance
    what = "Marketo instance"


class MemberSalesforceOrgField(_MemberScopedField):
    model = SalesforceOrg
    what = "Salesforce org"


def _secret_field(**kwargs):
    return serializers.CharField(
        write_only=True, trim_whitespace=True, style={"input_type": "password"}, max_length=10000, **kwargs
    )


class _InstanceSerializer(serializers.ModelSerializer):
    """Shared by both instance kinds: organization fixed after creation, model ``clean()`` validation."""

    organization = MemberOrganizationField(help_text="Organization id; it can't change after creation.")

    def get_fields(self):
        fields = super().get_fields()
        if self.instance is not None:
            fields["organization"].read_only = True
        return fields

    def validate(self, attrs):
        candidate = copy.copy(self.instance) if self.instance is not None else self.Meta.model()
        for name, value in attrs.items():
            setattr(candidate, name, value)
        # Stored secrets that stay as they are need no re-validation (nor decrypting).
        unchanged_secrets = [name for name in self.Meta.secret_fields if name not in attrs]
        try:
            # Constraints are checked by clean() with errors attached to the field concerned.
            candidate.full_clean(exclude=unchanged_secrets, validate_constraints=False)
        except DjangoValidationError as error:
            raise serializers.ValidationError(
                {("non_field_errors" if k == NON_FIELD_ERRORS else k): v for k, v in error.message_dict.items()}
            ) from None
        # Keep what clean() normalised or derived (upper-case Munchkin ID, default URLs…).
        for name in self.Meta.normalised_fields:
            attrs[name] = getattr(candidate, name)
        return attrs


class MarketoInstanceSerializer(_InstanceSerializer):
    """A Marketo Engage instance registered in an organization. The client secret is write-only."""

    client_secret = _secret_field(help_text="Write-only: stored encrypted, never returned. Omit to keep it.")

    class Meta:
        model = MarketoInstance
        fields = [
            "id",
            "organization",
            "name",
            "munchkin_id",
            "client_id",
            "client_secret",
            "rest_base_url",
            "identity_base_url",
            "created_at",
        ]
        normalised_fields = ["munchkin_id", "rest_base_url", "identity_base_url"]
        secret_fields = ["client_secret"]
        validators = []  # uniqueness is the model's clean(), with the error on munchkin_id
        extra_kwargs = {
            "munchkin_id": {"help_text": "Like 123-ABC-456; stored in upper case."},
            "rest_base_url": {"help_text": "https URL; defaults to https://<munchkin>.mktorest.com/rest."},
            "identity_base_url": {"help_text": "https URL; defaults to https://<munchkin>.mktorest.com/identity."},
        }

    def get_fields(self):
        fields = super().get_fields()
        # Required to register an instance; optional when editing one (omitted = unchanged).
        fields["client_secret"].required = self.instance is None
        return fields


class SalesforceOrgSerializer(_InstanceSerializer):
    """A Salesforce org registered in an organization. Consumer secret and private key are write-only."""

    client_secret = _secret_field(
        required=False, allow_blank=True, help_text="Write-only consumer secret (client credentials flow)."
    )
    private_key = _secret_field(
        required=False, allow_blank=True, help_text="Write-only PEM private key (JWT bearer flow)."
    )
    auth_flow = serializers.ChoiceField(choices=SalesforceAuthFlow.choices, default=SalesforceAuthFlow.CLIENT_CREDENTIALS)

    class Meta:
        model = SalesforceOrg
        fields = [
            "id",
            "organization",
            "name",
            "instance_url",
            "org_id",
            "auth_flow",
            "client_id",
            "client_secret",
            "username",
            "private_key",
            "created_at",
        ]
        normalised_fields = ["instance_url"]
        secret_fields = ["client_secret", "private_key"]
        validators = []  # uniqueness is the model's clean(), with the error on instance_url

    def validate(self, attrs):
        # On update, an empty secret means "keep the stored one", as in the edit page.
        if self.instance is not None:
            for name in ("client_secret", "private_key"):
                if attrs.get(name) == "":
                    attrs.pop(name)
        return super().validate(attrs)


class PairingSerializer(serializers.ModelSerializer):
    """An instance paired with the sandbox as a source, a destination or its journey subscription."""

    marketo_instance = MemberMarketoInstanceField(
        required=False, allow_null=True, help_text="A Marketo instance id (or give salesforce_org)."
    )
    salesforce_org = MemberSalesforceOrgField(
        required=False, allow_null=True, help_text="A Salesforce org id (or give marketo_instance)."
    )
    instance_name = serializers.SerializerMethodField()
    munchkin_id = serializers.SerializerMethodField(help_text="The Marketo instance's Munchkin ID, if any.")
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Pairing
        fields = [
            "id",
            "sandbox",
            "kind",
            "marketo_instance",
            "salesforce_org",
            "instance_name",
            "munchkin_id",
            "created_by",
            "created_at",
        ]
        read_only_fields = ["sandbox", "created_at"]
        validators = []  # the pairing rules (connectors.services.pairings) decide, duplicates included

    def get_instance_name(self, pairing) -> str:
        return pairing.instance.name

    def get_munchkin_id(self, pairing) -> str | None:
        return pairing.marketo_instance.munchkin_id if pairing.marketo_instance_id else None
