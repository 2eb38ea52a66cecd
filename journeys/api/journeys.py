"""Journeys and email assets over REST, under /api/sandboxes/{sandbox_id}/:

- journeys/: CRUD of a journey's settings (name, dates, audience, re-entry); {id}/graph/ (PUT the
  working graph), {id}/edit/ (apply one guarded editing operation, answered with the new graph,
  not saved), {id}/validate/, {id}/publish/ (refused 400 with ``error.errors`` — the list of
  problems — until valid; otherwise queued, 202), {id}/close/, {id}/abort/, {id}/duplicate/,
  {id}/plan/ (the campaign plan of the live version);
- emails/: CRUD of email assets and {id}/preview/ ({person_id} or {email}: the email as that
  person gets it).

Viewers read; marketers write. Every rule lives in journeys.services.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from cdp.api.base import SandboxScopedViewSet
from cdp.api.serializers import ERROR_400, ERROR_403, ERROR_404, ErrorDetailSerializer
from cdp.exceptions import RuleViolation
from journeys.models import EmailAsset, Journey
from journeys.models.journeys import EDITABLE_STATES
from journeys.services import emails as email_service
from journeys.services import journeys as service
from journeys.services.campaigns import plan_of



def register(router, sandbox_router):
    sandbox_router.register("journeys", JourneyViewSet, basename="journey")
    sandbox_router.register("emails", EmailAssetViewSet, basename="email-asset")


# ----------------------------------------------------------------------------------- serializers
class GraphErrorSerializer(serializers.Serializer):
    node = serializers.CharField(allow_null=True, help_text="The node to fix (null: the whole journey).")
    code = serializers.CharField(help_text="e.g. missing_next, unreachable, cycle, invalid_condition, unknown_email.")
    message = serializers.CharField()
    path = serializers.CharField(required=False, help_text="Where in the graph document, e.g. $.nodes.n2.paths[0].condition.rule.")


class InvalidJourneyDetailSerializer(ErrorDetailSerializer):
    errors = GraphErrorSerializer(many=True, help_text="Every problem, node by node.")


class InvalidJourneySerializer(serializers.Serializer):
    error = InvalidJourneyDetailSerializer()


PUBLISH_400 = OpenApiResponse(InvalidJourneySerializer, description="Not valid (error.errors lists why) or not publishable in its state.")


class JourneySerializer(serializers.ModelSerializer):
    audience_id = serializers.IntegerField(
        required=False, allow_null=True, help_text="The account audience whose accounts enter (the start node's)."
    )
    state = serializers.CharField(read_only=True, help_text="draft, validated, live, closed, finished or aborted.")
    graph = serializers.JSONField(required=False, help_text="The working graph document (write it with PUT …/graph/).")
    current_version = serializers.SerializerMethodField(help_text="The live version's number (null before publishing).")
    editable = serializers.SerializerMethodField()
    reentry_interval = serializers.DurationField(
        required=False, allow_null=True, help_text='Least time between two entries of an account, e.g. "30 00:00:00".'
    )

    class Meta:
        model = Journey
        fields = [
            "id", "name", "description", "audience_id", "state", "editable", "start_at", "end_at", "allow_reentry",
            "reentry_interval", "graph", "current_version", "duplicated_from", "published_at", "closed_at", "ended_at",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["duplicated_from", "published_at", "closed_at", "ended_at", "created_at", "updated_at"]
        extra_kwargs = {"start_at": {"required": True}, "end_at": {"required": True}}

    def get_current_version(self, journey) -> int | None:
        return journey.current_version.number if journey.current_version_id else None

    def get_editable(self, journey) -> bool:
        return journey.state in EDITABLE_STATES


class JourneyUpdateSerializer(JourneySerializer):
    class Meta(JourneySerializer.Meta):
        extra_kwargs = {"start_at": {"required": False}, "end_at": {"required": False}}


class GraphInputSerializer(serializers.Serializer):
    graph = serializers.JSONField(help_text='{"start": …, "nodes": {…}, "layout": {…}} (see journeys/graph.py).')


class EditInputSerializer(serializers.Serializer):
    op = serializers.ChoiceField(
        choices=["add_node", "add_path", "connect", "delete_node", "delete_path", "move_node", "update_node", "update_path", "set_other_path"]
    )
    args = serializers.DictField(required=False, default=dict, help_text="The operation's arguments, e.g. {after, node_type, slot}.")
    graph = serializers.JSONField(required=False, help_text="Edit this graph (the canvas' unsaved copy); default the saved one.")


class ValidationResultSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    state = serializers.CharField()
    errors = GraphErrorSerializer(many=True)


class DuplicateInputSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, help_text='Default "<name> (copy)".')


class EmailAssetSerializer(serializers.ModelSerializer):
    class Meta:
        model = EmailAsset
        fields = ["id", "name", "subject", "from_name", "from_email", "body_html", "body_text", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]


class EmailPreviewInputSerializer(serializers.Serializer):
    person_id = serializers.IntegerField(required=False, help_text="A person of this sandbox.")
    email = serializers.CharField(required=False, help_text="Or the person's email address.")


class EmailPreviewSerializer(serializers.Serializer):
    person_id = serializers.IntegerField()
    subject = serializers.CharField()
    html = serializers.CharField()
    text = serializers.CharField()
    from_email = serializers.CharField()


# -------------------------------------------------------------------------------------- viewsets
def invalid_journey_response(error: service.JourneyInvalid) -> Response:
    body = {"code": "rule_violation", "rule": error.rule, "message": error.message, "errors": error.errors}
    return Response({"error": body}, status=status.HTTP_400_BAD_REQUEST)


@extend_schema_view(
    list=extend_schema(
        summary="Journeys",
        parameters=[OpenApiParameter("state", str, description="Only journeys in this state (draft, validated, live, …).")],
    ),
    retrieve=extend_schema(summary="One journey", responses={200: JourneySerializer, 404: ERROR_404}),
    create=extend_schema(
        summary="Create a journey",
        description="A draft. end_at is required and at most 3 years after start_at; the audience must be an account audience.",
        responses={201: JourneySerializer, 400: ERROR_400, 403: ERROR_403},
    ),
    update=extend_schema(summary="Replace a journey's settings", request=JourneyUpdateSerializer, responses={200: JourneySerializer, 400: ERROR_400, 404: ERROR_404}),
    partial_update=extend_schema(summary="Change a journey's settings", request=JourneyUpdateSerializer, responses={200: JourneySerializer, 400: ERROR_400, 404: ERROR_404}),
    destroy=extend_schema(summary="Delete a journey", description="Refused while it is live or closed (abort it first).", responses={204: None, 400: ERROR_400, 404: ERROR_404}),
)
class JourneyViewSet(SandboxScopedViewSet):
    queryset = Journey.objects.all()
    serializer_class = JourneySerializer

    def get_queryset(self):
        journeys = super().get_queryset().select_related("current_version").order_by("name")
        state = self.request.query_params.get("state") if self.action == "list" else None
        return journeys.filter(state=state) if state else journeys

    def handle_exception(self, exc):
        if isinstance(exc, service.JourneyInvalid):
            return invalid_journey_response(exc)
        return super().handle_exception(exc)

    def _answer(self, journey, code=status.HTTP_200_OK):
        return Response(JourneySerializer(self.get_queryset().get(pk=journey.pk)).data, status=code)

    def create(self, request, sandbox_id=None):
        serializer = JourneySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        journey = service.create_journey(self.sandbox, by=request.user, **serializer.validated_data)
        return self._answer(journey, status.HTTP_201_CREATED)

    def update(self, request, sandbox_id=None, pk=None, partial=False):
        journey = self.get_object()
        serializer = JourneyUpdateSerializer(journey, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        if "graph" in changes:
            raise RuleViolation("Write the graph with PUT …/graph/.", rule="journey_graph", field="graph")
        return self._answer(service.update_journey(journey, by=request.user, **changes))

    def partial_update(self, request, sandbox_id=None, pk=None):
        return self.update(request, sandbox_id, pk, partial=True)

    def destroy(self, request, sandbox_id=None, pk=None):
        service.delete_journey(self.get_object(), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(summary="Save the graph", request=GraphInputSerializer, responses={200: JourneySerializer, 400: ERROR_400, 404: ERROR_404})
    @action(detail=True, methods=["put"])
    def graph(self, request, sandbox_id=None, pk=None):
        data = GraphInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return self._answer(service.save_graph(self.get_object(), data.validated_data["graph"], by=request.user))

    @extend_schema(
        summary="Edit the graph",
        description="Applies one operation with its guardrails (add_node {after, node_type, slot, config}, add_path "
        "{split_id, label, condition}, connect {source_id, slot, target_id}, delete_node {node_id}, delete_path "
        "{split_id, path_id}, move_node {node_id, direction}, update_node {node_id, config}, update_path {split_id, "
        "path_id, label, condition}, set_other_path {split_id, enabled}) and answers the new graph. Nothing is saved.",
        request=EditInputSerializer,
        responses={200: inline_serializer("EditedGraph", {"graph": serializers.JSONField()}), 400: ERROR_400},
    )
    @action(detail=True, methods=["post"])
    def edit(self, request, sandbox_id=None, pk=None):
        data = EditInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        graph = service.edit_graph(self.get_object(), v["op"], v.get("graph"), **v["args"])
        return Response({"graph": graph})

    @extend_schema(
        summary="Validate",
        description="Lists every problem, node by node. A valid draft becomes validated; an invalid one is a draft.",
        request=None,
        responses={200: ValidationResultSerializer, 400: ERROR_400, 404: ERROR_404},
    )
    @action(detail=True, methods=["post"])
    def validate(self, request, sandbox_id=None, pk=None):
        errors = service.check_journey(self.get_object(), by=request.user)
        journey = self.get_object()
        return Response({"valid": not errors, "state": journey.state, "errors": errors})

    @extend_schema(
        summary="Publish",
        description="Refused (400, error.errors) until valid. Otherwise queued: a version is frozen, converted to "
        "its campaign plan and the journey goes live.",
        request=None,
        responses={202: JourneySerializer, 400: PUBLISH_400, 404: ERROR_404},
    )
    @action(detail=True, methods=["post"])
    def publish(self, request, sandbox_id=None, pk=None):
        journey = service.request_publish(self.get_object(), by=request.user)
        return self._answer(journey, status.HTTP_202_ACCEPTED)

    @extend_schema(summary="Close to new entries", request=None, responses={200: JourneySerializer, 400: ERROR_400, 404: ERROR_404})
    @action(detail=True, methods=["post"])
    def close(self, request, sandbox_id=None, pk=None):
        return self._answer(service.close_journey(self.get_object(), by=request.user))

    @extend_schema(summary="Abort", request=None, responses={200: JourneySerializer, 400: ERROR_400, 404: ERROR_404})
    @action(detail=True, methods=["post"])
    def abort(self, request, sandbox_id=None, pk=None):
        return self._answer(service.abort_journey(self.get_object(), by=request.user))

    @extend_schema(summary="Duplicate", request=DuplicateInputSerializer, responses={201: JourneySerializer, 400: ERROR_400, 404: ERROR_404})
    @action(detail=True, methods=["post"])
    def duplicate(self, request, sandbox_id=None, pk=None):
        data = DuplicateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        copy = service.duplicate_journey(self.get_object(), name=data.validated_data.get("name"), by=request.user)
        return self._answer(copy, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Campaign plan",
        description="The campaigns (smart list triggers + filters, flow steps) and segments of the live version.",
        responses={200: OpenApiTypes.OBJECT, 404: ERROR_404},
    )
    @action(detail=True, methods=["get"])
    def plan(self, request, sandbox_id=None, pk=None):
        journey = self.get_object()
        plan = plan_of(journey.current_version) if journey.current_version_id else None
        if plan is None:
            body = {"code": "not_found", "message": "This journey has not been published: it has no campaign plan yet."}
            return Response({"error": body}, status=status.HTTP_404_NOT_FOUND)
        return Response(plan)


@extend_schema_view(
    list=extend_schema(summary="Email assets"),
    retrieve=extend_schema(summary="One email asset", responses={200: EmailAssetSerializer, 404: ERROR_404}),
    create=extend_schema(summary="Create an email asset", responses={201: EmailAssetSerializer, 400: ERROR_400, 403: ERROR_403}),
    update=extend_schema(summary="Replace an email asset", responses={200: EmailAssetSerializer, 400: ERROR_400, 404: ERROR_404}),
    partial_update=extend_schema(summary="Change an email asset", responses={200: EmailAssetSerializer, 400: ERROR_400, 404: ERROR_404}),
    destroy=extend_schema(summary="Delete an email asset", description="Refused while a journey uses it.", responses={204: None, 400: ERROR_400, 404: ERROR_404}),
)
class EmailAssetViewSet(SandboxScopedViewSet):
    queryset = EmailAsset.objects.all()
    serializer_class = EmailAssetSerializer
    READ_LIKE_ACTIONS = ("preview",)

    def _save(self, serializer, email=None):
        v = {**({} if email is None else EmailAssetSerializer(email).data), **serializer.validated_data}
        fields = ("name", "subject", "body_html", "body_text", "from_name", "from_email")
        return email_service.save_email(self.sandbox, email=email, by=self.request.user, **{f: v.get(f, "") for f in fields})

    def create(self, request, sandbox_id=None):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(self.get_serializer(self._save(serializer)).data, status=status.HTTP_201_CREATED)

    def update(self, request, sandbox_id=None, pk=None, partial=False):
        email = self.get_object()
        serializer = self.get_serializer(email, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        return Response(self.get_serializer(self._save(serializer, email)).data)

    def partial_update(self, request, sandbox_id=None, pk=None):
        return self.update(request, sandbox_id, pk, partial=True)

    def destroy(self, request, sandbox_id=None, pk=None):
        email_service.delete_email(self.get_object(), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @property
    def write_role(self):
        from cdp.choices import Role

        return Role.VIEWER if self.action in self.READ_LIKE_ACTIONS else Role.MARKETER

    @extend_schema(
        summary="Preview for a person",
        description="The email with the person's (and their primary account's) values in its tokens.",
        request=EmailPreviewInputSerializer,
        responses={200: EmailPreviewSerializer, 400: ERROR_400, 404: ERROR_404},
    )
    @action(detail=True, methods=["post"])
    def preview(self, request, sandbox_id=None, pk=None):
        email = self.get_object()
        data = EmailPreviewInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        person_id = data.validated_data.get("person_id")
        if person_id is None and data.validated_data.get("email"):
            person = email_service.find_person(self.sandbox, data.validated_data["email"])
            if person is None:
                raise RuleViolation("No person with this email address in this sandbox.", rule="unknown_person", field="email")
            person_id = person.pk
        if person_id is None:
            raise RuleViolation("Pick a person: give person_id or email.", rule="unknown_person", field="person_id")
        rendered = email_service.preview_email(email, person_id)
        return Response({"person_id": person_id, **rendered.__dict__})
