"""Source connections and their sync runs over REST:

- /api/sandboxes/{sandbox_id}/sources/ CRUD; {id}/backfill/ and {id}/sync/ queue a run (202),
  {id}/test/ checks the credentials and URLs (200 with ok true/false);
- /api/sandboxes/{sandbox_id}/sync-runs/ read-only, with progress and counts per entity;
  {id}/resume/ continues a failed or paused run from its checkpoint, {id}/cancel/ stops one.

Any role reads; sandbox admins write. Everything goes through ``connectors.services.sources``,
whose refusals answer 400 with code ``rule_violation`` (e.g. marketo_source_one_organization,
instance_same_organization, source_connection_duplicate, sync_in_progress).
"""

from django_filters import rest_framework as django_filters
from drf_spectacular.utils import (
    extend_schema,
    extend_schema_field,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from cdp.api.base import NotOffered, SandboxScopedViewSet
from cdp.api.serializers import ERROR_400, ERROR_403, ERROR_404
from cdp.choices import Role
from connectors.api.serializers import MemberMarketoInstanceField, MemberSalesforceOrgField
from connectors.models import SourceConnection, SyncMode, SyncRun
from connectors.services.runs import newest_run_prefetch
from connectors.services.sources import (
    SourceError,
    cancel_run,
    create_source_connection,
    delete_source_connection,
    resume_run,
    start_sync,
    test_source_connection,
    update_source_connection,
)



def register(router, sandbox_router):
    sandbox_router.register("sources", SourceConnectionViewSet, basename="source")
    sandbox_router.register("sync-runs", SyncRunViewSet, basename="sync-run")


class SyncRunSerializer(serializers.ModelSerializer):
    percent = serializers.IntegerField(read_only=True, help_text="progress_done / progress_total in percent.")
    counts = serializers.JSONField(
        read_only=True,
        help_text="Per entity (person, account, event, list_member, campaign_member): received, created, updated, "
        "merged, rejected, duplicates (already stored, not counted twice), deleted.",
    )

    class Meta:
        model = SyncRun
        fields = [
            "id", "connection", "mode", "state", "phase", "progress_done", "progress_total", "percent", "counts",
            "error", "resume_after", "attempts", "created_at", "started_at", "heartbeat_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = fields


class SourceConnectionSerializer(serializers.ModelSerializer):
    marketo_instance = MemberMarketoInstanceField(
        required=False, allow_null=True, help_text="A Marketo instance id (or give salesforce_org). Fixed after creation."
    )
    salesforce_org = MemberSalesforceOrgField(
        required=False, allow_null=True, help_text="A Salesforce org id (or give marketo_instance). Fixed after creation."
    )
    latest_run = serializers.SerializerMethodField(help_text="The most recent sync run, if any.")
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = SourceConnection
        fields = [
            "id", "kind", "name", "marketo_instance", "salesforce_org", "enabled", "sync_interval_minutes",
            "backfill_since", "options", "last_synced_at", "next_sync_at", "latest_run", "created_by", "created_at",
        ]  # fmt: skip
        read_only_fields = ["kind", "last_synced_at", "next_sync_at", "created_at"]
        validators = []  # the service decides, duplicates and pairing rules included

    def validate_sync_interval_minutes(self, value):
        if value < 1:
            raise serializers.ValidationError("Sync at most once a minute: give 1 or more.")
        return value

    def validate_options(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("options is a JSON object.")
        return value

    def validate(self, attrs):
        if self.instance is not None:
            for name in ("marketo_instance", "salesforce_org"):
                if name in attrs and attrs[name] != getattr(self.instance, name):
                    raise serializers.ValidationError({name: "The instance of a source can't change; create another source."})
                attrs.pop(name, None)
        return attrs

    @extend_schema_field(SyncRunSerializer(allow_null=True))
    def get_latest_run(self, connection):
        # Prefetched by SourceConnectionViewSet (the newest run only); a just-saved connection reads it.
        runs = getattr(connection, "latest_runs", None)
        if runs is None:
            runs = connection.runs.all()[:1]
        return SyncRunSerializer(runs[0]).data if runs else None


@extend_schema_view(
    list=extend_schema(summary="Source connections of the sandbox"),
    retrieve=extend_schema(summary="One source connection", responses={200: SourceConnectionSerializer, 404: ERROR_404}),
    create=extend_schema(
        summary="Connect a source (sandbox admins)",
        description="Give name and exactly one of marketo_instance / salesforce_org. The instance is paired with the "
        "sandbox as a source if it isn't yet; the pairing rules apply (400 rule_violation naming the rule).",
        responses={201: SourceConnectionSerializer, 400: ERROR_400, 403: ERROR_403},
    ),
    update=extend_schema(summary="Change a source (sandbox admins)", responses={200: SourceConnectionSerializer, 400: ERROR_400, 403: ERROR_403, 404: ERROR_404}),
    partial_update=extend_schema(summary="Edit a source (sandbox admins)", responses={200: SourceConnectionSerializer, 400: ERROR_400, 403: ERROR_403, 404: ERROR_404}),
    destroy=extend_schema(
        summary="Disconnect a source (sandbox admins)",
        description="Synced data stays in the profile store; the source pairing stays too.",
        responses={204: None, 403: ERROR_403, 404: ERROR_404},
    ),
)
class SourceConnectionViewSet(SandboxScopedViewSet):
    queryset = SourceConnection.objects.all()
    serializer_class = SourceConnectionSerializer
    write_role = Role.ADMIN
    filterset_fields = ["kind", "enabled"]
    ordering_fields = ["name", "created_at", "last_synced_at"]

    def get_queryset(self):
        return super().get_queryset().select_related("created_by").prefetch_related(
            newest_run_prefetch(SyncRun, "connection", self.sandbox)
        )

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = create_source_connection(
            sandbox=self.sandbox,
            name=data["name"],
            marketo_instance=data.get("marketo_instance"),
            salesforce_org=data.get("salesforce_org"),
            created_by=self.request.user,
            enabled=data.get("enabled", True),
            sync_interval_minutes=data.get("sync_interval_minutes", 15),
            backfill_since=data.get("backfill_since"),
            options=data.get("options"),
        )

    def perform_update(self, serializer):
        serializer.instance = update_source_connection(serializer.instance, **serializer.validated_data)

    def perform_destroy(self, connection):
        delete_source_connection(connection)

    def _start(self, request, mode):
        run = start_sync(self.get_object(), mode, requested_by=request.user)
        return Response(SyncRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Start a historical backfill (sandbox admins)",
        request=None,
        responses={202: SyncRunSerializer, 400: ERROR_400, 403: ERROR_403, 404: ERROR_404},
    )
    @action(detail=True, methods=["post"])
    def backfill(self, request, sandbox_id=None, pk=None):
        return self._start(request, SyncMode.BACKFILL)

    @extend_schema(
        summary="Start an incremental sync now (sandbox admins)",
        request=None,
        responses={202: SyncRunSerializer, 400: ERROR_400, 403: ERROR_403, 404: ERROR_404},
    )
    @action(detail=True, methods=["post"])
    def sync(self, request, sandbox_id=None, pk=None):
        return self._start(request, SyncMode.INCREMENTAL)

    @extend_schema(
        summary="Test the connection (sandbox admins)",
        description="Gets a token and makes one cheap call. Answers 200 with ok false and the reason when it fails.",
        request=None,
        responses={
            200: inline_serializer("SourceTest", {"ok": serializers.BooleanField(), "message": serializers.CharField()}),
            403: ERROR_403,
            404: ERROR_404,
        },
    )
    @action(detail=True, methods=["post"])
    def test(self, request, sandbox_id=None, pk=None):
        try:
            return Response({"ok": True, "message": test_source_connection(self.get_object())})
        except SourceError as error:
            return Response({"ok": False, "message": str(error)})


class SyncRunFilterSet(django_filters.FilterSet):
    class Meta:
        model = SyncRun
        fields = ["connection", "mode", "state"]


@extend_schema_view(
    list=extend_schema(summary="Sync runs of the sandbox's sources, newest first"),
    retrieve=extend_schema(summary="One sync run (poll it for progress)", responses={200: SyncRunSerializer, 404: ERROR_404}),
)
class SyncRunViewSet(SandboxScopedViewSet):
    queryset = SyncRun.objects.all()
    serializer_class = SyncRunSerializer
    write_role = Role.ADMIN
    filterset_class = SyncRunFilterSet
    http_method_names = ["get", "post", "head", "options"]
    # Runs are started from their source (…/sources/{id}/backfill/ or sync/); POST is for the actions.
    create = update = partial_update = destroy = NotOffered()

    @extend_schema(
        summary="Resume a failed or paused run from its checkpoint (sandbox admins)",
        request=None,
        responses={202: SyncRunSerializer, 400: ERROR_400, 403: ERROR_403, 404: ERROR_404},
    )
    @action(detail=True, methods=["post"])
    def resume(self, request, sandbox_id=None, pk=None):
        return Response(SyncRunSerializer(resume_run(self.get_object())).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Cancel a run (sandbox admins)",
        request=None,
        responses={200: SyncRunSerializer, 403: ERROR_403, 404: ERROR_404},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, sandbox_id=None, pk=None):
        return Response(SyncRunSerializer(cancel_run(self.get_object())).data)
