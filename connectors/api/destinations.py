"""Activation over REST, under /api/sandboxes/{sandbox_id}/…:

- destinations/ (CRUD; sandbox admins write): Marketo static list, webhook, CSV export. Secrets are
  write-only; ``has_secret`` tells whether one is stored.
- dataflows/ (CRUD; marketers write) + {id}/pause/, {id}/resume/, {id}/run/ ("run now").
- activation-runs/ (read-only, ?dataflow=): what each run sent, matched, left unmatched, failed;
  a run's detail lists its unmatched and failed people.
- dead-letters/ (read-only, ?dataflow=) + {id}/resend/: webhook batches that failed every attempt.

Everything goes through ``connectors.services.activation``; refusals answer 400 ``rule_violation``.
"""

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from cdp.api.base import NotOffered, SandboxScopedViewSet
from cdp.api.serializers import ERROR_400, ERROR_403, ERROR_404
from cdp.choices import Role
from cdp.exceptions import RuleViolation
from cdp.models import Audience
from connectors.destinations import catalog
from connectors.models import (
    ActivationOutcome,
    ActivationRun,
    Dataflow,
    DataflowMode,
    DataflowState,
    DeadLetter,
    Destination,
    DestinationKind,
    MarketoInstance,
    RunStatus,
    RunTrigger,
)
from connectors.services import activation
from connectors.services.runs import newest_run_prefetch



def choice_text(choices, description):
    """A string restricted by pattern, not an enum: "kind"/"state"/"status" enums would collide with
    other models' fields of the same name in the schema."""
    values = "|".join(choices.values)

    @extend_schema_field({"type": "string", "pattern": f"^({values})$", "description": description})
    class ChoiceText(serializers.ChoiceField):
        def __init__(self, **kwargs):
            super().__init__(choices=choices.choices, **kwargs)

    return ChoiceText


DestinationKindField = choice_text(DestinationKind, "marketo_static_list, webhook or csv_export")
DataflowModeField = choice_text(DataflowMode, "streaming or batch")
DataflowStateField = choice_text(DataflowState, "active or paused")
RunStatusField = choice_text(RunStatus, "running, succeeded, stopped (quota; resumes next run) or failed")
RunTriggerField = choice_text(RunTrigger, "streaming, schedule or manual")
DeadLetterStatusField = choice_text(DeadLetter.Status, "pending or resent")


class DestinationSerializer(serializers.ModelSerializer):
    kind = DestinationKindField(help_text="Can't change after creation.")
    config = serializers.JSONField(
        help_text='Marketo: {"list_id"}. Webhook: {"url", "batch_size", "max_attempts", "timeout_seconds"}. '
        'CSV: {"directory"} (inside the server\'s export folder).'
    )
    marketo_instance = serializers.IntegerField(
        required=False, allow_null=True, source="pairing.marketo_instance_id",
        help_text="Marketo: the instance (of this organization) to send to; paired as a destination if needed (give it again to re-pair after an unpairing).",
    )  # fmt: skip
    secret = serializers.CharField(
        required=False, write_only=True, allow_blank=True, trim_whitespace=False,
        help_text="Webhook: HMAC-SHA256 signing secret (≥16 characters). Never returned; omit to keep it.",
    )  # fmt: skip
    has_secret = serializers.SerializerMethodField()

    class Meta:
        model = Destination
        fields = [
            "id", "name", "kind", "config", "marketo_instance", "allow_lead_creation", "secret", "has_secret",
            "enabled", "created_at",
        ]  # fmt: skip
        read_only_fields = ["created_at"]

    def get_has_secret(self, destination) -> bool:
        return bool(destination.secret)


class DataflowRunSummarySerializer(serializers.ModelSerializer):
    status = RunStatusField(read_only=True)
    trigger = RunTriggerField(read_only=True)

    class Meta:
        model = ActivationRun
        fields = ["id", "status", "trigger", "started_at", "finished_at", "sent", "matched", "unmatched", "failed", "skipped"]


class AudienceIdsField(serializers.ListField):
    """Ids in, ids out; the view resolves them within the sandbox (an id of another sandbox is just unknown)."""

    def to_representation(self, audiences):
        return sorted(a.pk for a in audiences.all())


