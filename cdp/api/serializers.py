"""Serializers for tenancy and access: organizations, sandboxes, members and their roles, API tokens.

Read serializers describe objects; request serializers (…CreateSerializer, …UpdateSerializer) only
validate input, which the viewsets hand to the services in ``cdp.services``. Fields that point at other
objects accept only objects the caller can see, so an id from another organization reads as unknown.
"""

from django.contrib.auth import get_user_model
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema_field
from rest_framework import serializers

from cdp.choices import Role, SandboxType
from cdp.models import ApiToken, Membership, Organization, Sandbox
from cdp.services import accessible_sandboxes, fellow_members, member_organizations

# --- Errors (for the schema; the body itself is built by cdp.api.errors) ----------------------


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="validation_error, rule_violation, permission_denied, not_found, …")
    message = serializers.CharField(help_text="What went wrong, in a sentence a person can act on.")
    fields = serializers.DictField(
        child=serializers.JSONField(), required=False, help_text="Problems per input field (validation errors)."
    )
    rule = serializers.CharField(required=False, help_text="The business rule that refused the request.")


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


# The error answers sandbox-scoped operations document: one body (ErrorSerializer) everywhere.
ERROR_400 = OpenApiResponse(ErrorSerializer, description="Invalid input, or a business rule refused it (see `rule`).")
ERROR_403 = OpenApiResponse(ErrorSerializer, description="Your role in this sandbox does not allow this.")
ERROR_404 = OpenApiResponse(ErrorSerializer, description="No such object in this sandbox.")


# --- Related fields scoped to the caller ------------------------------------------------------


@extend_schema_field(OpenApiTypes.INT)
class _ScopedPrimaryKeyField(serializers.PrimaryKeyRelatedField):
    default_error_messages = {"does_not_exist": "No {what} with id {pk_value} that you can see."}
    what = "object"

    def visible(self, user):
        raise NotImplementedError

    def get_queryset(self):
        request = self.context.get("request")
        if request is None:
            return self.queryset_model.objects.none()
        return self.visible(request.user)

    def fail(self, key, **kwargs):
        return super().fail(key, what=self.what, **kwargs)


class VisibleOrganizationField(_ScopedPrimaryKeyField):
    queryset_model = Organization
    what = "organization"

    def visible(self, user):
        return member_organizations(user)


class VisibleSandboxField(_ScopedPrimaryKeyField):
    queryset_model = Sandbox
    what = "sandbox"

    def visible(self, user):
        return accessible_sandboxes(user)


class FellowUserField(_ScopedPrimaryKeyField):
    queryset_model = get_user_model()
    what = "user"

    def visible(self, user):
        return fellow_members(user)


# --- Users ----------------------------------------------------------------------------------


class UserSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = get_user_model()
        fields = ["id", "username", "email"]
        read_only_fields = fields


# --- Organizations --------------------------------------------------------------------------


class OrganizationSerializer(serializers.ModelSerializer):
    sandbox_count = serializers.IntegerField(read_only=True)
    member_count = serializers.IntegerField(read_only=True)
    is_admin = serializers.BooleanField(
        source="caller_is_admin", read_only=True, help_text="Whether you administer this organization."
    )

    class Meta:
        model = Organization
        fields = ["id", "name", "slug", "created_at", "sandbox_count", "member_count", "is_admin"]
        read_only_fields = fields


class OrganizationCreateSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organization
        fields = ["name", "slug"]


class OrganizationUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)


# --- Sandboxes ------------------------------------------------------------------------------


class SandboxSerializer(serializers.ModelSerializer):
    organization_name = serializers.CharField(source="organization.name", read_only=True)
    role = serializers.SerializerMethodField(help_text="Your role in this sandbox.")

    class Meta:
        model = Sandbox
        fields = [
            "id",
            "organization",
            "organization_name",
            "name",
            "title",
            "type",
            "created_at",
            "last_reset_at",
            "role",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=Role.choices))
    def get_role(self, sandbox):
        roles = self.context.get("sandbox_roles") or {}
        role = roles.get(sandbox.pk)
        return role.value if role else None


