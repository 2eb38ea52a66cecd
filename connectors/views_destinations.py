"""Pages: destinations (catalog, list, create, edit), the dataflow wizard and edit page, dataflow
detail with its activation history, pause/resume, "run now" and dead letters.

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
from cdp.forms_audiences import add_rule_violation
from cdp.models import Audience
from cdp.views.mixins import SandboxRoleRequiredMixin
from connectors.destinations import catalog
from connectors.forms_destinations import DataflowForm, DestinationForm
from connectors.models import ActivationRun, Dataflow, DataflowState, DeadLetter, Destination, DestinationKind
from connectors.services.runs import newest_run_prefetch
from connectors.services import activation


class ServiceFormView(SandboxRoleRequiredMixin, TemplateView):
    """A form whose valid input goes to a service call (``save``); the service's refusals come back on
    the form, under the field they name."""

    def get_form(self, data=None):
        raise NotImplementedError

    def save(self, form) -> str:
        """Call the service with the form's data; return the URL to go to next."""
        raise NotImplementedError

    def render_form(self, form):
        return self.render_to_response(self.get_context_data(form=form))

    def get(self, request, *args, **kwargs):
        return self.render_form(self.get_form())

    def post(self, request, *args, **kwargs):
        form = self.get_form(request.POST)
        if form.is_valid():
            try:
                return redirect(self.save(form))
            except RuleViolation as violation:
                add_rule_violation(form, violation)
        return self.render_form(form)


class DestinationsView(SandboxRoleRequiredMixin, TemplateView):
    template_name = "connectors/destinations/list.html"

    def get_context_data(self, **kwargs):
        role = self.request.sandbox_role
        return super().get_context_data(
            catalog=catalog(),
            destinations=Destination.objects.for_sandbox(self.sandbox).select_related("pairing__marketo_instance"),
            dataflows=Dataflow.objects.for_sandbox(self.sandbox).select_related("destination").prefetch_related(
                "audiences", newest_run_prefetch(ActivationRun, "dataflow", self.sandbox)
            ),
            can_admin=role.allows(Role.ADMIN),
            can_write=role.allows(Role.MARKETER),
            **kwargs,
        )


class DestinationFormView(ServiceFormView):
    template_name = "connectors/destinations/destination_form.html"
    read_role = Role.ADMIN
    write_role = Role.ADMIN
    destination = None  # the destination being edited

    def kind(self) -> DestinationKind:
        return DestinationKind(self.destination.kind if self.destination else self.kwargs["kind"])

    def get_form(self, data=None):
        return DestinationForm(data, kind=self.kind(), organization=self.sandbox.organization, destination=self.destination)

    def render_form(self, form):
        entry = next(e for e in catalog() if e["kind"] == self.kind())
        return self.render_to_response(self.get_context_data(form=form, entry=entry, destination=self.destination))


class DestinationCreateView(DestinationFormView):
    def dispatch(self, request, *args, **kwargs):
        if kwargs["kind"] not in DestinationKind.values:
            raise Http404("No such destination kind.")
        return super().dispatch(request, *args, **kwargs)

    def save(self, form) -> str:
        destination = activation.create_destination(self.sandbox, by=self.request.user, kind=self.kind(), **form.service_arguments())
        messages.success(self.request, f"Created destination “{destination.name}”.")
        return reverse("connectors:destinations")


class DestinationEditView(DestinationFormView):
    def get_form(self, data=None):
        queryset = Destination.objects.for_sandbox(self.sandbox).select_related("pairing")
        self.destination = get_object_or_404(queryset, pk=self.kwargs["pk"])
        return super().get_form(data)

    def save(self, form) -> str:
        destination = activation.update_destination(self.destination, by=self.request.user, **form.service_arguments())
        messages.success(self.request, f"Saved destination “{destination.name}”.")
        return reverse("connectors:destinations")


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


class DataflowMixin(SandboxRoleRequiredMixin):
    def get_dataflow(self):
        queryset = Dataflow.objects.for_sandbox(self.sandbox).select_related("destination").prefetch_related("audiences")
        return get_object_or_404(queryset, pk=self.kwargs["pk"])


class DataflowWizardView(ServiceFormView):
    """Audience → destination → mapping → schedule, as steps of one form (static/js/dataflow_wizard.js)."""

    template_name = "connectors/destinations/wizard.html"
    read_role = Role.MARKETER
    dataflow = None  # the dataflow being edited

    def get_form(self, data=None):
        if self.dataflow is not None:
            return DataflowForm(data, sandbox=self.sandbox, dataflow=self.dataflow)
        return DataflowForm(data, sandbox=self.sandbox, initial={"audiences": self.request.GET.getlist("audience")})

    def render_form(self, form):
        sandbox = self.sandbox
        destinations = form.fields["destination"].queryset
        wizard = {
            "audiences": {a.pk: a.kind for a in Audience.objects.for_sandbox(sandbox).only("pk", "kind")},
            "sources": {kind: activation.mapping_sources(kind) for kind in ("person", "account")},
            "defaults": {
                d.pk: {kind: activation.default_mapping(d, kind) for kind in ("person", "account")} for d in destinations
            },
        }
        return self.render_to_response(
            self.get_context_data(
                form=form, wizard_json=json.dumps(wizard), has_destinations=destinations.exists(), dataflow=self.dataflow
            )
        )

    def save(self, form) -> str:
        data = form.cleaned_data
        dataflow = activation.create_dataflow(
            self.sandbox, by=self.request.user, name=data["name"], destination=data["destination"],
            audiences=list(data["audiences"]), mapping=data["mapping"], mode=data["mode"], batch_time=data["batch_time"],
        )  # fmt: skip
        messages.success(self.request, f"Created dataflow “{dataflow.name}”.")
        return reverse("connectors:dataflow", kwargs={"pk": dataflow.pk})


class DataflowEditView(DataflowMixin, DataflowWizardView):
    """The wizard's steps, filled with the dataflow's settings; its destination stays."""

    def get_form(self, data=None):
        self.dataflow = self.get_dataflow()
        return super().get_form(data)

    def save(self, form) -> str:
        data = form.cleaned_data
        dataflow = activation.update_dataflow(
            self.dataflow, name=data["name"], audiences=list(data["audiences"]), mapping=data["mapping"],
            mode=data["mode"], batch_time=data["batch_time"],
        )  # fmt: skip
        messages.success(self.request, f"Saved dataflow “{dataflow.name}”.")
        return reverse("connectors:dataflow", kwargs={"pk": dataflow.pk})


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
            can_admin=self.request.sandbox_role.allows(Role.ADMIN),
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