class DataflowSerializer(serializers.ModelSerializer):
    destination = serializers.IntegerField(source="destination_id", help_text="A destination of this sandbox.")
    audiences = AudienceIdsField(
        child=serializers.IntegerField(), help_text="Audience ids of this sandbox (all person or all account)."
    )
    mapping = serializers.JSONField(
        required=False,
        help_text='[{"source": "email", "target": "email"}, …]; sources are profile fields, identity.<namespace> '
        "or attributes.<key>. Defaults per destination (Marketo: email + ECID).",
    )
    mode = DataflowModeField(required=False, help_text="streaming (default) or batch (daily at batch_time, UTC).")
    state = DataflowStateField(read_only=True)
    last_run = serializers.SerializerMethodField()

    class Meta:
        model = Dataflow
        fields = [
            "id", "name", "destination", "audiences", "mapping", "mode", "batch_time", "state", "cursors",
            "next_batch_at", "last_run", "created_at",
        ]  # fmt: skip
        read_only_fields = ["cursors", "next_batch_at", "created_at"]

    @extend_schema_field(DataflowRunSummarySerializer(allow_null=True))
    def get_last_run(self, dataflow):
        # Prefetched by DataflowViewSet (the newest run only); a just-saved dataflow reads it.
        runs = getattr(dataflow, "latest_runs", None)
        if runs is None:
            runs = dataflow.runs.all()[:1]
        return DataflowRunSummarySerializer(runs[0]).data if runs else None


class ActivationOutcomeSerializer(serializers.ModelSerializer):
    class Meta:
        model = ActivationOutcome
        fields = ["member_id", "email", "action", "outcome", "detail"]


class ActivationRunSerializer(DataflowRunSummarySerializer):
    class Meta(DataflowRunSummarySerializer.Meta):
        fields = DataflowRunSummarySerializer.Meta.fields + [
            "dataflow", "changes", "created", "file", "error", "cursors_from", "cursors_to",
        ]  # fmt: skip


class ActivationRunDetailSerializer(ActivationRunSerializer):
    outcomes = serializers.SerializerMethodField(help_text="Unmatched, failed and created people (first 1000).")

    class Meta(ActivationRunSerializer.Meta):
        fields = ActivationRunSerializer.Meta.fields + ["outcomes"]

    @extend_schema_field(ActivationOutcomeSerializer(many=True))
    def get_outcomes(self, run):
        return ActivationOutcomeSerializer(run.outcomes.all()[:1000], many=True).data


class DeadLetterSerializer(serializers.ModelSerializer):
    status = DeadLetterStatusField(read_only=True)

    class Meta:
        model = DeadLetter
        fields = ["id", "dataflow", "run", "batch_id", "payload", "attempts", "last_error", "status", "created_at", "resent_at"]


class DestinationKindSerializer(serializers.Serializer):
    kind = serializers.CharField()
    label = serializers.CharField()
    description = serializers.CharField()


def register(router, sandbox_router):
    sandbox_router.register("destinations", DestinationViewSet, basename="destination")
    sandbox_router.register("dataflows", DataflowViewSet, basename="dataflow")
    sandbox_router.register("activation-runs", ActivationRunViewSet, basename="activation-run")
    sandbox_router.register("dead-letters", DeadLetterViewSet, basename="dead-letter")


def _by_dataflow(queryset, request):
    dataflow = request.query_params.get("dataflow")
    if dataflow is None:
        return queryset
    if not dataflow.isdigit():
        raise RuleViolation("dataflow must be a dataflow id.", rule="invalid_filter", field="dataflow")
    return queryset.filter(dataflow_id=int(dataflow))


