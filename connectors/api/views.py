"""Marketo instances and Salesforce orgs (organization level: /api/marketo-instances/,
/api/salesforce-orgs/) and pairings (sandbox level: /api/sandboxes/{sandbox_id}/pairings/).

Members of an organization read its instances; organization admins register, edit and delete them.
Pairings are read by any role in the sandbox and created or removed by its admins, always through
``connectors.services.pairings``, whose refusals answer 400 with code ``rule_violation`` and the rule id.
"""

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import permissions, viewsets

from cdp.api.base import SandboxScopedViewSet
from cdp.api.serializers import ErrorSerializer
from cdp.choices import Role
from cdp.services import (
    administered_organizations,
    is_organization_admin,
    member_organizations,
    require_organization_admin,
)
from connectors.filtersets import MarketoInstanceFilterSet, PairingFilterSet, SalesforceOrgFilterSet
from connectors.models import MarketoInstance, Pairing, SalesforceOrg
from connectors.services import create_pairing, delete_instance, delete_pairing

from . import serializers as s

ERROR_400 = OpenApiResponse(ErrorSerializer, description="Invalid input, or a pairing rule refused it (rule_violation).")
ERROR_403 = OpenApiResponse(ErrorSerializer, description="Your role does not allow this.")
ERROR_404 = OpenApiResponse(ErrorSerializer, description="No such object among those you can see.")


class ManagesOrganizationInstances(permissions.BasePermission):
    """Members read; organization admins write (and must administer the instance's organization)."""

    message = "Managing instances needs an admin of the organization."

    def has_permission(self, request, view):
        if request.method in permissions.SAFE_METHODS:
            return True
        # Refuse before reading the payload when the caller administers no organization at all.
        return administered_organizations(request.user).exists()

    def has_object_permission(self, request, view, obj):
        return request.method in permissions.SAFE_METHODS or is_organization_admin(request.user, obj.organization)


class _OrganizationInstanceViewSet(viewsets.ModelViewSet):
    permission_classes = [permissions.IsAuthenticated, ManagesOrganizationInstances]
    http_method_names = ["get", "post", "patch", "put", "delete", "head", "options"]
    ordering_fields = ["name", "created_at"]
    model = None
    secret_fields: tuple[str, ...] = ()

    def get_queryset(self):
        return (
            self.model.objects.filter(organization__in=member_organizations(self.request.user))
            .select_related("organization")
            # Secrets are never answered, so never decrypted for a read.
            .defer(*self.secret_fields)
        )

    def perform_create(self, serializer):
        require_organization_admin(self.request.user, serializer.validated_data["organization"])
        serializer.save()

    def perform_destroy(self, instance):
        delete_instance(instance)  # a refusal is a RuleViolation: the API's error handler answers it


@extend_schema_view(
    list=extend_schema(summary="Marketo instances of your organizations"),
    retrieve=extend_schema(summary="One Marketo instance", responses={200: s.MarketoInstanceSerializer, 404: ERROR_404}),
    create=extend_schema(
        summary="Register a Marketo instance (organization admins)",
        description="The client secret is stored encrypted and is never returned. REST and identity base URLs "
        "default to the ones derived from the Munchkin ID.",
        responses={201: s.MarketoInstanceSerializer, 400: ERROR_400, 403: ERROR_403},
    ),
    update=extend_schema(
        summary="Replace a Marketo instance's settings (organization admins)",
        description="Omit client_secret to keep the stored one. The Munchkin ID of a paired instance can't change.",
        responses={200: s.MarketoInstanceSerializer, 400: ERROR_400, 403: ERROR_403, 404: ERROR_404},
    ),
    partial_update=extend_schema(
        summary="Edit a Marketo instance (organization admins)",
        description="Omit client_secret to keep the stored one. The Munchkin ID of a paired instance can't change.",
        responses={200: s.MarketoInstanceSerializer, 400: ERROR_400, 403: ERROR_403, 404: ERROR_404},
    ),
    destroy=extend_schema(
        summary="Delete a Marketo instance (organization admins)",
        description="Refused while a sandbox is paired with it (rule instance_in_use).",
        responses={204: None, 400: ERROR_400, 403: ERROR_403, 404: ERROR_404},
    ),
)
class MarketoInstanceViewSet(_OrganizationInstanceViewSet):
    serializer_class = s.MarketoInstanceSerializer
    filterset_class = MarketoInstanceFilterSet
    ordering_fields = ["name", "munchkin_id", "created_at"]
    model = MarketoInstance
    secret_fields = ("client_secret",)


