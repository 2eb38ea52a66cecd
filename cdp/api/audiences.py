"""Audiences over REST, under /api/sandboxes/{sandbox_id}/audiences/:

- CRUD: a definition is written as a rule tree (``definition``) or as PQL text (``pql`` + ``kind``)
  and always answered in both forms, with the evaluation state and statistics;
- validate/ and preview/ (the builder's checks and live estimate), schema/ (what conditions can
  name), {id}/evaluate/ (queue a full evaluation), {id}/members/ (paginated, also members.csv),
  {id}/evaluations/ (the history behind the size-over-time chart).

Viewers read (and may validate and preview); marketers write. Saving goes through
``cdp.services.audiences.save_audience`` (guardrails, references, cycles); a definition that
can't be read is answered 400 with where it is wrong: ``location.json_path`` for a rule tree,
``location.line``/``column`` for PQL text.
"""

import time

from django.db.models import Q
from django.http import StreamingHttpResponse
from django_filters import rest_framework as django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import filters, serializers, status
from rest_framework.decorators import action
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.response import Response

from cdp.api.base import SandboxScopedViewSet
from cdp.api.profiles import CsvRenderer
from cdp.api.serializers import ERROR_403, ErrorDetailSerializer, ErrorSerializer
from cdp.choices import AudienceKind, MembershipStatus, Role
from cdp.exceptions import RuleViolation
from cdp.services.audience_io import (
    DefinitionError,
    attach_profiles,
    definition_of,
    delete_audience,
    member_rows,
    members_csv,
    members_csv_name,
    read_definition,
)
from cdp.models import Audience, AudienceEvaluation
from cdp.segmentation import catalog
from cdp.segmentation.compiler import preview_count
from cdp.services.audiences import check_references, membership_lookup, queue_full_evaluation, save_audience

ERROR_404 = OpenApiResponse(ErrorSerializer, description="No such audience in this sandbox.")


def register(router, sandbox_router):
    sandbox_router.register("audiences", AudienceViewSet, basename="audience")


# ----------------------------------------------------------------------------------- serializers
class DefinitionLocationSerializer(serializers.Serializer):
    json_path = serializers.CharField(
        required=False, help_text="Where in the rule tree, e.g. $.condition.conditions[1].value."
    )
    line = serializers.IntegerField(required=False, help_text="1-based line in the PQL text.")
    column = serializers.IntegerField(required=False, help_text="1-based column in the PQL text.")
    field = serializers.CharField(required=False, help_text="The field the problem is about, as PQL writes it.")
    token = serializers.CharField(required=False, help_text="The text found where something else was expected.")


class DefinitionErrorDetailSerializer(ErrorDetailSerializer):
    location = DefinitionLocationSerializer(required=False)


class DefinitionErrorSerializer(serializers.Serializer):
    error = DefinitionErrorDetailSerializer()


ERROR_400 = OpenApiResponse(
    DefinitionErrorSerializer,
    description="Invalid input, a definition that can't be read (with its location) or a business rule that refused it.",
)


def definition_error_body(error: DefinitionError) -> dict:
    body = {
        "code": "invalid_definition",
        "rule": "invalid_definition",
        "message": error.message,
        "fields": {error.field: [error.message]},
    }
    location = {k: v for k, v in error.location.items() if v not in (None, "")}
    if location:
        body["location"] = location
    return {"error": body}


# A pattern, not an enum: the enum would collide with the other "kind" fields of the API (their
# names are settled by SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]).
@extend_schema_field({"type": "string", "pattern": "^(person|account)$", "description": "person or account"})
class AudienceKindField(serializers.ChoiceField):

    def __init__(self, **kwargs):
        super().__init__(choices=AudienceKind.choices, **kwargs)


def bad_parameter(name: str, message: str) -> Response:
    body = {"code": "validation_error", "message": message, "fields": {name: [message]}}
    return Response({"error": body}, status=status.HTTP_400_BAD_REQUEST)


class DefinitionInputSerializer(serializers.Serializer):
    definition = serializers.JSONField(
        required=False, help_text='The rule tree: {"subject": "person", "condition": {…}} (see the builder docs).'
    )
    pql = serializers.CharField(required=False, trim_whitespace=False, help_text="The definition as PQL text (give kind).")
    kind = AudienceKindField(required=False, help_text="Who the audience is made of; needed with pql.")


class DefinitionCheckSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    kind = serializers.CharField(required=False)
    definition = serializers.JSONField(required=False, help_text="The rule tree (canonical form).")
    pql = serializers.CharField(required=False, help_text="The same definition as PQL text.")
    error = inline_serializer(
        "DefinitionProblem",
        {
            "message": serializers.CharField(),
            "field": serializers.CharField(help_text="definition, pql or kind: the input that is wrong."),
            "json_path": serializers.CharField(required=False),
            "line": serializers.IntegerField(required=False),
            "column": serializers.IntegerField(required=False),
            "token": serializers.CharField(required=False),
        },
        required=False,
    )


class PreviewSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="How many people (or accounts) match now.")
    kind = serializers.CharField()
    definition = serializers.JSONField()
    pql = serializers.CharField()
    duration_ms = serializers.IntegerField(help_text="How long counting took.")


class AudienceSerializer(serializers.ModelSerializer):
    definition = serializers.JSONField(
        required=False, help_text="The rule tree. On write, give this or pql (with kind)."
    )
    pql = serializers.CharField(required=False, trim_whitespace=False, help_text="The definition as PQL text.")
    kind = AudienceKindField(required=False, help_text="Read from the rule tree when omitted.")
    evaluation_interval = serializers.DurationField(
        required=False, help_text='How often it is evaluated in full, e.g. "1 00:00:00" or "P1D" (default daily).'
    )
    depends_on = serializers.PrimaryKeyRelatedField(
        many=True, read_only=True, help_text="Audiences it reads with inSegment (evaluated before it)."
    )

    class Meta:
        model = Audience
        fields = [
            "id", "name", "description", "kind", "definition", "pql", "evaluation_interval", "depends_on",
            "state", "size", "last_evaluated_at", "last_full_evaluation_at", "last_duration_ms", "last_entered",
            "last_exited", "last_error", "failure_count", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = [
            "state", "size", "last_evaluated_at", "last_full_evaluation_at", "last_duration_ms", "last_entered",
            "last_exited", "last_error", "failure_count", "created_at", "updated_at",
        ]  # fmt: skip

    def to_representation(self, audience):
        data = super().to_representation(audience)
        parsed = _stored_definition(audience)
        data["pql"] = parsed.pql if parsed else ""
        return data

    def validate(self, attrs):
        if self.partial and "definition" not in attrs and not attrs.get("pql"):
            return attrs  # the definition stays as it is
        kind = attrs.get("kind") or (self.instance.kind if self.instance is not None and attrs.get("pql") else None)
        try:
            attrs["parsed"] = read_definition(definition=attrs.get("definition"), pql=attrs.get("pql"), kind=kind)
        except DefinitionError as error:
            raise InvalidDefinition(error) from None
        return attrs


def _stored_definition(audience):
    cache = getattr(audience, "_definition_forms", None)
    if cache is None:
        cache = audience._definition_forms = definition_of(audience)
    return cache


class InvalidDefinition(Exception):
    def __init__(self, error: DefinitionError):
        super().__init__(error.message)
        self.error = error


class MemberPersonSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.CharField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    job_title = serializers.CharField()
    country = serializers.CharField()
    primary_account = serializers.CharField(allow_null=True, help_text="Name of the person's primary account.")


class MemberAccountSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    domain = serializers.CharField()
    industry = serializers.CharField()
    country = serializers.CharField()


class AudienceMemberSerializer(serializers.Serializer):
    member_id = serializers.IntegerField(help_text="Person id (person audiences) or account id (account audiences).")
    status = serializers.ChoiceField(choices=MembershipStatus.choices)
    realized_at = serializers.DateTimeField()
    exited_at = serializers.DateTimeField(allow_null=True)
    person = MemberPersonSerializer(allow_null=True, help_text="For person audiences.")
    account = MemberAccountSerializer(allow_null=True, help_text="For account audiences.")


class AudienceEvaluationSerializer(serializers.ModelSerializer):
    class Meta:
        model = AudienceEvaluation
        fields = ["id", "mode", "started_at", "duration_ms", "candidates", "entered", "exited", "size", "error"]


class AudienceFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Name or description contains")

    class Meta:
        model = Audience
        fields = ["kind", "state"]

    def search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(description__icontains=value))