# ------------------------------------------------------------------------------------- viewsets
@extend_schema_view(
    list=extend_schema(summary="Destinations of the sandbox"),
    retrieve=extend_schema(summary="One destination", responses={200: DestinationSerializer, 404: ERROR_404}),
    create=extend_schema(
        summary="Create a destination (sandbox admins)",
        description="A Marketo destination pairs the instance with the sandbox as a destination (pairing rules apply). "
        "allow_lead_creation is false by default; only admins can turn it on.",
        responses={201: DestinationSerializer, 400: ERROR_400, 403: ERROR_403},
    ),
    update=extend_schema(summary="Replace a destination's settings (sandbox admins)", responses={200: DestinationSerializer, 400: ERROR_400, 403: ERROR_403, 404: ERROR_404}),
    partial_update=extend_schema(summary="Edit a destination (sandbox admins)", responses={200: DestinationSerializer, 400: ERROR_400, 403: ERROR_403, 404: ERROR_404}),
    destroy=extend_schema(summary="Delete a destination without dataflows (sandbox admins)", responses={204: None, 400: ERROR_400, 403: ERROR_403, 404: ERROR_404}),
)
class DestinationViewSet(SandboxScopedViewSet):
    queryset = Destination.objects.all()
    serializer_class = DestinationSerializer
    write_role = Role.ADMIN

    def get_queryset(self):
        return super().get_queryset().select_related("pairing")

    def _instance(self, data):
        instance_id = data.get("pairing", {}).get("marketo_instance_id")
        if instance_id is None:
            return None
        instance = MarketoInstance.objects.filter(organization_id=self.sandbox.organization_id, pk=instance_id).first()
        if instance is None:
            raise RuleViolation("No Marketo instance with this id in the sandbox's organization.", rule="destination_config", field="marketo_instance")
        return instance

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = activation.create_destination(
            self.sandbox, by=self.request.user, name=data["name"], kind=data["kind"], config=data["config"],
            marketo_instance=self._instance(data), allow_lead_creation=data.get("allow_lead_creation", False),
            secret=data.get("secret", ""), enabled=data.get("enabled", True),
        )  # fmt: skip

    def perform_update(self, serializer):
        data = serializer.validated_data
        destination = serializer.instance
        if data.get("kind", destination.kind) != destination.kind:
            raise RuleViolation("A destination's kind can't change; create another destination.", rule="destination_kind", field="kind")
        serializer.instance = activation.update_destination(
            destination, by=self.request.user, name=data.get("name"), config=data.get("config"),
            allow_lead_creation=data.get("allow_lead_creation"), secret=data.get("secret") or None, enabled=data.get("enabled"),
            marketo_instance=self._instance(data),
        )  # fmt: skip

    def perform_destroy(self, destination):
        activation.delete_destination(destination)

    @extend_schema(summary="The destination kinds (catalog)", responses={200: DestinationKindSerializer(many=True)})
    @action(detail=False, methods=["get"], pagination_class=None)
    def kinds(self, request, sandbox_id=None):
        return Response(catalog())


