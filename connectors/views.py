"""Pages: "Instances & pairings" (the organization's Marketo instances and Salesforce orgs, the
current sandbox's pairings) and "Sources" (what feeds the current sandbox).

Anyone with a role in the sandbox reads them. Sandbox admins pair and unpair; organization admins
register, edit and delete instances. Refusals come from ``connectors.services.pairings`` and are
shown as form errors with the same message the API answers.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404, redirect
from django.views.generic import TemplateView, View

from cdp.choices import Role
from cdp.services import accessible_sandboxes, is_organization_admin
from cdp.views.mixins import SandboxRoleRequiredMixin
from connectors.forms import MarketoInstanceForm, PairingForm, SalesforceOrgForm
from connectors.models import MarketoInstance, Pairing, SalesforceOrg
from connectors.services import RULES, PairingRuleViolation, create_pairing, delete_instance, delete_pairing


def sandbox_pairings(sandbox, kind=None):
    pairings = Pairing.objects.for_sandbox(sandbox).select_related("marketo_instance", "salesforce_org", "created_by")
    return pairings.filter(kind=kind) if kind else pairings


class InstancesView(SandboxRoleRequiredMixin, TemplateView):
    template_name = "connectors/instances.html"

    def get_context_data(self, pair_form=None, **kwargs):
        organization = self.sandbox.organization
        user = self.request.user
        # "Paired with" names only sandboxes the reader may see.
        visible_pairings = Prefetch(
            "pairings",
            queryset=Pairing.objects.filter(sandbox__in=accessible_sandboxes(user)).select_related("sandbox"),
        )
        return super().get_context_data(
            organization=organization,
            marketo_instances=MarketoInstance.objects.filter(organization=organization)
            .defer("client_secret")
            .prefetch_related(visible_pairings),
            salesforce_orgs=SalesforceOrg.objects.filter(organization=organization)
            .defer("client_secret", "private_key")
            .prefetch_related(visible_pairings),
            pairings=sandbox_pairings(self.sandbox),
            pair_form=pair_form or PairingForm(organization=organization),
            can_pair=self.request.sandbox_role.allows(Role.ADMIN),
            can_manage_instances=is_organization_admin(user, organization),
            rules=RULES,
            **kwargs,
        )


class PairingCreateView(InstancesView):
    """The "Pair" form of the instances page; a refusal re-renders that page with the rule's message."""

    write_role = Role.ADMIN
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        form = PairingForm(request.POST, organization=self.sandbox.organization)
        if form.is_valid():
            try:
                pairing = create_pairing(
                    sandbox=self.sandbox,
                    kind=form.cleaned_data["kind"],
                    marketo_instance=form.cleaned_data["marketo_instance"],
                    salesforce_org=form.cleaned_data["salesforce_org"],
                    created_by=request.user,
                )
            except PairingRuleViolation as violation:
                form.add_error(None, violation.message)
            else:
                messages.success(
                    request,
                    f"Paired {pairing.instance.name} with {self.sandbox.title} as "
                    f"{pairing.get_kind_display().lower()}.",
                )
                return redirect("connectors:instances")
        return self.render_to_response(self.get_context_data(pair_form=form))


class PairingDeleteView(SandboxRoleRequiredMixin, View):
    write_role = Role.ADMIN
    http_method_names = ["post"]

    def post(self, request, pk):
        pairing = get_object_or_404(sandbox_pairings(self.sandbox), pk=pk)
        delete_pairing(pairing)
        messages.success(
            request, f"Unpaired {pairing.instance.name} ({pairing.get_kind_display().lower()}) from {self.sandbox.title}."
        )
        return redirect("connectors:instances")


class OrganizationAdminRequiredMixin(SandboxRoleRequiredMixin):
    """Instances belong to the current sandbox's organization; only its admins manage them."""

    read_role = Role.ADMIN
    write_role = Role.ADMIN

    def dispatch(self, request, *args, **kwargs):
        sandbox = getattr(request, "sandbox", None)
        if request.user.is_authenticated and sandbox is not None:
            if not is_organization_admin(request.user, sandbox.organization):
                raise PermissionDenied(f"Managing instances needs an admin of organization '{sandbox.organization}'.")
        return super().dispatch(request, *args, **kwargs)


class InstanceFormView(OrganizationAdminRequiredMixin, TemplateView):
    """Register (no pk) or edit (pk) a Marketo instance or a Salesforce org."""

    template_name = "connectors/instance_form.html"
    model = None
    form_class = None
    noun = ""

    def get_object(self):
        if "pk" not in self.kwargs:
            return None
        return get_object_or_404(self.model, pk=self.kwargs["pk"], organization=self.sandbox.organization)

    def get_form(self, data=None):
        return self.form_class(data, instance=self.get_object(), organization=self.sandbox.organization)

    def render_form(self, form):
        context = self.get_context_data(form=form, noun=self.noun, editing=form.instance.pk is not None)
        return self.render_to_response(context)

    def get(self, request, *args, **kwargs):
        return self.render_form(self.get_form())

    def post(self, request, *args, **kwargs):
        form = self.get_form(request.POST)
        if not form.is_valid():
            return self.render_form(form)
        editing = form.instance.pk is not None
        instance = form.save()
        messages.success(request, f"{'Saved' if editing else 'Registered'} {self.noun} “{instance.name}”.")
        return redirect("connectors:instances")


class MarketoInstanceFormView(InstanceFormView):
    model = MarketoInstance
    form_class = MarketoInstanceForm
    noun = "Marketo instance"


class SalesforceOrgFormView(InstanceFormView):
    model = SalesforceOrg
    form_class = SalesforceOrgForm
    noun = "Salesforce org"


class InstanceDeleteView(OrganizationAdminRequiredMixin, View):
    http_method_names = ["post"]
    model = None
    secret_fields: tuple[str, ...] = ()

    def post(self, request, pk):
        instances = self.model.objects.defer(*self.secret_fields)
        instance = get_object_or_404(instances, pk=pk, organization=self.sandbox.organization)
        try:
            delete_instance(instance)
        except PairingRuleViolation as violation:
            messages.error(request, violation.message)
        else:
            messages.success(request, f"Deleted “{instance.name}”.")
        return redirect("connectors:instances")


class MarketoInstanceDeleteView(InstanceDeleteView):
    model = MarketoInstance
    secret_fields = ("client_secret",)


class SalesforceOrgDeleteView(InstanceDeleteView):
    model = SalesforceOrg
    secret_fields = ("client_secret", "private_key")
