"""Buying groups over REST, under /api/sandboxes/{sandbox_id}/:

- buying-group-roles/ (the 6 defaults + custom, ≤20), roles-templates/ (+ {id}/publish/),
  stages-models/ (+ {id}/publish/), solution-interests/ (+ {id}/build/ over an account audience),
  buying-group-builds/ (progress, read-only);
- buying-groups/ (filters: solution_interest, status, stage, completeness_min/max, account, q),
  {id}/stage/, {id}/status/, {id}/members/ (assign), {id}/members/{person_id}/ (remove), summary/.

Viewers read; marketers write. Every write goes through ``journeys.services.buying_groups``;
its refusals answer 400 with ``{"error": {"code": "rule_violation", "rule", "message", "fields"}}``.
"""

from django.db.models import Count
from django.shortcuts import get_object_or_404
from django_filters import rest_framework as django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import filters, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from cdp.api.base import NotOffered, SandboxScopedViewSet
from cdp.api.serializers import ERROR_400, ERROR_403, ERROR_404
from cdp.models import Audience
from journeys.choices import BuildStatus, BuyingGroupStatus, RoleWeight, StageKind, StagesModelStatus, TemplateStatus
from journeys.forms import BuyingGroupFilterSet
from journeys.models import (
    BuyingGroup,
    BuyingGroupBuild,
    BuyingGroupRole,
    BuyingGroupStageChange,
    RolesTemplate,
    SolutionInterest,
    StagesModel,
)
from journeys.services import buying_groups as service



def status_field(choices, **kwargs):
    """A status as a string with a pattern, not an enum: "status" enums of other apps would collide
    with these in the schema."""
    values = "|".join(value for value, _ in choices)

    @extend_schema_field({"type": "string", "pattern": f"^({values})$", "description": ", ".join(v for v, _ in choices)})
    class StatusField(serializers.ChoiceField):
        pass

    return StatusField(choices=choices, **kwargs)


# ----------------------------------------------------------------------------------- roles
class BuyingGroupRoleSerializer(serializers.ModelSerializer):
    class Meta:
        model = BuyingGroupRole
        fields = ["id", "name", "description", "is_default", "created_at"]
        read_only_fields = ["is_default", "created_at"]


@extend_schema_view(
    list=extend_schema(summary="Buying group roles", description="The six defaults (made on first use) and custom roles."),
    retrieve=extend_schema(summary="One role"),
    create=extend_schema(summary="Add a custom role", description="Refusals: role_limit (20 a sandbox), role_name_taken.",
                         responses={201: BuyingGroupRoleSerializer, 400: ERROR_400, 403: ERROR_403}),  # fmt: skip
    destroy=extend_schema(summary="Delete a custom role", description="Refusals: default_role, role_in_use.",
                          responses={204: None, 400: ERROR_400, 403: ERROR_403, 404: ERROR_404}),  # fmt: skip
)
class BuyingGroupRoleViewSet(SandboxScopedViewSet):
    queryset = BuyingGroupRole.objects.all()
    serializer_class = BuyingGroupRoleSerializer
    http_method_names = ["get", "post", "delete", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return BuyingGroupRole.objects.none()
        return service.roles_of(self.sandbox)

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = service.create_role(self.sandbox, data["name"], data.get("description", ""))

    def perform_destroy(self, instance):
        service.delete_role(instance)


# ------------------------------------------------------------------------- roles templates
class TemplateRoleSerializer(serializers.Serializer):
    role = serializers.CharField(help_text="The role's name or id.")
    role_id = serializers.IntegerField(read_only=True)
    weight = serializers.ChoiceField(choices=RoleWeight.choices, default=RoleWeight.NORMAL,
                                     help_text="Trivial 20, Minor 40, Normal 60, Important 80, Vital 100.")  # fmt: skip
    condition = serializers.JSONField(required=False, allow_null=True,
                                      help_text='Rule tree, subject person: {"subject": "person", "condition": {…}}.')  # fmt: skip
    condition_pql = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False,
                                          help_text="The condition as PQL text (instead of condition).")  # fmt: skip
    required = serializers.BooleanField(default=False, help_text="Counts towards completeness.")
    required_count = serializers.IntegerField(default=1, min_value=1)

    def to_representation(self, row):
        return {
            "role": row.role.name, "role_id": row.role_id, "weight": row.weight, "condition": row.condition,
            "condition_pql": service.condition_pql(row.condition), "required": row.required, "required_count": row.required_count,
        }  # fmt: skip


