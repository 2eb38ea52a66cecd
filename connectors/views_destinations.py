"""Pages: destinations (catalog, list, create), the dataflow wizard, dataflow detail with its
activation history, pause/resume, "run now" and dead letters.

Viewers read; marketers build and run dataflows; sandbox admins create and delete destinations.
Every change goes through ``connectors.services.activation``; a refusal is shown on the form.
"""

import json

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.generic import TemplateView, View

from cdp.choices import Role
from cdp.exceptions import RuleViolation
from cdp.models import Audience
from cdp.views.mixins import SandboxRoleRequiredMixin
from connectors.destinations import catalog
from connectors.forms_destinations import DataflowForm, DestinationForm
from connectors.models import ActivationRun, Dataflow, DataflowState, DeadLetter, Destination, DestinationKind
from connectors.services import activation


def _show_refusal(form, violation: RuleViolation) -> None:
    form.add_error(violation.field if violation.field in form.fields else None, violation.message)


class DestinationsView(SandboxRoleRequiredMixin, TemplateView):
    template_name = "connectors/destinations/list.html"

    def get_context_data(self, **kwargs):
        role = self.request.sandbox_role
        return super().get_context_data(
            catalog=catalog(),
            destinations=Destination.objects.for_sandbox(self.sandbox).select_related("pairing__marketo_instance"),
            dataflows=Dataflow.objects.for_sandbox(self.sandbox).select_related("destination").prefetch_related("audiences", "runs"),
            can_admin=role.allows(Role.ADMIN),
            can_write=role.allows(Role.MARKETER),
            **kwargs,
        )


class DestinationCreateView(SandboxRoleRequiredMixin, TemplateView):
    template_name = "connectors/destinations/destination_form.html"
    read_role = Role.ADMIN
    write_role = Role.ADMIN

    def dispatch(self, request, *args, **kwargs):
        if kwargs["kind"] not in DestinationKind.values:
            raise Http404("No such destination kind.")
        return super().dispatch(request, *args, **kwargs)

    def get_form(self, data=None):
        return DestinationForm(data, kind=self.kwargs["kind"], organization=self.sandbox.organization)

    def render_form(self, form):
        kind = DestinationKind(self.kwargs["kind"])
        entry = next(e for e in catalog() if e["kind"] == kind)
        return self.render_to_response(self.get_context_data(form=form, kind=kind, entry=entry))

    def get(self, request, *args, **kwargs):
        return self.render_form(self.get_form())

    def post(self, request, *args, **kwargs):
        form = self.get_form(request.POST)
        if form.is_valid():
            try:
                destination = activation.create_destination(self.sandbox, by=request.user, **form.service_arguments())
            except RuleViolation as violation:
                _show_refusal(form, violation)
            else:
                messages.success(request, f"Created destination “{destination.name}”.")
                return redirect("connectors:destinations")
        return self.render_form(form)


class DestinationDeleteView(SandboxRoleRequiredMixin, View):
    write_role = Role.ADMIN
    http_method_names = ["post"]

    def post(self, request, pk):
        destination = get_object_or_404(Destination.objects.for_sandbox(self.sandbox), pk=pk)
        try:
            activation.delete_destination(destination)
        except RuleViolation as violation:
            messages.error(request, violation.message)
        else:
            messages.success(request, f"Deleted destination “{destination.name}”.")
        return redirect("connectors:destinations")


