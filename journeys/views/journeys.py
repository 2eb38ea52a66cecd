"""Journey pages under /journeys/: the list, new / settings forms, a journey's canvas (edited by
static/js/journey_canvas.js through the REST API while it is a draft; read-only with per-node
counts once live), its campaign plan, close / abort / duplicate, and the email assets with a
preview per person. Every rule is in journeys.services; refusals land on the form or as a message.
"""

import datetime as dt

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils import timezone
from django.views.generic import TemplateView

from cdp.choices import AudienceKind, Role
from cdp.exceptions import RuleViolation
from cdp.models import Audience, MarketingList
from cdp.views.mixins import SandboxRoleRequiredMixin
from journeys import graph as graphs
from journeys.models import EmailAsset, Journey, JourneyState
from journeys.models.journeys import EDITABLE_STATES, RUNNING_STATES
from journeys.services import emails as email_service
from journeys.services import journeys as service
from journeys.services.campaigns import plan_of


def node_counts(journey) -> dict:
    """Per-node counters from the runtime (zeros until it has run the journey)."""
    try:
        from journeys.services.runtime import node_counts as runtime_counts
    except ImportError:
        return {}
    return runtime_counts(journey)


def journey_stats(journeys) -> dict:
    """Enrollment and email figures per journey id from the runtime (empty without it)."""
    try:
        from journeys.services.runtime import journey_stats as runtime_stats
    except ImportError:
        return {}
    return runtime_stats(journeys)


def add_rule_violation(form, violation: RuleViolation):
    field = violation.field if violation.field in form.fields else None
    form.add_error(field, violation.message)


# ------------------------------------------------------------------------------------- forms
class JourneyForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    audience = forms.ModelChoiceField(
        queryset=Audience.objects.none(), required=False, empty_label="— pick later on the canvas —",
        help_text="The account audience whose accounts enter the journey.",
    )  # fmt: skip
    start_at = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"))
    end_at = forms.DateTimeField(
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="Required; at most 3 years after the start.",
    )
    allow_reentry = forms.BooleanField(required=False, label="Accounts may enter again")
    reentry_days = forms.IntegerField(required=False, min_value=0, label="…at least this many days apart")

    def __init__(self, *args, sandbox, **kwargs):
        super().__init__(*args, **kwargs)
        # Person audiences are listed too, so picking one is answered with the rule, not hidden.
        self.fields["audience"].queryset = Audience.objects.for_sandbox(sandbox).order_by("-kind", "name")
        self.fields["audience"].label_from_instance = lambda a: f"{a.name} ({'account' if a.kind == AudienceKind.ACCOUNT else 'person'} audience)"

    def values(self) -> dict:
        data = self.cleaned_data
        days = data.get("reentry_days")
        return {
            "name": data["name"], "description": data["description"],
            "audience_id": data["audience"].pk if data["audience"] else None,
            "start_at": data["start_at"], "end_at": data["end_at"], "allow_reentry": data["allow_reentry"],
            "reentry_interval": dt.timedelta(days=days) if days and data["allow_reentry"] else None,
        }  # fmt: skip


class EmailForm(forms.Form):
    name = forms.CharField(max_length=200)
    subject = forms.CharField(max_length=255, help_text='Tokens: {{person.first_name}}, {{account.name}}, … with | default: "…".')
    from_name = forms.CharField(max_length=120, required=False)
    from_email = forms.EmailField(required=False, help_text="Empty: the site's default sender.")
    body_html = forms.CharField(required=False, label="HTML body", widget=forms.Textarea(attrs={"rows": 12, "class": "mono"}))
    body_text = forms.CharField(required=False, label="Text body", widget=forms.Textarea(attrs={"rows": 5, "class": "mono"}), help_text="Empty: made from the HTML body.")


# ------------------------------------------------------------------------------------- pages
class JourneyPage(SandboxRoleRequiredMixin, TemplateView):
    def get_context_data(self, **kwargs):
        return super().get_context_data(can_write=self.request.sandbox_role.allows(Role.MARKETER), **kwargs)

    def journey(self, pk) -> Journey:
        return get_object_or_404(Journey.objects.for_sandbox(self.sandbox).select_related("audience", "current_version"), pk=pk)


class JourneyListView(JourneyPage):
    template_name = "journeys/journeys/list.html"

    def get_context_data(self, **kwargs):
        journeys = list(Journey.objects.for_sandbox(self.sandbox).select_related("audience").order_by("name"))
        state = self.request.GET.get("state")
        if state in JourneyState.values:
            journeys = [j for j in journeys if j.state == state]
        stats = journey_stats(journeys)
        for journey in journeys:
            figures = stats.get(journey.pk, {})
            enrollments, emails = figures.get("enrollments", {}), figures.get("emails", {})
            journey.entered, journey.active, journey.sent = enrollments.get("total", 0), enrollments.get("active", 0), emails.get("sent", 0)
        return super().get_context_data(journeys=journeys, state=state or "", states=JourneyState.choices, **kwargs)


