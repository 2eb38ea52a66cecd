"""Journey reports: the dashboard of every journey of the sandbox (status, enrollment completion,
email sends/opens/clicks), a journey's runtime page (node counters, recent runtime events) and
its CSV export (one row per person per node visit). Numbers come from journeys.services.runtime,
the same functions the API uses."""

from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path
from django.utils.text import slugify
from django.views.generic import TemplateView, View

from cdp.views.mixins import SandboxRoleRequiredMixin
from journeys.models import Journey, JourneyEvent
from journeys.services.runtime import journey_stats, node_counts, visits_csv

RECENT_EVENTS = 50


class JourneyReportsView(SandboxRoleRequiredMixin, TemplateView):
    template_name = "journeys/reports/dashboard.html"

    def get_context_data(self, **kwargs):
        journeys = list(Journey.objects.for_sandbox(self.sandbox).select_related("audience").order_by("name"))
        stats = journey_stats(journeys)
        rows = [{"journey": j, **stats[j.pk]} for j in journeys]
        totals = {
            key: sum(r["emails"][key] for r in rows) for key in ("sent", "opened", "clicked")
        } | {"active": sum(r["enrollments"]["active"] for r in rows), "live": sum(j.state == "live" for j in journeys)}
        return super().get_context_data(rows=rows, totals=totals, **kwargs)


class JourneyRuntimeView(SandboxRoleRequiredMixin, TemplateView):
    template_name = "journeys/reports/journey.html"

    def get_context_data(self, pk, **kwargs):
        journey = get_object_or_404(Journey.objects.for_sandbox(self.sandbox).select_related("current_version", "audience"), pk=pk)
        graph = journey.current_version.graph if journey.current_version_id else journey.graph
        counts = node_counts(journey)
        nodes = [
            {"id": node_id, "type": node.get("type", ""), "label": node.get("label") or node.get("action") or "", **counts.get(node_id, {})}
            for node_id, node in (graph.get("nodes") or {}).items()
        ]
        events = JourneyEvent.objects.filter(journey=journey).order_by("-at", "-id")[:RECENT_EVENTS]
        return super().get_context_data(journey=journey, stats=journey_stats([journey])[journey.pk], nodes=nodes, events=events, **kwargs)


class JourneyVisitsCsvView(SandboxRoleRequiredMixin, View):
    def get(self, request, pk):
        journey = get_object_or_404(Journey.objects.for_sandbox(self.sandbox), pk=pk)
        response = StreamingHttpResponse(visits_csv(journey), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{slugify(journey.name) or "journey"}-{journey.pk}-visits.csv"'
        return response


app_name = "reports"

urlpatterns = [
    path("", JourneyReportsView.as_view(), name="dashboard"),
    path("<int:pk>/", JourneyRuntimeView.as_view(), name="journey"),
    path("<int:pk>/visits.csv", JourneyVisitsCsvView.as_view(), name="visits-csv"),
]