class RolesTemplateSerializer(serializers.ModelSerializer):
    roles = TemplateRoleSerializer(many=True)
    status = status_field(TemplateStatus.choices, read_only=True)

    class Meta:
        model = RolesTemplate
        fields = ["id", "name", "description", "status", "published_at", "roles", "created_at", "updated_at"]
        read_only_fields = ["status", "published_at", "created_at", "updated_at"]

    def to_representation(self, template):
        data = super().to_representation(template)
        data["roles"] = [TemplateRoleSerializer().to_representation(r) for r in template.roles.select_related("role")]
        return data


class DraftWriteMixin:
    """Create and update go through a service that replaces the whole draft."""

    save_service = None

    def _save(self, request, instance=None, partial=False):
        serializer = self.get_serializer(instance, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        saved = type(self).save_service(self.sandbox, instance, serializer.validated_data)
        return Response(self.get_serializer(saved).data, status=status.HTTP_200_OK if instance else status.HTTP_201_CREATED)

    def create(self, request, sandbox_id=None):
        return self._save(request)

    def update(self, request, sandbox_id=None, pk=None, partial=False):
        return self._save(request, self.get_object(), partial)

    def partial_update(self, request, sandbox_id=None, pk=None):
        return self.update(request, sandbox_id, pk, partial=True)


def _save_template(sandbox, template, data):
    roles = data.get("roles")
    if roles is None and template is not None:
        roles = [{"role": r.role, "weight": r.weight, "condition": r.condition, "required": r.required,
                  "required_count": r.required_count} for r in template.roles.select_related("role")]  # fmt: skip
    return service.save_roles_template(
        sandbox,
        name=data.get("name", getattr(template, "name", "")),
        description=data.get("description", getattr(template, "description", "")),
        roles=[dict(r) for r in roles or []],
        template=template,
    )


WRITE_RESPONSES = {200: None, 400: ERROR_400, 403: ERROR_403, 404: ERROR_404}


@extend_schema_view(
    list=extend_schema(summary="Roles templates"),
    retrieve=extend_schema(summary="One roles template"),
    create=extend_schema(summary="Create a draft roles template",
                         description="Refusals: unknown_role, duplicate_role, invalid_weight, invalid_condition (says where), name_taken."),  # fmt: skip
    update=extend_schema(summary="Replace a draft roles template", description="Refused (template_live) once live."),
    partial_update=extend_schema(summary="Change a draft roles template", description="Refused (template_live) once live."),
    destroy=extend_schema(summary="Delete a roles template", description="Refused while a solution interest uses it."),
)
class RolesTemplateViewSet(DraftWriteMixin, SandboxScopedViewSet):
    queryset = RolesTemplate.objects.all()
    serializer_class = RolesTemplateSerializer
    save_service = staticmethod(_save_template)

    @extend_schema(summary="Make a draft template live (then frozen)", request=None,
                   responses={200: RolesTemplateSerializer, 400: ERROR_400, 403: ERROR_403, 404: ERROR_404})  # fmt: skip
    @action(detail=True, methods=["post"])
    def publish(self, request, sandbox_id=None, pk=None):
        return Response(self.get_serializer(service.publish_roles_template(self.get_object())).data)

    def perform_destroy(self, instance):
        _delete_unless_used(instance, "roles template")


def _delete_unless_used(instance, what):
    from django.db.models import ProtectedError

    from cdp.exceptions import RuleViolation

    try:
        instance.delete()
    except ProtectedError:
        raise RuleViolation(f"This {what} is used by a solution interest.", rule="in_use") from None


# --------------------------------------------------------------------------- stages models
class StageSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=StageKind.choices, default=StageKind.INTERMEDIATE)


class TransitionSerializer(serializers.Serializer):
    def get_fields(self):
        # "from" is a Python keyword: declare the fields by name.
        return {"from": serializers.CharField(), "to": serializers.CharField()}


class StagesModelSerializer(serializers.ModelSerializer):
    # Written as given; read back by to_representation (the service's canonical form).
    stages = StageSerializer(many=True, write_only=True)
    transitions = TransitionSerializer(many=True, required=False, write_only=True)
    status = status_field(StagesModelStatus.choices, read_only=True)

    class Meta:
        model = StagesModel
        fields = ["id", "name", "description", "status", "published_at", "stages", "transitions", "created_at", "updated_at"]
        read_only_fields = ["status", "published_at", "created_at", "updated_at"]

    def to_representation(self, model):
        data = super().to_representation(model)
        data.update(service.stages_model_as_dict(model))
        return data