class SandboxCreateSerializer(serializers.Serializer):
    organization = VisibleOrganizationField(help_text="The organization (id) that will own the sandbox.")
    name = serializers.CharField(
        max_length=63, help_text="Short identifier, unique in the organization, e.g. dev-emea."
    )
    title = serializers.CharField(max_length=200)
    type = serializers.ChoiceField(choices=SandboxType.choices, default=SandboxType.DEVELOPMENT)


class SandboxUpdateSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200)


class SandboxResetSerializer(serializers.Serializer):
    confirm = serializers.CharField(
        allow_blank=True, help_text="The sandbox's name, typed exactly, to confirm that all its data goes."
    )


class SandboxResetResultSerializer(serializers.Serializer):
    sandbox = serializers.IntegerField()
    last_reset_at = serializers.DateTimeField()
    deleted = serializers.DictField(child=serializers.IntegerField(), help_text="Rows deleted per model label.")


# --- Members and roles ----------------------------------------------------------------------


class RoleAssignmentSerializer(serializers.Serializer):
    sandbox = VisibleSandboxField(help_text="A sandbox (id) of the membership's organization.")
    sandbox_name = serializers.CharField(source="sandbox.name", read_only=True)
    role = serializers.ChoiceField(choices=Role.choices)


class MembershipSerializer(serializers.ModelSerializer):
    organization_name = serializers.CharField(source="organization.name", read_only=True)
    user = UserSummarySerializer(read_only=True)
    roles = RoleAssignmentSerializer(source="sandbox_roles", many=True, read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "organization", "organization_name", "user", "is_admin", "roles", "created_at"]
        read_only_fields = fields


class MembershipCreateSerializer(serializers.Serializer):
    organization = VisibleOrganizationField(help_text="The organization (id) to add the user to.")
    username = serializers.CharField(max_length=150, help_text="An existing user, or the new user's name.")
    email = serializers.EmailField(required=False, allow_blank=True, default="", help_text="For a new user.")
    password = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        write_only=True,
        style={"input_type": "password"},
        help_text="Give one to create a new user; leave out to add an existing user.",
    )
    is_admin = serializers.BooleanField(default=False, help_text="Make the user an organization admin.")
    roles = RoleAssignmentSerializer(many=True, required=False, default=list)


class MembershipUpdateSerializer(serializers.Serializer):
    is_admin = serializers.BooleanField(required=False)
    roles = RoleAssignmentSerializer(
        many=True, required=False, help_text="Replaces all the member's sandbox roles when given."
    )


# --- API tokens -----------------------------------------------------------------------------


class ApiTokenSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "user",
            "username",
            "key_prefix",
            "created_by",
            "created_at",
            "last_used_at",
            "revoked_at",
            "is_active",
        ]
        read_only_fields = fields


class ApiTokenIssuedSerializer(ApiTokenSerializer):
    key = serializers.SerializerMethodField(help_text="The secret key. Shown only in this response; store it now.")

    class Meta(ApiTokenSerializer.Meta):
        fields = ApiTokenSerializer.Meta.fields + ["key"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.STR)
    def get_key(self, token):
        return self.context["key"]


class ApiTokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, help_text="What the token is for, e.g. 'CRM sync job'.")
    user = FellowUserField(required=False, help_text="Whose token (id); yourself when left out.")


# --- Who am I -------------------------------------------------------------------------------


class MyOrganizationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.CharField()
    is_admin = serializers.BooleanField()


class MySandboxSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    organization = serializers.IntegerField(source="organization_id")
    name = serializers.CharField()
    title = serializers.CharField()
    type = serializers.ChoiceField(choices=SandboxType.choices)
    role = serializers.ChoiceField(choices=Role.choices)


class MeUserSerializer(UserSummarySerializer):
    class Meta(UserSummarySerializer.Meta):
        fields = ["id", "username", "email", "is_superuser"]
        read_only_fields = fields


class MeSerializer(serializers.Serializer):
    user = MeUserSerializer()
    organizations = MyOrganizationSerializer(many=True)
    sandboxes = MySandboxSerializer(many=True)