class JourneyFormView(JourneyPage):
    """New journey (no pk) or a journey's settings."""

    template_name = "journeys/journeys/form.html"
    read_role = Role.MARKETER

    def get(self, request, pk=None):
        journey = self.journey(pk) if pk else None
        if journey is not None:
            initial = {
                "name": journey.name, "description": journey.description, "audience": journey.audience_id,
                "start_at": timezone.localtime(journey.start_at), "end_at": timezone.localtime(journey.end_at),
                "allow_reentry": journey.allow_reentry,
                "reentry_days": journey.reentry_interval.days if journey.reentry_interval else None,
            }  # fmt: skip
        else:
            now = timezone.localtime().replace(second=0, microsecond=0)
            initial = {"start_at": now, "end_at": now + dt.timedelta(days=90)}
        form = JourneyForm(initial=initial, sandbox=self.sandbox)
        return self.render_to_response(self.get_context_data(form=form, journey=journey))

    def post(self, request, pk=None):
        journey = self.journey(pk) if pk else None
        form = JourneyForm(request.POST, sandbox=self.sandbox)
        if form.is_valid():
            try:
                if journey is None:
                    journey = service.create_journey(self.sandbox, by=request.user, **form.values())
                    messages.success(request, f"Journey “{journey.name}” created: build it on the canvas.")
                else:
                    journey = service.update_journey(journey, by=request.user, **form.values())
                    messages.success(request, "Settings saved.")
                return redirect("journeys:journey", pk=journey.pk)
            except RuleViolation as violation:
                add_rule_violation(form, violation)
        return self.render_to_response(self.get_context_data(form=form, journey=journey), status=400)


class JourneyDetailView(JourneyPage):
    """The journey map: the canvas (editable while draft/validated), with per-node counts."""

    template_name = "journeys/journeys/detail.html"

    def get_context_data(self, pk, **kwargs):
        journey = self.journey(pk)
        editable = journey.state in EDITABLE_STATES and self.request.sandbox_role.allows(Role.MARKETER)
        graph = journey.current_version.graph if journey.current_version_id and not journey.is_editable else journey.graph
        api = reverse("journey-detail", kwargs={"sandbox_id": self.sandbox.pk, "pk": journey.pk})
        canvas = {
            "graph": graph,
            "editable": editable,
            "state": journey.state,
            "counts": node_counts(journey),
            "urls": {
                "journey": api, "graph": f"{api}graph/", "edit": f"{api}edit/", "validate": f"{api}validate/",
                "publish": f"{api}publish/",
                "pql": reverse("audience-validate", kwargs={"sandbox_id": self.sandbox.pk}),
            },  # fmt: skip
            "catalog": self.catalog(),
        }
        running = journey.state in RUNNING_STATES
        return super().get_context_data(journey=journey, canvas=canvas, editable=editable, running=running, **kwargs)

    def catalog(self) -> dict:
        """What the side panel's pickers offer (ids and names of this sandbox's objects)."""
        from journeys.choices import DEFAULT_ROLES, BuyingGroupStatus
        from journeys.models import BuyingGroupRole, SolutionInterest, Stage

        stages = {}
        for model_id, name in Stage.objects.for_sandbox(self.sandbox).order_by("position", "id").values_list("stages_model_id", "name"):
            stages.setdefault(model_id, []).append(name)
        return {
            "audiences": [
                {"id": a.pk, "name": a.name, "kind": a.kind} for a in Audience.objects.for_sandbox(self.sandbox).order_by("name")
            ],
            "emails": list(EmailAsset.objects.for_sandbox(self.sandbox).order_by("name").values("id", "name")),
            "lists": list(MarketingList.objects.for_sandbox(self.sandbox).order_by("name").values("id", "name")),
            "journeys": list(Journey.objects.for_sandbox(self.sandbox).order_by("name").values("id", "name")),
            "solution_interests": [
                {"id": si.pk, "name": si.name, "stages": stages.get(si.stages_model_id, [])}
                for si in SolutionInterest.objects.for_sandbox(self.sandbox).order_by("name")
            ],
            "roles": sorted(set(DEFAULT_ROLES) | set(BuyingGroupRole.objects.for_sandbox(self.sandbox).values_list("name", flat=True))),
            "statuses": BuyingGroupStatus.values,
            "actions": graphs.ACTION_LABELS,
            "types": graphs.TYPE_LABELS,
            "events": list(graphs.LISTEN_EVENTS),
            "units": list(graphs.UNITS),
            "max_paths": graphs.MAX_PATHS,
        }