@extend_schema_view(
    list=extend_schema(summary="Salesforce orgs of your organizations"),
    retrieve=extend_schema(summary="One Salesforce org", responses={200: s.SalesforceOrgSerializer, 404: ERROR_404}),
    create=extend_schema(
        summary="Register a Salesforce org (organization admins)",
        description="Client credentials need client_secret; JWT bearer needs username and private_key. "
        "Secrets are stored encrypted and never returned.",
        responses={201: s.SalesforceOrgSerializer, 400: ERROR_400, 403: ERROR_403},
    ),
    update=extend_schema(
        summary="Replace a Salesforce org's settings (organization admins)",
        description="Omit a secret (or send it empty) to keep the stored one.",
        responses={200: s.SalesforceOrgSerializer, 400: ERROR_400, 403: ERROR_403, 404: ERROR_404},
    ),
    partial_update=extend_schema(
        summary="Edit a Salesforce org (organization admins)",
        description="Omit a secret (or send it empty) to keep the stored one.",
        responses={200: s.SalesforceOrgSerializer, 400: ERROR_400, 403: ERROR_403, 404: ERROR_404},
    ),
    destroy=extend_schema(
        summary="Delete a Salesforce org (organization admins)",
        description="Refused while a sandbox is paired with it (rule instance_in_use).",
        responses={204: None, 400: ERROR_400, 403: ERROR_403, 404: ERROR_404},
    ),
)
class SalesforceOrgViewSet(_OrganizationInstanceViewSet):
    serializer_class = s.SalesforceOrgSerializer
    filterset_class = SalesforceOrgFilterSet
    model = SalesforceOrg
    secret_fields = ("client_secret", "private_key")


@extend_schema_view(
    list=extend_schema(summary="Pairings of the sandbox"),
    retrieve=extend_schema(summary="One pairing", responses={200: s.PairingSerializer, 404: ERROR_404}),
    create=extend_schema(
        summary="Pair an instance with the sandbox (sandbox admins)",
        description="Give kind and exactly one of marketo_instance / salesforce_org. A refused pairing answers "
        "400 with code rule_violation and the rule id, e.g. marketo_source_one_organization, "
        "journey_subscription_one_per_sandbox, journey_subscription_one_sandbox_per_instance, "
        "instance_same_organization, journey_subscription_marketo_only, pairing_duplicate.",
        responses={201: s.PairingSerializer, 400: ERROR_400, 403: ERROR_403, 404: ERROR_404},
    ),
    destroy=extend_schema(
        summary="Unpair (sandbox admins)", responses={204: None, 403: ERROR_403, 404: ERROR_404}
    ),
)
class PairingViewSet(SandboxScopedViewSet):
    queryset = Pairing.objects.all()
    serializer_class = s.PairingSerializer
    filterset_class = PairingFilterSet
    ordering_fields = ["kind", "created_at"]
    write_role = Role.ADMIN
    http_method_names = ["get", "post", "delete", "head", "options"]

    def get_queryset(self):
        return super().get_queryset().select_related("marketo_instance", "salesforce_org", "created_by")

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = create_pairing(
            sandbox=self.sandbox,
            kind=data["kind"],
            marketo_instance=data.get("marketo_instance"),
            salesforce_org=data.get("salesforce_org"),
            created_by=self.request.user,
        )

    def perform_destroy(self, pairing):
        delete_pairing(pairing)
