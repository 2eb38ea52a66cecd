"""Audience pages under /audiences/: the list, the builder (new / edit) and an audience's page
(statistics, size over time, sample members, recent entries and exits, evaluate / export / delete).

The builder is a form around a rule tree kept in a hidden input, edited by
static/js/audience_builder.js; its live estimate, PQL tab and checks call the REST API
(…/audiences/preview/ and validate/), so there is one implementation of each. Saving goes
through ``cdp.services.audiences.save_audience``; its refusals land on the form. Every object is
looked up in the session's sandbox only.
"""

from django.contrib import messages
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.views.generic import TemplateView
from django_htmx.http import HttpResponseClientRefresh

from cdp.choices import AudienceKind, EvaluationState, EventType, MembershipStatus, Role
from cdp.exceptions import RuleViolation
from cdp.forms_audiences import AudienceForm, add_rule_violation, evaluation_interval_text
from cdp.services.audience_io import (
    attach_profiles,
    audiences_for_picker,
    definition_of,
    delete_audience,
    member_rows,
    members_csv,
    members_csv_name,
)
from cdp.models import Audience, AudienceEvaluation, AudienceMembershipChange
from cdp.segmentation.catalog import describe_subject
from cdp.services.audiences import audience_limits, queue_full_evaluation, save_audience
from cdp.views.mixins import SandboxRoleRequiredMixin

SAMPLE_MEMBERS = 50
RECENT_CHANGES = 50
CHART_RUNS = 120


class AudiencePage(SandboxRoleRequiredMixin, TemplateView):
    def get_context_data(self, **kwargs):
        return super().get_context_data(can_write=self.request.sandbox_role.allows(Role.MARKETER), **kwargs)

    def audience(self, pk):
        return get_object_or_404(Audience.objects.for_sandbox(self.sandbox), pk=pk)


class AudienceListView(AudiencePage):
    template_name = "cdp/audiences/list.html"

    def get_context_data(self, **kwargs):
        audiences = Audience.objects.for_sandbox(self.sandbox).order_by("name")
        kind = self.request.GET.get("kind")
        if kind in AudienceKind.values:
            audiences = audiences.filter(kind=kind)
        audiences = list(audiences)
        limits = audience_limits(self.sandbox)
        return super().get_context_data(
            audiences=audiences,
            kind=kind if kind in AudienceKind.values else "",
            failed=sum(a.state == EvaluationState.FAILED for a in audiences),
            limits=limits,
            **kwargs,
        )


# ------------------------------------------------------------------------------------ builder
class AudienceBuilderView(AudiencePage):
    """Create (no pk) or edit an audience. Marketers only, for the form as well as the save."""

    template_name = "cdp/audiences/builder.html"
    read_role = Role.MARKETER

    def get(self, request, pk=None):
        audience = self.audience(pk) if pk else None
        if audience is None:
            form = AudienceForm(initial={"kind": request.GET.get("kind", AudienceKind.PERSON)})
        else:
            form = AudienceForm(audience=audience)
        return self.render_to_response(self.builder_context(form, audience))

    def post(self, request, pk=None):
        audience = self.audience(pk) if pk else None
        form = AudienceForm(request.POST, audience=audience)
        if form.is_valid():
            data = form.cleaned_data
            try:
                saved = save_audience(
                    self.sandbox,
                    name=data["name"],
                    description=data["description"],
                    definition=data["parsed"].tree,
                    evaluation_interval=data["evaluation_interval"],
                    audience=audience,
                    by=request.user,
                )
            except RuleViolation as violation:
                add_rule_violation(form, violation)
            else:
                verb = "saved" if audience else "created"
                messages.success(request, f"Audience “{saved.name}” {verb}; it is being evaluated.")
                return redirect("cdp:audiences-detail", pk=saved.pk)
        return self.render_to_response(self.builder_context(form, audience), status=400)

    def builder_context(self, form, audience):
        api = reverse("audience-list", kwargs={"sandbox_id": self.sandbox.pk})
        return self.get_context_data(
            form=form,
            audience=audience,
            builder_schema={subject: describe_subject(subject) for subject in AudienceKind.values},
            builder_audiences=audiences_for_picker(self.sandbox, exclude=audience),
            builder_event_types=[{"value": value, "label": label} for value, label in EventType.choices],
            preview_url=f"{api}preview/",
            validate_url=f"{api}validate/",
        )


# ------------------------------------------------------------------------------- audience page
class AudienceDetailView(AudiencePage):
    template_name = "cdp/audiences/detail.html"

    def get_context_data(self, pk, **kwargs):
        audience = self.audience(pk)
        runs = AudienceEvaluation.objects.filter(sandbox=self.sandbox, audience=audience).order_by("-started_at", "-id")
        runs = list(runs[:CHART_RUNS])
        members = attach_profiles(audience, member_rows(audience)[:SAMPLE_MEMBERS])
        changes = AudienceMembershipChange.objects.filter(sandbox=self.sandbox, audience=audience).order_by("-at", "-id")
        changes = attach_profiles(audience, changes[:RECENT_CHANGES])
        return super().get_context_data(
            audience=audience,
            forms=definition_of(audience),
            interval=evaluation_interval_text(audience.evaluation_interval),
            chart=size_chart(list(reversed(runs))),
            runs=runs[:10],
            members=members,
            changes=changes,
            depends_on=audience.depends_on.order_by("name"),
            dependents=audience.dependents.order_by("name"),
            busy=audience.state in (EvaluationState.QUEUED, EvaluationState.EVALUATING),
            **kwargs,
        )