class JourneyPlanView(JourneyPage):
    template_name = "journeys/journeys/plan.html"

    def get_context_data(self, pk, **kwargs):
        journey = self.journey(pk)
        plan = plan_of(journey.current_version) if journey.current_version_id else None
        return super().get_context_data(journey=journey, plan=plan, **kwargs)


class JourneyTransitionView(JourneyPage):
    """POST close / abort / duplicate / delete from the journey page."""
    http_method_names = ["post"]  # a form action, not a page

    read_role = Role.MARKETER
    operation = ""

    def post(self, request, pk):
        journey = self.journey(pk)
        try:
            if self.operation == "close":
                service.close_journey(journey, by=request.user)
                messages.success(request, "Closed: no new accounts enter; those inside carry on.")
            elif self.operation == "abort":
                service.abort_journey(journey, by=request.user)
                messages.success(request, "Aborted: accounts inside go no further.")
            elif self.operation == "duplicate":
                copy = service.duplicate_journey(journey, by=request.user)
                messages.success(request, f"“{copy.name}” is a new draft copy of “{journey.name}”.")
                return redirect("journeys:journey", pk=copy.pk)
            elif self.operation == "delete":
                service.delete_journey(journey, by=request.user)
                messages.success(request, f"Journey “{journey.name}” deleted.")
                return redirect("journeys:journeys")
        except RuleViolation as violation:
            messages.error(request, violation.message)
        return redirect("journeys:journey", pk=journey.pk)


# ------------------------------------------------------------------------------------- emails
class EmailListView(JourneyPage):
    template_name = "journeys/journeys/emails.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(emails=EmailAsset.objects.for_sandbox(self.sandbox).order_by("name"), **kwargs)


class EmailFormView(JourneyPage):
    """New email (no pk) or edit one, with a preview for a person picked by email address."""

    template_name = "journeys/journeys/email_form.html"
    read_role = Role.MARKETER

    def email(self, pk):
        return get_object_or_404(EmailAsset.objects.for_sandbox(self.sandbox), pk=pk) if pk else None

    def get(self, request, pk=None):
        email = self.email(pk)
        fields = ("name", "subject", "from_name", "from_email", "body_html", "body_text")
        form = EmailForm(initial={f: getattr(email, f) for f in fields} if email else {})
        return self.render_to_response(self.context(form, email))

    def context(self, form, email):
        preview, preview_error, address = None, "", self.request.GET.get("preview", "").strip()
        if email is not None and address:
            person = email_service.find_person(self.sandbox, address)
            if person is None:
                preview_error = f"No person with the email address {address} in this sandbox."
            else:
                preview = {"person": person, **email_service.preview_email(email, person.pk).__dict__}
        return self.get_context_data(form=form, email=email, preview=preview, preview_error=preview_error, preview_address=address)

    def post(self, request, pk=None):
        email = self.email(pk)
        form = EmailForm(request.POST)
        if form.is_valid():
            try:
                saved = email_service.save_email(self.sandbox, email=email, by=request.user, **form.cleaned_data)
            except RuleViolation as violation:
                add_rule_violation(form, violation)
            else:
                messages.success(request, f"Email “{saved.name}” saved.")
                return redirect("journeys:email", pk=saved.pk)
        return self.render_to_response(self.context(form, email), status=400)


class EmailDeleteView(JourneyPage):
    http_method_names = ["post"]  # a form action, not a page
    read_role = Role.MARKETER

    def post(self, request, pk):
        email = get_object_or_404(EmailAsset.objects.for_sandbox(self.sandbox), pk=pk)
        try:
            email_service.delete_email(email, by=request.user)
        except RuleViolation as violation:
            messages.error(request, violation.message)
            return redirect("journeys:email", pk=email.pk)
        messages.success(request, f"Email “{email.name}” deleted.")
        return redirect("journeys:emails")


urlpatterns = [
    path("", JourneyListView.as_view(), name="journeys"),
    path("new/", JourneyFormView.as_view(), name="journey-new"),
    path("<int:pk>/", JourneyDetailView.as_view(), name="journey"),
    path("<int:pk>/settings/", JourneyFormView.as_view(), name="journey-settings"),
    path("<int:pk>/plan/", JourneyPlanView.as_view(), name="journey-plan"),
    *[
        path(f"<int:pk>/{operation}/", JourneyTransitionView.as_view(operation=operation), name=f"journey-{operation}")
        for operation in ("close", "abort", "duplicate", "delete")
    ],
    path("emails/", EmailListView.as_view(), name="emails"),
    path("emails/new/", EmailFormView.as_view(), name="email-new"),
    path("emails/<int:pk>/", EmailFormView.as_view(), name="email"),
    path("emails/<int:pk>/delete/", EmailDeleteView.as_view(), name="email-delete"),
]
