"""Pages under /connectors/sources/: the source connections of the current sandbox (last sync,
status, a form to connect one), a source's page (test the connection, start a backfill or a sync,
progress polled through HTMX, run history with counts and errors, settings) and a run's page
(counts per entity, rejected records).

Anyone with a role in the sandbox reads; sandbox admins write. Everything goes through
``connectors.services.sources``; its refusals are shown on the form or as a message.
"""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.views.generic import TemplateView

from cdp.choices import Role
from cdp.exceptions import RuleViolation
from cdp.forms_audiences import add_rule_violation
from cdp.views.mixins import SandboxRoleRequiredMixin
from connectors.forms_sources import SourceConnectionForm, SourceSettingsForm
from connectors.choices import PairingKind
from connectors.models import Pairing, SourceConnection, SyncMode, SyncRejection, SyncRun
from connectors.services.runs import newest_run_prefetch
from connectors.services.sources import (
    COUNT_KEYS,
    SourceError,
    cancel_run,
    create_source_connection,
    delete_source_connection,
    resume_run,
    start_sync,
    test_source_connection,
    update_source_connection,
)

RUN_HISTORY = 20
REJECTIONS_SHOWN = 100


def count_rows(run: SyncRun) -> list[dict]:
    """The run's counts as table rows, one per entity."""
    return [{"entity": entity, **{key: values.get(key, 0) for key in COUNT_KEYS}} for entity, values in sorted(run.counts.items())]


class SourcePage(SandboxRoleRequiredMixin, TemplateView):
    write_role = Role.ADMIN

    def get_context_data(self, **kwargs):
        return super().get_context_data(can_write=self.request.sandbox_role.allows(Role.ADMIN), **kwargs)

    def connections(self):
        return SourceConnection.objects.for_sandbox(self.sandbox).select_related("marketo_instance", "salesforce_org")

    def connection(self, pk) -> SourceConnection:
        return get_object_or_404(self.connections(), pk=pk)

    def run(self, pk) -> SyncRun:
        return get_object_or_404(SyncRun.objects.for_sandbox(self.sandbox).select_related("connection"), pk=pk)


class SourceListView(SourcePage):
    template_name = "connectors/sources/list.html"

    def get_context_data(self, form=None, **kwargs):
        connections = list(self.connections().prefetch_related(newest_run_prefetch(SyncRun, "connection", self.sandbox)))
        for connection in connections:
            connection.latest_run = connection.latest_runs[0] if connection.latest_runs else None
        connected = {(c.marketo_instance_id, c.salesforce_org_id) for c in connections}
        pairings = Pairing.objects.for_sandbox(self.sandbox).filter(kind=PairingKind.SOURCE)
        return super().get_context_data(
            connections=connections,
            unconnected_pairings=[
                p for p in pairings.select_related("marketo_instance", "salesforce_org")
                if (p.marketo_instance_id, p.salesforce_org_id) not in connected
            ],
            form=form or SourceConnectionForm(organization=self.sandbox.organization),
            **kwargs,
        )

    def post(self, request):
        form = SourceConnectionForm(request.POST, organization=self.sandbox.organization)
        if form.is_valid():
            try:
                connection = create_source_connection(sandbox=self.sandbox, created_by=request.user, **form.service_arguments())
            except RuleViolation as violation:
                add_rule_violation(form, violation)
            else:
                messages.success(request, f"Connected {connection.name}. Start a backfill to bring in its history.")
                return redirect("connectors:source-detail", connection.pk)
        return self.render_to_response(self.get_context_data(form=form))


class SourceDetailView(SourcePage):
    template_name = "connectors/sources/detail.html"

    def get_context_data(self, pk, form=None, **kwargs):
        connection = self.connection(pk)
        runs = list(connection.runs.order_by("-created_at", "-pk")[:RUN_HISTORY])
        return super().get_context_data(
            connection=connection,
            runs=runs,
            active_runs=[run for run in runs if run.is_active],
            form=form or SourceSettingsForm(instance=connection),
            **kwargs,
        )

    def post(self, request, pk):
        connection = self.connection(pk)
        form = SourceSettingsForm(request.POST, instance=connection)
        if form.is_valid():
            update_source_connection(connection, **form.cleaned_data)
            messages.success(request, f"Saved {connection.name}.")
            return redirect("connectors:source-detail", connection.pk)
        return self.render_to_response(self.get_context_data(pk=pk, form=form))


class SourceActionView(SourcePage):
    """POST-only buttons of a source's page; the outcome is a message on that page."""

    http_method_names = ["post"]

    def post(self, request, pk, action):
        connection = self.connection(pk)
        try:
            if action == "test":
                messages.success(request, test_source_connection(connection))
            elif action in (SyncMode.BACKFILL, SyncMode.INCREMENTAL):
                run = start_sync(connection, action, requested_by=request.user)
                messages.success(request, f"{run.get_mode_display()} of {connection.name} queued.")
            elif action == "delete":
                delete_source_connection(connection)
                messages.success(request, f"Disconnected {connection.name}; what it synced stays in the profile store.")
                return redirect("connectors:sources")
            else:
                raise Http404("No such action.")
        except SourceError as error:
            messages.error(request, str(error))
        except RuleViolation as violation:
            messages.error(request, violation.message)
        return redirect("connectors:source-detail", connection.pk)


class RunDetailView(SourcePage):
    template_name = "connectors/sources/run.html"

    def get_context_data(self, pk, **kwargs):
        run = self.run(pk)
        rejections = SyncRejection.objects.for_sandbox(self.sandbox).filter(run=run)
        return super().get_context_data(
            run=run,
            connection=run.connection,
            counts=count_rows(run),
            rejections=rejections[:REJECTIONS_SHOWN],
            rejection_count=rejections.count(),
            **kwargs,
        )


class RunProgressView(SourcePage):
    """The progress block of a run, polled by HTMX every two seconds while the run is active."""

    template_name = "connectors/sources/_run_progress.html"

    def get_context_data(self, pk, **kwargs):
        run = self.run(pk)
        return super().get_context_data(run=run, counts=count_rows(run), **kwargs)


class RunActionView(SourcePage):
    http_method_names = ["post"]

    def post(self, request, pk, action):
        run = self.run(pk)
        try:
            if action == "resume":
                resume_run(run)
                messages.success(request, "The run continues from where it stopped.")
            elif action == "cancel":
                cancel_run(run)
                messages.success(request, "The run is cancelled.")
            else:
                raise Http404("No such action.")
        except RuleViolation as violation:
            messages.error(request, violation.message)
        return redirect("connectors:source-run", run.pk)