def _save_stages_model(sandbox, model, data):
    current = service.stages_model_as_dict(model) if model is not None else {"stages": [], "transitions": []}
    return service.save_stages_model(
        sandbox,
        name=data.get("name", getattr(model, "name", "")),
        description=data.get("description", getattr(model, "description", "")),
        stages=[dict(s) for s in data.get("stages", current["stages"])],
        transitions=[dict(t) for t in data.get("transitions", current["transitions"])],
        stages_model=model,
    )


@extend_schema_view(
    list=extend_schema(summary="Stages models"),
    retrieve=extend_schema(summary="One stages model"),
    create=extend_schema(summary="Create a draft stages model",
                         description="≥1 entry stage, exactly one success stage, optional failure stages, allowed transitions. "
                         "Refusals: entry_stage_required, one_success_stage, duplicate_stage, unknown_stage, invalid_transition."),  # fmt: skip
    update=extend_schema(summary="Replace a draft stages model", description="Refused (stages_model_published) once published."),
    partial_update=extend_schema(summary="Change a draft stages model", description="Refused (stages_model_published) once published."),
    destroy=extend_schema(summary="Delete a stages model", description="Refused while a solution interest uses it."),
)
class StagesModelViewSet(DraftWriteMixin, SandboxScopedViewSet):
    queryset = StagesModel.objects.all()
    serializer_class = StagesModelSerializer
    save_service = staticmethod(_save_stages_model)

    @extend_schema(summary="Publish a stages model (then frozen)", request=None,
                   responses={200: StagesModelSerializer, 403: ERROR_403, 404: ERROR_404})  # fmt: skip
    @action(detail=True, methods=["post"])
    def publish(self, request, sandbox_id=None, pk=None):
        return Response(self.get_serializer(service.publish_stages_model(self.get_object())).data)

    def perform_destroy(self, instance):
        _delete_unless_used(instance, "stages model")


# ---------------------------------------------------------------------- solution interests
class SandboxPrimaryKeyField(serializers.PrimaryKeyRelatedField):
    """A row of the caller's sandbox; another sandbox's id reads as unknown."""

    def get_queryset(self):
        return self.queryset.model.objects.for_sandbox(self.context["sandbox"])