class AudienceEvaluateView(AudiencePage):
    """Queue a full evaluation now (POST)."""

    http_method_names = ["post"]  # TemplateView's GET would render without a template (a 500)

    def post(self, request, pk):
        audience = self.audience(pk)
        queue_full_evaluation(audience)
        messages.success(request, f"“{audience.name}” is queued for a full evaluation.")
        return redirect("cdp:audiences-detail", pk=audience.pk)


class AudienceStateView(AudiencePage):
    """Polled by the audience page while an evaluation is queued or running: reloads the page once
    it is over (nothing to swap until then)."""

    def get(self, request, pk):
        audience = self.audience(pk)
        if audience.state in (EvaluationState.QUEUED, EvaluationState.EVALUATING):
            return HttpResponse(status=204)
        return HttpResponseClientRefresh()


class AudienceDeleteView(AudiencePage):
    template_name = "cdp/audiences/delete.html"
    read_role = Role.MARKETER

    def get(self, request, pk):
        audience = self.audience(pk)
        dependents = audience.dependents.order_by("name")
        return self.render_to_response(self.get_context_data(audience=audience, dependents=dependents))

    def post(self, request, pk):
        audience = self.audience(pk)
        try:
            delete_audience(audience)
        except RuleViolation as violation:
            messages.error(request, violation.message)
            return redirect("cdp:audiences-detail", pk=audience.pk)
        messages.success(request, f"Audience “{audience.name}” deleted.")
        return redirect("cdp:audiences")


class AudienceMembersCsvView(AudiencePage):
    def get(self, request, pk):
        audience = self.audience(pk)
        status = request.GET.get("status", MembershipStatus.REALIZED)
        status = status if status in MembershipStatus.values else None
        response = StreamingHttpResponse(members_csv(audience, status=status), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{members_csv_name(audience)}"'
        return response


# ------------------------------------------------------------------------------------- chart
CHART_WIDTH, CHART_HEIGHT = 480, 200
CHART_PAD_LEFT, CHART_PAD_RIGHT, CHART_PAD_TOP, CHART_PAD_BOTTOM = 48, 10, 10, 26


def size_chart(runs) -> dict | None:
    """Size over time as SVG coordinates (drawn by the template; no chart library): a line through
    the size after each run, a dot on failed runs, a few axis labels. ``runs`` oldest first."""
    if not runs:
        return None
    times = [run.started_at.timestamp() for run in runs]
    sizes = [run.size for run in runs]
    t0, t1 = min(times), max(times)
    top = max(max(sizes), 1)
    top = _nice_ceiling(top)
    inner_w = CHART_WIDTH - CHART_PAD_LEFT - CHART_PAD_RIGHT
    inner_h = CHART_HEIGHT - CHART_PAD_TOP - CHART_PAD_BOTTOM

    def x(t):
        return CHART_PAD_LEFT + (inner_w / 2 if t1 == t0 else (t - t0) / (t1 - t0) * inner_w)

    def y(size):
        return CHART_PAD_TOP + inner_h - size / top * inner_h

    points = [(round(x(t), 1), round(y(s), 1)) for t, s in zip(times, sizes, strict=True)]
    line = " ".join(f"{px},{py}" for px, py in points)
    baseline = round(y(0), 1)
    area = f"M{points[0][0]},{baseline} " + " ".join(f"L{px},{py}" for px, py in points) + f" L{points[-1][0]},{baseline} Z"
    ticks = [{"y": round(y(top * i / 4), 1), "label": f"{int(top * i / 4):,}"} for i in range(5)]
    dots = [
        {"x": px, "y": py, "failed": bool(run.error), "title": _run_title(run)}
        for (px, py), run in zip(points, runs, strict=True)
    ]
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "left": CHART_PAD_LEFT,
        "right": CHART_WIDTH - CHART_PAD_RIGHT,
        "bottom": baseline,
        "line": line,
        "area": area,
        "ticks": ticks,
        "dots": dots if len(dots) <= 60 else [d for d in dots if d["failed"]] + [dots[-1]],
        "first": runs[0].started_at,
        "last": runs[-1].started_at,
        "label_y": CHART_HEIGHT - 8,
        "runs": len(runs),
    }


def _nice_ceiling(value: int) -> int:
    """The smallest 1/2/2.5/5 × 10ⁿ at or above ``value``: round axis labels."""
    magnitude = 1
    while magnitude * 10 <= value:
        magnitude *= 10
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return max(int(step * magnitude), 4)
    return value


def _run_title(run) -> str:
    when = run.started_at.strftime("%Y-%m-%d %H:%M")
    if run.error:
        return f"{when} · {run.get_mode_display()} run failed: {run.error[:200]}"
    changes = f"+{run.entered:,} / −{run.exited:,}"
    return f"{when} · {run.get_mode_display()} · size {run.size:,} ({changes}) · {run.duration_ms:,} ms"


# Included by cdp/urls.py at /audiences/ (names join the ``cdp`` namespace).
urlpatterns = [
    path("", AudienceListView.as_view(), name="audiences"),
    path("new/", AudienceBuilderView.as_view(), name="audiences-new"),
    path("<int:pk>/", AudienceDetailView.as_view(), name="audiences-detail"),
    path("<int:pk>/edit/", AudienceBuilderView.as_view(), name="audiences-edit"),
    path("<int:pk>/evaluate/", AudienceEvaluateView.as_view(), name="audiences-evaluate"),
    path("<int:pk>/state/", AudienceStateView.as_view(), name="audiences-state"),
    path("<int:pk>/delete/", AudienceDeleteView.as_view(), name="audiences-delete"),
    path("<int:pk>/members.csv", AudienceMembersCsvView.as_view(), name="audiences-members-csv"),
]
