"""Tenancy and access endpoints: /api/organizations/, /api/sandboxes/, /api/members/, /api/tokens/,
/api/me/. Each list holds only what the caller may see (others' objects answer 404); every change goes
through a service in ``cdp.services``, which checks who may make it."""

from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from cdp.filtersets import ApiTokenFilterSet, MembershipFilterSet, OrganizationFilterSet, SandboxFilterSet
from cdp.models import SandboxRole
from cdp.services import (
    accessible_sandboxes,
    add_member_by_username,
    can_create_organization,
    create_organization,
    create_sandbox,
    delete_sandbox,
    issue_api_token_for,
    memberships_visible_to,
    organizations_overview,
    remove_member,
    rename_organization,
    reset_sandbox,
    retitle_sandbox,
    revoke_api_token_as,
    sandbox_roles_of,
    tokens_visible_to,
    update_member,
)

from . import serializers as s

ERROR_400 = OpenApiResponse(s.ErrorSerializer, description="Invalid input or a business rule refused it.")
ERROR_403 = OpenApiResponse(s.ErrorSerializer, description="Your role does not allow this.")
ERROR_404 = OpenApiResponse(s.ErrorSerializer, description="No such object among those you can see.")


@extend_schema_view(
    list=extend_schema(summary="Your organizations", description="All organizations for superusers."),
    retrieve=extend_schema(summary="One organization", responses={200: s.OrganizationSerializer, 404: ERROR_404}),
)
class OrganizationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = s.OrganizationSerializer
    filterset_class = OrganizationFilterSet
    ordering_fields = ["name", "slug", "created_at"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        return organizations_overview(self.request.user)

    def _answer(self, organization, code=status.HTTP_200_OK):
        return Response(self.get_serializer(self.get_queryset().get(pk=organization.pk)).data, status=code)

    @extend_schema(
        summary="Create an organization (superusers)",
        description="The organization starts with a production sandbox named 'prod'.",
        request=s.OrganizationCreateSerializer,
        responses={201: s.OrganizationSerializer, 400: ERROR_400, 403: ERROR_403},
    )
    def create(self, request):
        # Answer 403 before looking at the input: a non-superuser's payload is irrelevant.
        if not can_create_organization(request.user):
            raise PermissionDenied("Only superusers can create organizations.")
        data = s.OrganizationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        organization = create_organization(**data.validated_data, by=request.user)
        return self._answer(organization, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Rename an organization (organization admins)",
        request=s.OrganizationUpdateSerializer,
        responses={200: s.OrganizationSerializer, 400: ERROR_400, 403: ERROR_403, 404: ERROR_404},
    )
    def partial_update(self, request, pk=None):
        organization = self.get_object()
        data = s.OrganizationUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rename_organization(organization, name=data.validated_data["name"], by=request.user)
        return self._answer(organization)


@extend_schema_view(
    list=extend_schema(summary="Sandboxes you can see", description="With your role in each."),
    retrieve=extend_schema(summary="One sandbox", responses={200: s.SandboxSerializer, 404: ERROR_404}),
)
class SandboxViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = s.SandboxSerializer
    filterset_class = SandboxFilterSet
    ordering_fields = ["name", "title", "type", "created_at", "last_reset_at"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return accessible_sandboxes(self.request.user)

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if self.request is not None and self.request.user.is_authenticated:
            context["sandbox_roles"] = sandbox_roles_of(self.request.user)
        return context

    def _answer(self, sandbox, code=status.HTTP_200_OK):
        return Response(self.get_serializer(sandbox).data, status=code)

    @extend_schema(
        summary="Create a sandbox (organization admins)",
        request=s.SandboxCreateSerializer,
        responses={201: s.SandboxSerializer, 400: ERROR_400, 403: ERROR_403},
    )
    def create(self, request):
        data = s.SandboxCreateSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        sandbox = create_sandbox(**data.validated_data, by=request.user)
        return self._answer(sandbox, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Retitle a sandbox (organization admins)",
        request=s.SandboxUpdateSerializer,
        responses={200: s.SandboxSerializer, 400: ERROR_400, 403: ERROR_403, 404: ERROR_404},
    )
    def partial_update(self, request, pk=None):
        sandbox = self.get_object()
        data = s.SandboxUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        retitle_sandbox(sandbox, title=data.validated_data["title"], by=request.user)
        return self._answer(sandbox)

    @extend_schema(
        summary="Delete a development sandbox (organization admins)",
        description="Deletes the sandbox with all its data. Production sandboxes cannot be deleted "
        "(rule production_sandbox_not_deletable).",
        responses={204: None, 400: ERROR_400, 403: ERROR_403, 404: ERROR_404},
    )
    def destroy(self, request, pk=None):
        delete_sandbox(self.get_object(), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Reset a sandbox (sandbox admins)",
        description="Deletes every row of data in the sandbox; the sandbox, its roles and pairings stay. "
        "`confirm` must be the sandbox's name.",
        request=s.SandboxResetSerializer,
        responses={200: s.SandboxResetResultSerializer, 400: ERROR_400, 403: ERROR_403, 404: ERROR_404},
    )
    @action(detail=True, methods=["post"])
    def reset(self, request, pk=None):
        sandbox = self.get_object()
        data = s.SandboxResetSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        deleted = reset_sandbox(sandbox, confirmation=data.validated_data["confirm"], by=request.user)
        result = {"sandbox": sandbox.pk, "last_reset_at": sandbox.last_reset_at, "deleted": deleted}
        return Response(s.SandboxResetResultSerializer(result).data)


@extend_schema_view(
    list=extend_schema(
        summary="Members of organizations you administer",
        description="Members who administer nothing see their own memberships only.",
    ),
    retrieve=extend_schema(summary="One membership", responses={200: s.MembershipSerializer, 404: ERROR_404}),
)
class MembershipViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = s.MembershipSerializer
    filterset_class = MembershipFilterSet
    ordering_fields = ["created_at", "user__username", "is_admin"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return memberships_visible_to(self.request.user).prefetch_related(
            Prefetch("sandbox_roles", queryset=SandboxRole.objects.select_related("sandbox"))
        )

    def _answer(self, membership, code=status.HTTP_200_OK):
        return Response(self.get_serializer(self.get_queryset().get(pk=membership.pk)).data, status=code)

    @staticmethod
    def _roles(validated):
        return [(item["sandbox"], item["role"]) for item in validated]

    @extend_schema(
        summary="Add a user to an organization (organization admins)",
        description="Adds an existing user by username, or creates one when `password` (and `email`) "
        "are given. Role sandboxes must belong to the organization.",
        request=s.MembershipCreateSerializer,
        responses={201: s.MembershipSerializer, 400: ERROR_400, 403: ERROR_403},
    )
    def create(self, request):
        data = s.MembershipCreateSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        v = data.validated_data
        membership = add_member_by_username(
            organization=v["organization"],
            username=v["username"],
            email=v["email"],
            password=v["password"],
            is_admin=v["is_admin"],
            roles=self._roles(v["roles"]),
            by=request.user,
        )
        return self._answer(membership, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change a member's admin flag or sandbox roles (organization admins)",
        request=s.MembershipUpdateSerializer,
        responses={200: s.MembershipSerializer, 400: ERROR_400, 403: ERROR_403, 404: ERROR_404},
    )
    def partial_update(self, request, pk=None):
        membership = self.get_object()
        data = s.MembershipUpdateSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        v = data.validated_data
        roles = self._roles(v["roles"]) if "roles" in v else None
        update_member(membership, is_admin=v.get("is_admin"), roles=roles, by=request.user)
        return self._answer(membership)

    @extend_schema(
        summary="Remove a user from an organization (organization admins)",
        description="The user loses every role in the organization's sandboxes; the account stays.",
        responses={204: None, 400: ERROR_400, 403: ERROR_403, 404: ERROR_404},
    )
    def destroy(self, request, pk=None):
        remove_member(self.get_object(), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(
        summary="API tokens you can see",
        description="Your own tokens, and those of members of organizations you administer. Keys are never "
        "listed: only their first characters (`key_prefix`).",
    ),
    retrieve=extend_schema(summary="One API token", responses={200: s.ApiTokenSerializer, 404: ERROR_404}),
)
class ApiTokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = s.ApiTokenSerializer
    filterset_class = ApiTokenFilterSet
    ordering_fields = ["created_at", "last_used_at", "name"]
    http_method_names = ["get", "post", "delete", "head", "options"]

    def get_queryset(self):
        return tokens_visible_to(self.request.user)

    @extend_schema(
        summary="Issue an API token",
        description="For yourself, or (organization admins) for a member of an organization you administer. "
        "The response holds the secret `key`: it is shown this once and cannot be read again.",
        request=s.ApiTokenCreateSerializer,
        responses={201: s.ApiTokenIssuedSerializer, 400: ERROR_400, 403: ERROR_403},
    )
    def create(self, request):
        data = s.ApiTokenCreateSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        owner = data.validated_data.get("user") or request.user
        token, key = issue_api_token_for(user=owner, name=data.validated_data["name"], by=request.user)
        body = s.ApiTokenIssuedSerializer(token, context={**self.get_serializer_context(), "key": key}).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Revoke an API token",
        description="The token stops working at once; it stays listed (revoked) for the record.",
        request=None,
        responses={200: s.ApiTokenSerializer, 403: ERROR_403, 404: ERROR_404},
    )
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        token = revoke_api_token_as(self.get_object(), by=request.user)
        return Response(self.get_serializer(token).data)

    @extend_schema(
        summary="Revoke an API token (same as POST …/revoke/)",
        description="Revokes rather than deletes: the row stays for the record.",
        responses={204: None, 403: ERROR_403, 404: ERROR_404},
    )
    def destroy(self, request, pk=None):
        revoke_api_token_as(self.get_object(), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class _SingleObjectSchema(AutoSchema):
    """/api/me/ answers one object, though the router routes it as a list."""

    def _is_list_view(self, serializer=None):
        return False


class MeViewSet(viewsets.GenericViewSet):
    serializer_class = s.MeSerializer
    pagination_class = None
    filter_backends = []
    schema = _SingleObjectSchema()

    @extend_schema(
        summary="Who am I",
        description="The authenticated user, their organizations and the sandboxes they can use, with their role.",
        operation_id="me_retrieve",
    )
    def list(self, request):
        user = request.user
        roles = sandbox_roles_of(user)
        organizations = organizations_overview(user)
        sandboxes = accessible_sandboxes(user)
        body = {
            "user": user,
            "organizations": [
                {"id": o.pk, "name": o.name, "slug": o.slug, "is_admin": o.caller_is_admin} for o in organizations
            ],
            "sandboxes": [
                {
                    "id": sb.pk,
                    "organization_id": sb.organization_id,
                    "name": sb.name,
                    "title": sb.title,
                    "type": sb.type,
                    "role": roles[sb.pk].value,
                }
                for sb in sandboxes
            ],
        }
        return Response(self.get_serializer(body).data)