class BuildSerializer(serializers.ModelSerializer):
    progress_percent = serializers.IntegerField(read_only=True)
    audience_name = serializers.CharField(source="audience.name", read_only=True)
    status = status_field(BuildStatus.choices, read_only=True)

    class Meta:
        model = BuyingGroupBuild
        fields = [
            "id", "solution_interest", "audience", "audience_name", "status", "total_accounts", "processed_accounts",
            "groups_created", "progress_percent", "started_at", "finished_at", "error", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class SolutionInterestSerializer(serializers.ModelSerializer):
    roles_template = SandboxPrimaryKeyField(queryset=RolesTemplate.objects.all(), help_text="A live roles template.")
    stages_model = SandboxPrimaryKeyField(queryset=StagesModel.objects.all(), required=False, allow_null=True,
                                          help_text="A published stages model (optional).")  # fmt: skip
    builds = BuildSerializer(many=True, read_only=True)

    class Meta:
        model = SolutionInterest
        fields = ["id", "name", "description", "roles_template", "stages_model", "builds", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]


def _save_solution_interest(sandbox, interest, data):
    return service.save_solution_interest(
        sandbox,
        name=data.get("name", getattr(interest, "name", "")),
        description=data.get("description", getattr(interest, "description", "")),
        roles_template=data.get("roles_template", getattr(interest, "roles_template", None)),
        stages_model=data["stages_model"] if "stages_model" in data else getattr(interest, "stages_model", None),
        solution_interest=interest,
    )


class BuildRequestSerializer(serializers.Serializer):
    audience = SandboxPrimaryKeyField(queryset=Audience.objects.all(), help_text="An account audience.")


@extend_schema_view(
    list=extend_schema(summary="Solution interests"),
    retrieve=extend_schema(summary="One solution interest"),
    create=extend_schema(summary="Create a solution interest",
                         description="Refusals: template_not_live, stages_model_not_published, name_taken."),  # fmt: skip
    update=extend_schema(summary="Replace a solution interest"),
    partial_update=extend_schema(summary="Change a solution interest",
                                 description="The stages model cannot change once groups exist (stages_model_in_use)."),  # fmt: skip
    destroy=extend_schema(summary="Delete a solution interest and its buying groups"),
)
class SolutionInterestViewSet(DraftWriteMixin, SandboxScopedViewSet):
    queryset = SolutionInterest.objects.all()
    serializer_class = SolutionInterestSerializer
    save_service = staticmethod(_save_solution_interest)

    def get_queryset(self):
        return super().get_queryset().prefetch_related("builds__audience")

    @extend_schema(summary="Build the buying groups over an account audience",
                   description="Queued; poll buying-group-builds/{id}/ for progress. The groups then follow the audience "
                   "(new accounts get groups, exited accounts' groups become inactive). Refusals: account_audience_required.",
                   request=BuildRequestSerializer, responses={202: BuildSerializer, 400: ERROR_400, 403: ERROR_403})  # fmt: skip
    @action(detail=True, methods=["post"])
    def build(self, request, sandbox_id=None, pk=None):
        interest = self.get_object()
        body = BuildRequestSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        build = service.start_build(interest, body.validated_data["audience"], by=request.user)
        build.refresh_from_db()
        return Response(BuildSerializer(build).data, status=status.HTTP_202_ACCEPTED)


class ReadOnlySandboxViewSet(SandboxScopedViewSet):
    """List and retrieve; rows change only through services (builds, actions)."""

    http_method_names = ["get", "post", "delete", "head", "options"]
    create = update = partial_update = destroy = NotOffered()


@extend_schema_view(list=extend_schema(summary="Buying group builds (progress)"), retrieve=extend_schema(summary="One build"))
class BuyingGroupBuildViewSet(ReadOnlySandboxViewSet):
    queryset = BuyingGroupBuild.objects.all()
    serializer_class = BuildSerializer

    def get_queryset(self):
        return super().get_queryset().select_related("audience")


# --------------------------------------------------------------------------- buying groups
class MemberSerializer(serializers.Serializer):
    person_id = serializers.IntegerField()
    email = serializers.CharField(source="person.email")
    name = serializers.SerializerMethodField()
    role = serializers.CharField(source="role.name")
    role_id = serializers.IntegerField()
    assigned_how = serializers.CharField()
    assigned_by = serializers.CharField()
    assigned_at = serializers.DateTimeField()

    def get_name(self, member) -> str:
        return str(member.person)


class StageChangeSerializer(serializers.ModelSerializer):
    from_stage = serializers.CharField(source="from_stage.name", allow_null=True, default=None)
    to_stage = serializers.CharField(source="to_stage.name")

    class Meta:
        model = BuyingGroupStageChange
        fields = ["from_stage", "to_stage", "changed_by", "at"]


class BuyingGroupSerializer(serializers.ModelSerializer):
    account = inline_serializer("BuyingGroupAccount", {"id": serializers.IntegerField(), "name": serializers.CharField(),
                                                      "domain": serializers.CharField()})  # fmt: skip
    solution_interest_name = serializers.CharField(source="solution_interest.name")
    stage = serializers.CharField(source="stage.name", allow_null=True, default=None)
    member_count = serializers.IntegerField(read_only=True)  # annotated by BuyingGroupViewSet
    status = status_field(BuyingGroupStatus.choices, read_only=True)

    class Meta:
        model = BuyingGroup
        fields = [
            "id", "account", "solution_interest", "solution_interest_name", "status", "stage", "completeness_score",
            "completeness_computed_at", "engagement_score", "engagement_computed_at", "member_count", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    def to_representation(self, group):
        data = super().to_representation(group)
        data["account"] = {"id": group.account_id, "name": group.account.name, "domain": group.account.domain}
        return data


class BuyingGroupDetailSerializer(BuyingGroupSerializer):
    members = serializers.SerializerMethodField()
    stage_history = serializers.SerializerMethodField()

    class Meta(BuyingGroupSerializer.Meta):
        fields = BuyingGroupSerializer.Meta.fields + ["members", "stage_history"]

    @extend_schema_field(MemberSerializer(many=True))
    def get_members(self, group):
        return MemberSerializer(group.members.select_related("person", "role").order_by("role__name", "person_id"), many=True).data

    @extend_schema_field(StageChangeSerializer(many=True))
    def get_stage_history(self, group):
        return StageChangeSerializer(group.stage_changes.select_related("from_stage", "to_stage"), many=True).data


class StageRequestSerializer(serializers.Serializer):
    stage = serializers.CharField(help_text="The stage's name (or id).")


class StatusRequestSerializer(serializers.Serializer):
    status = status_field(BuyingGroupStatus.choices)


class AssignRequestSerializer(serializers.Serializer):
    person_id = serializers.IntegerField()
    role = serializers.CharField(help_text="The role's name or id.")


SUMMARY = inline_serializer(
    "BuyingGroupSummary",
    {
        "total": serializers.IntegerField(),
        "by_status": serializers.ListField(child=serializers.DictField()),
        "by_stage": serializers.ListField(child=serializers.DictField()),
        "average_completeness": serializers.FloatField(),
        "average_engagement": serializers.FloatField(),
    },
)
GROUP_CHANGED = {200: BuyingGroupDetailSerializer, 400: ERROR_400, 403: ERROR_403, 404: ERROR_404}


@extend_schema_view(
    list=extend_schema(summary="Buying groups", description="Filter by solution_interest, status, stage (name), "
                       "completeness_min / completeness_max, account, q (account name)."),  # fmt: skip
    retrieve=extend_schema(summary="One buying group", description="With its members by role and its stage history."),
)
class BuyingGroupViewSet(ReadOnlySandboxViewSet):
    queryset = BuyingGroup.objects.all()
    serializer_class = BuyingGroupSerializer
    filterset_class = BuyingGroupFilterSet
    filter_backends = [django_filters.DjangoFilterBackend, filters.OrderingFilter]
    ordering_fields = ["completeness_score", "engagement_score", "updated_at", "account__name"]
    http_method_names = ["get", "post", "delete", "head", "options"]

    def get_queryset(self):
        return (
            super().get_queryset().select_related("account", "solution_interest", "stage").annotate(member_count=Count("members"))
            .order_by(*BuyingGroup._meta.ordering)  # a grouped query drops Meta.ordering
        )

    def get_serializer_class(self):
        return BuyingGroupSerializer if self.action in ("list",) else BuyingGroupDetailSerializer

    def _changed(self, group):
        return Response(BuyingGroupDetailSerializer(self.get_queryset().get(pk=group.pk)).data)

    @extend_schema(summary="Move to a stage", description="Refusals: invalid_transition, unknown_stage, no_stages_model.",
                   request=StageRequestSerializer, responses=GROUP_CHANGED)  # fmt: skip
    @action(detail=True, methods=["post"])
    def stage(self, request, sandbox_id=None, pk=None):
        body = StageRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        stage = body.validated_data["stage"]
        return self._changed(service.set_stage(self.get_object(), int(stage) if stage.isdigit() else stage, by=request.user))

    @extend_schema(summary="Set the status", request=StatusRequestSerializer, responses=GROUP_CHANGED)
    @action(detail=True, methods=["post"], url_path="status")
    def set_status(self, request, sandbox_id=None, pk=None):
        body = StatusRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return self._changed(service.set_status(self.get_object(), body.validated_data["status"], by=request.user))

    @extend_schema(summary="Assign a member by hand", description="Refusals: unknown_role, unknown_person, person_not_in_account.",
                   request=AssignRequestSerializer, responses=GROUP_CHANGED)  # fmt: skip
    @action(detail=True, methods=["post"])
    def members(self, request, sandbox_id=None, pk=None):
        body = AssignRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        group = self.get_object()
        role = body.validated_data["role"]
        service.assign_member(group, body.validated_data["person_id"], role, by=request.user)
        return self._changed(group)

    @extend_schema(summary="Remove a member", request=None, responses={204: None, 403: ERROR_403, 404: ERROR_404},
                   parameters=[OpenApiParameter("person_id", OpenApiTypes.INT, OpenApiParameter.PATH)])  # fmt: skip
    @action(detail=True, methods=["delete"], url_path=r"members/(?P<person_id>\d+)")
    def remove_member(self, request, sandbox_id=None, pk=None, person_id=None):
        if not service.remove_member(self.get_object(), int(person_id), by=request.user):
            return Response({"error": {"code": "not_found", "message": "That person is not a member of this group."}},
                            status=status.HTTP_404_NOT_FOUND)  # fmt: skip
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(summary="Status and stage distribution", responses={200: SUMMARY},
                   parameters=[OpenApiParameter("solution_interest", OpenApiTypes.INT, description="Only this solution interest.")])  # fmt: skip
    @action(detail=False, methods=["get"])
    def summary(self, request, sandbox_id=None):
        interest = request.query_params.get("solution_interest")
        if interest and not interest.isdigit():
            raise ValidationError({"solution_interest": ["A solution interest id is a whole number."]})
        interest_id = get_object_or_404(SolutionInterest.objects.for_sandbox(self.sandbox), pk=interest).pk if interest else None
        return Response(service.buying_group_summary(self.sandbox, solution_interest_id=interest_id))