@extend_schema_view(
    list=extend_schema(summary="Dataflows of the sandbox"),
    retrieve=extend_schema(summary="One dataflow", responses={200: DataflowSerializer, 404: ERROR_404}),
    create=extend_schema(
        summary="Create a dataflow: audiences → destination (marketers)",
        description="A streaming dataflow sends the audiences' current members at once, then every change.",
        responses={201: DataflowSerializer, 400: ERROR_400, 403: ERROR_403},
    ),
    update=extend_schema(summary="Replace a dataflow's settings", responses={200: DataflowSerializer, 400: ERROR_400, 403: ERROR_403, 404: ERROR_404}),
    partial_update=extend_schema(summary="Edit a dataflow", responses={200: DataflowSerializer, 400: ERROR_400, 403: ERROR_403, 404: ERROR_404}),
    destroy=extend_schema(summary="Delete a dataflow", responses={204: None, 403: ERROR_403, 404: ERROR_404}),
)
class DataflowViewSet(SandboxScopedViewSet):
    queryset = Dataflow.objects.all()
    serializer_class = DataflowSerializer

    def get_queryset(self):
        return super().get_queryset().select_related("destination").prefetch_related(
            "audiences", newest_run_prefetch(ActivationRun, "dataflow", self.sandbox)
        )

    def _targets(self, data):
        destination = audiences = None
        if "destination_id" in data:
            destination = Destination.objects.for_sandbox(self.sandbox).filter(pk=data["destination_id"]).first()
            if destination is None:
                raise RuleViolation("No destination with this id in this sandbox.", rule="dataflow_destination", field="destination")
        if "audiences" in data:
            ids = set(data["audiences"])
            audiences = list(Audience.objects.for_sandbox(self.sandbox).filter(pk__in=ids))
            if len(audiences) != len(ids):
                raise RuleViolation("Every audience must be an audience of this sandbox.", rule="dataflow_audiences", field="audiences")
        return destination, audiences

    def perform_create(self, serializer):
        data = serializer.validated_data
        destination, audiences = self._targets(data)
        serializer.instance = activation.create_dataflow(
            self.sandbox, by=self.request.user, name=data["name"], destination=destination, audiences=audiences,
            mapping=data.get("mapping"), mode=data.get("mode", DataflowMode.STREAMING), batch_time=data.get("batch_time"),
        )  # fmt: skip

    def perform_update(self, serializer):
        data = serializer.validated_data
        destination, audiences = self._targets(data)
        if destination is not None and destination.pk != serializer.instance.destination_id:
            raise RuleViolation("A dataflow's destination can't change; create another dataflow.", rule="dataflow_destination", field="destination")
        serializer.instance = activation.update_dataflow(
            serializer.instance, name=data.get("name"), audiences=audiences, mapping=data.get("mapping"),
            mode=data.get("mode"), batch_time=data.get("batch_time"),
        )  # fmt: skip

    def perform_destroy(self, dataflow):
        activation.delete_dataflow(dataflow)

    def _set_state(self, state):
        dataflow = activation.set_dataflow_state(self.get_object(), state)
        return Response(self.get_serializer(dataflow).data)

    @extend_schema(summary="Pause a dataflow", request=None, responses={200: DataflowSerializer, 403: ERROR_403, 404: ERROR_404})
    @action(detail=True, methods=["post"])
    def pause(self, request, sandbox_id=None, pk=None):
        return self._set_state(DataflowState.PAUSED)

    @extend_schema(
        summary="Resume a dataflow", description="A streaming dataflow sends what changed while it was paused.",
        request=None, responses={200: DataflowSerializer, 403: ERROR_403, 404: ERROR_404},
    )  # fmt: skip
    @action(detail=True, methods=["post"])
    def resume(self, request, sandbox_id=None, pk=None):
        return self._set_state(DataflowState.ACTIVE)

    @extend_schema(
        summary="Run a dataflow now", description="Queues a push; its run appears under activation-runs.",
        request=None, responses={202: None, 400: ERROR_400, 403: ERROR_403, 404: ERROR_404},
    )  # fmt: skip
    @action(detail=True, methods=["post"])
    def run(self, request, sandbox_id=None, pk=None):
        activation.run_dataflow_now(self.get_object())
        return Response(status=status.HTTP_202_ACCEPTED)


DATAFLOW_FILTER = OpenApiParameter("dataflow", int, description="Only this dataflow's rows.")


@extend_schema_view(
    list=extend_schema(summary="Activation runs, newest first", parameters=[DATAFLOW_FILTER]),
    retrieve=extend_schema(summary="One run with its unmatched and failed people", responses={200: ActivationRunDetailSerializer, 404: ERROR_404}),
)
class ActivationRunViewSet(SandboxScopedViewSet):
    queryset = ActivationRun.objects.all()
    serializer_class = ActivationRunSerializer
    http_method_names = ["get", "head", "options"]

    def get_queryset(self):
        return _by_dataflow(super().get_queryset(), self.request)

    def get_serializer_class(self):
        return ActivationRunDetailSerializer if self.action == "retrieve" else ActivationRunSerializer


@extend_schema_view(
    list=extend_schema(summary="Dead-lettered webhook batches", parameters=[DATAFLOW_FILTER]),
    retrieve=extend_schema(summary="One dead-lettered batch", responses={200: DeadLetterSerializer, 404: ERROR_404}),
)
class DeadLetterViewSet(SandboxScopedViewSet):
    queryset = DeadLetter.objects.all()
    serializer_class = DeadLetterSerializer
    http_method_names = ["get", "post", "head", "options"]
    # POST is here for resend/ only: dead letters are made by runs, never by clients.
    create = update = partial_update = destroy = NotOffered()

    def get_queryset(self):
        return _by_dataflow(super().get_queryset().select_related("dataflow__destination"), self.request)

    @extend_schema(
        summary="Re-send a dead-lettered batch", description="Same batch id (Idempotency-Key) as the first attempts.",
        request=None, responses={200: DeadLetterSerializer, 400: ERROR_400, 403: ERROR_403, 404: ERROR_404},
    )  # fmt: skip
    @action(detail=True, methods=["post"])
    def resend(self, request, sandbox_id=None, pk=None):
        dead_letter = self.get_object()
        activation.resend_dead_letter(dead_letter)
        return Response(self.get_serializer(dead_letter).data)