MEMBER_STATUS = OpenApiParameter(
    "status", str, enum=[*MembershipStatus.values, "all"], description="realized (default), exited or all."
)
CHANGED = {200: AudienceSerializer, 400: ERROR_400, 403: ERROR_403, 404: ERROR_404}


# -------------------------------------------------------------------------------------- viewset
@extend_schema_view(
    list=extend_schema(summary="Audiences", description="With their evaluation state, size and last run. Search with `q`."),
    retrieve=extend_schema(summary="One audience", responses={200: AudienceSerializer, 404: ERROR_404}),
    create=extend_schema(
        summary="Create an audience",
        description="Give `definition` (rule tree) or `pql` with `kind`. It is evaluated in full right after. "
        "Refusals: invalid_definition (with location), audience_name_taken, unknown_audience, audience_cycle, "
        "audience_limit, account_audience_limit.",
        responses={201: AudienceSerializer, 400: ERROR_400, 403: ERROR_403},
    ),
    update=extend_schema(summary="Replace an audience", responses=CHANGED),
    partial_update=extend_schema(
        summary="Change an audience",
        description="Fields left out keep their value; a new definition is re-evaluated.",
        responses=CHANGED,
    ),
    destroy=extend_schema(
        summary="Delete an audience",
        description="Refused (rule audience_in_use) while another audience reads it with inSegment.",
        responses={204: None, 400: ERROR_400, 403: ERROR_403, 404: ERROR_404},
    ),
)
class AudienceViewSet(SandboxScopedViewSet):
    queryset = Audience.objects.all()
    serializer_class = AudienceSerializer
    filterset_class = AudienceFilterSet
    filter_backends = [django_filters.DjangoFilterBackend, filters.OrderingFilter]
    ordering_fields = ["name", "size", "last_evaluated_at", "created_at"]
    # Checking or estimating a definition changes nothing: viewers may do it too.
    READ_LIKE_ACTIONS = ("validate", "preview")

    @property
    def write_role(self):
        return Role.VIEWER if self.action in self.READ_LIKE_ACTIONS else Role.MARKETER

    def get_queryset(self):
        return super().get_queryset().prefetch_related("depends_on")

    def handle_exception(self, exc):
        if isinstance(exc, InvalidDefinition):
            return Response(definition_error_body(exc.error), status=status.HTTP_400_BAD_REQUEST)
        return super().handle_exception(exc)

    def _save(self, serializer, audience=None):
        v = serializer.validated_data
        parsed = v.get("parsed")
        return save_audience(
            self.sandbox,
            name=v.get("name", audience.name if audience else ""),
            definition=parsed.tree if parsed else audience.definition,
            description=v.get("description", audience.description if audience else ""),
            evaluation_interval=v.get("evaluation_interval"),
            audience=audience,
            by=self.request.user,
        )

    def create(self, request, sandbox_id=None):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        audience = self._save(serializer)
        return Response(self.get_serializer(self._reload(audience)).data, status=status.HTTP_201_CREATED)

    def update(self, request, sandbox_id=None, pk=None, partial=False):
        audience = self.get_object()
        serializer = self.get_serializer(audience, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        audience = self._save(serializer, audience)
        return Response(self.get_serializer(self._reload(audience)).data)

    def partial_update(self, request, sandbox_id=None, pk=None):
        return self.update(request, sandbox_id, pk, partial=True)

    def destroy(self, request, sandbox_id=None, pk=None):
        delete_audience(self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _reload(self, audience):
        # The evaluation queued on commit may already have run (eager mode): answer the fresh row.
        return self.get_queryset().get(pk=audience.pk)

    def _read_input(self, request):
        data = DefinitionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        parsed = read_definition(definition=v.get("definition"), pql=v.get("pql"), kind=v.get("kind"))
        self._check_references(parsed)
        return parsed

    def _check_references(self, parsed):
        """inSegment may only name audiences of this sandbox, of the right kind (as saving checks)."""
        try:
            check_references(self.sandbox, parsed.ast)
        except RuleViolation as error:
            raise DefinitionError(error.message, field="definition") from None

    @extend_schema(
        summary="Check a definition",
        description="Reads a rule tree or PQL text (with kind) and answers both forms, or what is wrong and where "
        "(json_path for a rule tree, line and column for PQL). Always 200; `ok` tells.",
        request=DefinitionInputSerializer,
        responses={200: DefinitionCheckSerializer, 403: ERROR_403},
    )
    @action(detail=False, methods=["post"], pagination_class=None, filter_backends=[])
    def validate(self, request, sandbox_id=None):
        try:
            parsed = self._read_input(request)
        except DefinitionError as error:
            return Response({"ok": False, "error": error.to_dict()})
        return Response({"ok": True, "kind": parsed.kind, "definition": parsed.tree, "pql": parsed.pql})

    @extend_schema(
        summary="Estimate an audience's size",
        description="Counts who matches the definition now, without saving it (the builder's live estimate). "
        "inSegment conditions read the referenced audiences' current members.",
        request=DefinitionInputSerializer,
        responses={200: PreviewSerializer, 400: ERROR_400, 403: ERROR_403},
    )
    @action(detail=False, methods=["post"], pagination_class=None, filter_backends=[])
    def preview(self, request, sandbox_id=None):
        try:
            parsed = self._read_input(request)
        except DefinitionError as error:
            return Response(definition_error_body(error), status=status.HTTP_400_BAD_REQUEST)
        started = time.monotonic()
        count = preview_count(parsed.ast, self.sandbox, membership_lookup=membership_lookup(self.sandbox))
        body = {
            "count": count, "kind": parsed.kind, "definition": parsed.tree, "pql": parsed.pql,
            "duration_ms": int((time.monotonic() - started) * 1000),
        }  # fmt: skip
        return Response(body)

    @extend_schema(
        summary="What conditions can name",
        description="The fields (with types and operators), links and collections of every entity reachable from "
        "the subject: what the builder's schema browser shows.",
        parameters=[
            OpenApiParameter("subject", str, enum=list(catalog.SUBJECTS), required=False, description="Default person.")
        ],
        responses={200: OpenApiTypes.OBJECT, 400: ERROR_400},
    )
    @action(detail=False, methods=["get"], url_path="schema", pagination_class=None, filter_backends=[])
    def catalog(self, request, sandbox_id=None):  # not "schema": APIView.schema is the OpenAPI generator
        subject = request.query_params.get("subject", "person")
        if subject not in catalog.SUBJECTS:
            return bad_parameter("subject", 'subject is "person" or "account".')
        return Response(catalog.describe_subject(subject))

    @extend_schema(
        summary="Evaluate now",
        description="Queues a full evaluation (after the audiences it reads). Poll the audience for its state.",
        request=None,
        responses={202: AudienceSerializer, 403: ERROR_403, 404: ERROR_404},
    )
    @action(detail=True, methods=["post"])
    def evaluate(self, request, sandbox_id=None, pk=None):
        audience = self.get_object()
        queue_full_evaluation(audience)
        return Response(self.get_serializer(self._reload(audience)).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Members",
        description="Paginated, newest entries first, with the person's or account's basics. Also served as a "
        "streamed CSV export at …/members.csv (same status filter).",
        parameters=[MEMBER_STATUS],
        responses={200: AudienceMemberSerializer(many=True), 400: ERROR_400, 404: ERROR_404},
    )
    @action(
        detail=True, methods=["get"], filter_backends=[], renderer_classes=[JSONRenderer, BrowsableAPIRenderer, CsvRenderer]
    )
    def members(self, request, sandbox_id=None, pk=None, format=None):
        audience = self.get_object()
        member_status = request.query_params.get("status", MembershipStatus.REALIZED)
        if member_status not in (*MembershipStatus.values, "all"):
            return bad_parameter("status", "status is realized, exited or all.")
        member_status = None if member_status == "all" else member_status
        if request.accepted_renderer.format == "csv":
            rows = members_csv(audience, status=member_status)
            response = StreamingHttpResponse(rows, content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="{members_csv_name(audience)}"'
            return response
        page = self.paginate_queryset(member_rows(audience, status=member_status))
        return self.get_paginated_response(AudienceMemberSerializer(attach_profiles(audience, page), many=True).data)

    @extend_schema(
        summary="Evaluation history",
        description="One row per run (full or incremental), newest first: size over time, entries, exits, errors.",
        responses={200: AudienceEvaluationSerializer(many=True), 404: ERROR_404},
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def evaluations(self, request, sandbox_id=None, pk=None):
        audience = self.get_object()
        rows = AudienceEvaluation.objects.filter(sandbox=self.sandbox, audience=audience).order_by("-started_at", "-id")
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(AudienceEvaluationSerializer(page, many=True).data)