class DataflowWizardView(SandboxRoleRequiredMixin, TemplateView):
    """Audience → destination → mapping → schedule, as steps of one form (static/js/dataflow_wizard.js)."""

    template_name = "connectors/destinations/wizard.html"
    read_role = Role.MARKETER

    def render_form(self, form):
        sandbox = self.sandbox
        destinations = Destination.objects.for_sandbox(sandbox).filter(enabled=True)
        wizard = {
            "audiences": {a.pk: a.kind for a in Audience.objects.for_sandbox(sandbox).only("pk", "kind")},
            "sources": {kind: activation.mapping_sources(kind) for kind in ("person", "account")},
            "defaults": {
                d.pk: {kind: activation.default_mapping(d, kind) for kind in ("person", "account")} for d in destinations
            },
        }
        return self.render_to_response(
            self.get_context_data(form=form, wizard_json=json.dumps(wizard), has_destinations=destinations.exists())
        )

    def get(self, request, *args, **kwargs):
        return self.render_form(DataflowForm(sandbox=self.sandbox, initial={"audiences": request.GET.getlist("audience")}))

    def post(self, request, *args, **kwargs):
        form = DataflowForm(request.POST, sandbox=self.sandbox)
        if form.is_valid():
            data = form.cleaned_data
            try:
                dataflow = activation.create_dataflow(
                    self.sandbox, by=request.user, name=data["name"], destination=data["destination"],
                    audiences=list(data["audiences"]), mapping=data["mapping"], mode=data["mode"],
                    batch_time=data["batch_time"],
                )  # fmt: skip
            except RuleViolation as violation:
                _show_refusal(form, violation)
            else:
                messages.success(request, f"Created dataflow “{dataflow.name}”.")
                return redirect("connectors:dataflow", pk=dataflow.pk)
        return self.render_form(form)


class DataflowMixin(SandboxRoleRequiredMixin):
    def get_dataflow(self):
        queryset = Dataflow.objects.for_sandbox(self.sandbox).select_related("destination").prefetch_related("audiences")
        return get_object_or_404(queryset, pk=self.kwargs["pk"])


class DataflowDetailView(DataflowMixin, TemplateView):
    template_name = "connectors/destinations/dataflow.html"

    def get_template_names(self):
        # HTMX polls the activation history while runs come in.
        return ["connectors/destinations/_runs.html"] if self.request.htmx else [self.template_name]

    def get_context_data(self, **kwargs):
        dataflow = self.get_dataflow()
        runs = list(ActivationRun.objects.filter(dataflow=dataflow)[:50])
        problem_run = next((r for r in runs if r.unmatched or r.failed or r.created), None)
        return super().get_context_data(
            dataflow=dataflow,
            runs=runs,
            problem_run=problem_run,
            outcomes=problem_run.outcomes.all()[:200] if problem_run else [],
            dead_letters=DeadLetter.objects.filter(dataflow=dataflow, status=DeadLetter.Status.PENDING)[:100],
            can_write=self.request.sandbox_role.allows(Role.MARKETER),
            **kwargs,
        )


class DataflowActionView(DataflowMixin, View):
    """POST pause | resume | run | delete."""

    http_method_names = ["post"]

    def post(self, request, pk, action):
        dataflow = self.get_dataflow()
        try:
            if action == "pause":
                activation.set_dataflow_state(dataflow, DataflowState.PAUSED)
                messages.success(request, f"Paused “{dataflow.name}”.")
            elif action == "resume":
                activation.set_dataflow_state(dataflow, DataflowState.ACTIVE)
                messages.success(request, f"Resumed “{dataflow.name}”.")
            elif action == "run":
                activation.run_dataflow_now(dataflow)
                messages.success(request, f"“{dataflow.name}” is running; its run appears below.")
            elif action == "delete":
                activation.delete_dataflow(dataflow)
                messages.success(request, f"Deleted dataflow “{dataflow.name}”.")
                return redirect("connectors:destinations")
            else:
                raise Http404("No such action.")
        except RuleViolation as violation:
            messages.error(request, violation.message)
        return redirect("connectors:dataflow", pk=dataflow.pk)


class DeadLetterResendView(DataflowMixin, View):
    http_method_names = ["post"]

    def post(self, request, pk, letter_pk):
        dataflow = self.get_dataflow()
        letter = get_object_or_404(DeadLetter.objects.filter(dataflow=dataflow), pk=letter_pk)
        try:
            delivered = activation.resend_dead_letter(letter)
        except RuleViolation as violation:
            messages.error(request, violation.message)
        else:
            if delivered:
                messages.success(request, "Batch delivered.")
            else:
                messages.error(request, f"The batch failed again: {letter.last_error}")
        return redirect(reverse("connectors:dataflow", kwargs={"pk": dataflow.pk}) + "#dead-letters")
