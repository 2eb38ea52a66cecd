"""Admin pages under /settings/: organizations, their sandboxes and members, and API tokens.

Objects are looked up among those the user can see (others' answer 404); changes go through the
services in ``cdp.services``, which refuse what the user's role does not allow (403) and enforce the
business rules (shown on the form). Everyone sees these pages; only admins get the buttons.
"""

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views import View
from django.views.generic import FormView, TemplateView

from cdp.choices import Role
from cdp.exceptions import RuleViolation
from cdp.filtersets import ApiTokenFilterSet, MembershipFilterSet, OrganizationFilterSet
from cdp.forms import (
    MemberAddForm,
    MemberEditForm,
    OrganizationCreateForm,
    OrganizationRenameForm,
    SandboxCreateForm,
    SandboxResetForm,
    SandboxTitleForm,
    TokenIssueForm,
    apply_service_errors,
)
from cdp.models import SandboxRole
from cdp.services import (
    accessible_sandboxes,
    add_member_by_username,
    can_create_organization,
    can_delete_sandbox,
    create_organization,
    create_sandbox,
    delete_sandbox,
    is_organization_admin,
    issue_api_token_for,
    member_organizations,
    memberships_visible_to,
    organizations_overview,
    remove_member,
    rename_organization,
    require_organization_admin,
    require_sandbox_role,
    reset_sandbox,
    retitle_sandbox,
    revoke_api_token_as,
    sandbox_data_summary,
    sandbox_roles_of,
    token_owners_manageable_by,
    tokens_visible_to,
    update_member,
)

SERVICE_REFUSALS = (ValidationError, RuleViolation)


def organization_url(organization) -> str:
    return reverse("cdp:admin-organization", args=[organization.pk])


# --- Shared page shapes ---------------------------------------------------------------------


class LoadAndAuthorizeMixin(LoginRequiredMixin):
    """Subclasses load their object in ``load`` (404 when the user cannot see it) and check the
    user's right in ``authorize`` (403, for GET as well as POST: nobody gets a form they cannot
    submit)."""

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        self.load()
        self.authorize()
        return super().dispatch(request, *args, **kwargs)

    def load(self):
        pass

    def authorize(self):
        pass


class ServiceFormView(LoadAndAuthorizeMixin, FormView):
    """A form page whose valid form is handed to a service (``perform``); refusals land on the form."""

    template_name = "cdp/admin/form_page.html"
    page_title = ""
    intro = ""
    submit_label = "Save"
    danger = False

    def perform(self, form):
        raise NotImplementedError

    def form_valid(self, form):
        try:
            response = self.perform(form)
        except SERVICE_REFUSALS as exc:
            apply_service_errors(form, exc)
            return self.form_invalid(form)
        return response

    def cancel_url(self):
        return reverse("cdp:admin-organizations")

    def get_page_title(self):
        return self.page_title

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            page_title=self.get_page_title(),
            intro=self.intro,
            submit_label=self.submit_label,
            danger=self.danger,
            cancel_url=self.cancel_url(),
            **kwargs,
        )


class OrganizationScopedMixin:
    """Loads the organization from the URL among the user's own; its admins only."""

    def load(self):
        self.organization = get_object_or_404(member_organizations(self.request.user), pk=self.kwargs["pk"])

    def authorize(self):
        require_organization_admin(self.request.user, self.organization)

    def cancel_url(self):
        return organization_url(self.organization)


class SandboxScopedMixin:
    """Loads the sandbox from the URL among those the user can see; organization admins only."""

    def load(self):
        self.sandbox = get_object_or_404(accessible_sandboxes(self.request.user), pk=self.kwargs["pk"])
        self.organization = self.sandbox.organization

    def authorize(self):
        require_organization_admin(self.request.user, self.organization)

    def cancel_url(self):
        return organization_url(self.organization)


class MembershipScopedMixin:
    def load(self):
        self.membership = get_object_or_404(memberships_visible_to(self.request.user), pk=self.kwargs["pk"])
        self.organization = self.membership.organization

    def authorize(self):
        require_organization_admin(self.request.user, self.organization)

    def cancel_url(self):
        return organization_url(self.organization)


# --- Organizations --------------------------------------------------------------------------


class OrganizationListView(LoginRequiredMixin, TemplateView):
    template_name = "cdp/admin/organizations.html"

    def get_context_data(self, **kwargs):
        user = self.request.user
        organizations = organizations_overview(user).prefetch_related(
            Prefetch("sandboxes", queryset=accessible_sandboxes(user), to_attr="visible_sandboxes")
        )
        filterset = OrganizationFilterSet(self.request.GET or None, queryset=organizations)
        return super().get_context_data(
            filterset=filterset,
            organizations=filterset.qs,
            can_create=can_create_organization(user),
            **kwargs,
        )


class OrganizationCreateView(ServiceFormView):
    form_class = OrganizationCreateForm
    page_title = "New organization"
    intro = "An organization starts with a production sandbox named 'prod'. Add members and sandboxes next."
    submit_label = "Create organization"

    def authorize(self):
        if not can_create_organization(self.request.user):
            raise PermissionDenied("Only superusers can create organizations.")

    def perform(self, form):
        organization = create_organization(**form.cleaned_data, by=self.request.user)
        messages.success(self.request, f"Organization {organization.name} created with its production sandbox.")
        return redirect(organization_url(organization))


class OrganizationDetailView(LoginRequiredMixin, TemplateView):
    template_name = "cdp/admin/organization.html"

    def get_context_data(self, **kwargs):
        user = self.request.user
        organization = get_object_or_404(organizations_overview(user), pk=self.kwargs["pk"])
        is_admin = is_organization_admin(user, organization)
        roles = sandbox_roles_of(user)
        sandboxes = [
            (sandbox, roles.get(sandbox.pk), can_delete_sandbox(sandbox))
            for sandbox in accessible_sandboxes(user).filter(organization=organization)
        ]
        context = {
            "organization": organization,
            "is_admin": is_admin,
            "sandboxes": sandboxes,
            "sandbox_admin_ids": {sb.pk for sb, role, _ in sandboxes if role == Role.ADMIN},
        }
        memberships = (
            memberships_visible_to(user)
            .filter(organization=organization)
            .prefetch_related(Prefetch("sandbox_roles", queryset=SandboxRole.objects.select_related("sandbox")))
        )
        if is_admin:
            filterset = MembershipFilterSet(self.request.GET or None, queryset=memberships, request=self.request)
            context.update(member_filter=filterset, memberships=filterset.qs)
        else:
            # Members who are not admins see their own membership only.
            context["memberships"] = memberships
        return super().get_context_data(**context, **kwargs)


class OrganizationRenameView(OrganizationScopedMixin, ServiceFormView):
    form_class = OrganizationRenameForm
    page_title = "Rename organization"
    submit_label = "Rename"

    def get_initial(self):
        return {"name": self.organization.name}

    def perform(self, form):
        rename_organization(self.organization, name=form.cleaned_data["name"], by=self.request.user)
        messages.success(self.request, f"Organization renamed to {self.organization.name}.")
        return redirect(organization_url(self.organization))


# --- Sandboxes ------------------------------------------------------------------------------


class SandboxCreateView(OrganizationScopedMixin, ServiceFormView):
    form_class = SandboxCreateForm
    submit_label = "Create sandbox"

    def get_page_title(self):
        return f"New sandbox in {self.organization.name}"

    def perform(self, form):
        sandbox = create_sandbox(organization=self.organization, **form.cleaned_data, by=self.request.user)
        messages.success(self.request, f"Sandbox {sandbox.title} ({sandbox.name}) created.")
        return redirect(organization_url(self.organization))


class SandboxEditView(SandboxScopedMixin, ServiceFormView):
    form_class = SandboxTitleForm
    submit_label = "Save title"

    def get_initial(self):
        return {"title": self.sandbox.title}

    def get_page_title(self):
        return f"Sandbox {self.sandbox.name}"

    def perform(self, form):
        retitle_sandbox(self.sandbox, title=form.cleaned_data["title"], by=self.request.user)
        messages.success(self.request, f"Sandbox {self.sandbox.name} is now titled {self.sandbox.title}.")
        return redirect(organization_url(self.organization))


class SandboxResetView(SandboxScopedMixin, ServiceFormView):
    template_name = "cdp/admin/sandbox_reset.html"
    form_class = SandboxResetForm
    submit_label = "Reset sandbox"
    danger = True

    def authorize(self):
        # Resetting empties one sandbox: its admins may, not only organization admins.
        require_sandbox_role(self.request.user, self.sandbox, Role.ADMIN)

    def get_form_kwargs(self):
        return super().get_form_kwargs() | {"sandbox": self.sandbox}

    def get_page_title(self):
        return f"Reset {self.sandbox.title}"

    def get_context_data(self, **kwargs):
        return super().get_context_data(sandbox=self.sandbox, summary=sandbox_data_summary(self.sandbox), **kwargs)

    def perform(self, form):
        deleted = reset_sandbox(self.sandbox, confirmation=form.cleaned_data["confirm"], by=self.request.user)
        total = sum(deleted.values())
        messages.success(self.request, f"Sandbox {self.sandbox.name} reset: {total} rows deleted.")
        return redirect(organization_url(self.organization))


class SandboxDeleteView(SandboxScopedMixin, LoadAndAuthorizeMixin, View):
    template_name = "cdp/admin/confirm.html"

    def get(self, request, pk):
        deletable = can_delete_sandbox(self.sandbox)
        return render(
            request,
            self.template_name,
            {
                "page_title": f"Delete sandbox {self.sandbox.title}",
                "warning": (
                    f"Deleting {self.sandbox.name} removes the sandbox with all its data, roles and pairings. "
                    "This cannot be undone."
                    if deletable
                    else f"{self.sandbox.name} is a production sandbox: production sandboxes cannot be deleted. "
                    "You can reset it to empty it."
                ),
                "summary": sandbox_data_summary(self.sandbox) if deletable else [],
                "allowed": deletable,
                "submit_label": "Delete sandbox",
                "cancel_url": self.cancel_url(),
            },
        )

    def post(self, request, pk):
        try:
            delete_sandbox(self.sandbox, by=request.user)
        except RuleViolation as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Sandbox {self.sandbox.name} deleted.")
        return redirect(organization_url(self.organization))


# --- Members --------------------------------------------------------------------------------


class MemberAddView(OrganizationScopedMixin, ServiceFormView):
    template_name = "cdp/admin/member_form.html"
    form_class = MemberAddForm
    submit_label = "Add member"

    def get_form_kwargs(self):
        return super().get_form_kwargs() | {"organization": self.organization}

    intro = "Add an existing user by username, or create a user by also giving an email and a password."

    def get_page_title(self):
        return f"Add a member to {self.organization.name}"

    def perform(self, form):
        data = form.cleaned_data
        membership = add_member_by_username(
            organization=self.organization,
            username=data["username"],
            email=data["email"],
            password=data["password"],
            is_admin=data["is_admin"],
            roles=form.chosen_roles(),
            by=self.request.user,
        )
        messages.success(self.request, f"{membership.user.username} added to {self.organization.name}.")
        return redirect(organization_url(self.organization))


class MemberEditView(MembershipScopedMixin, ServiceFormView):
    template_name = "cdp/admin/member_form.html"
    form_class = MemberEditForm
    submit_label = "Save roles"

    def get_form_kwargs(self):
        return super().get_form_kwargs() | {"membership": self.membership}

    intro = "Choose the user's role in each sandbox. Sandboxes left on 'No access' are hidden from them."

    def get_page_title(self):
        return f"{self.membership.user.username} in {self.organization.name}"

    def perform(self, form):
        update_member(
            self.membership, is_admin=form.cleaned_data["is_admin"], roles=form.chosen_roles(), by=self.request.user
        )
        messages.success(self.request, f"Roles of {self.membership.user.username} saved.")
        return redirect(organization_url(self.organization))


class MemberRemoveView(MembershipScopedMixin, LoadAndAuthorizeMixin, View):
    def get(self, request, pk):
        username = self.membership.user.username
        return render(
            request,
            "cdp/admin/confirm.html",
            {
                "page_title": f"Remove {username} from {self.organization.name}",
                "warning": f"{username} loses every role in the sandboxes of {self.organization.name}. "
                "Their user account and their other organizations stay.",
                "allowed": True,
                "submit_label": "Remove member",
                "cancel_url": self.cancel_url(),
            },
        )

    def post(self, request, pk):
        try:
            remove_member(self.membership, by=request.user)
        except RuleViolation as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"{self.membership.user.username} removed from {self.organization.name}.")
            if self.membership.user == request.user:
                # They left the organization: its page is no longer theirs to see.
                return redirect("cdp:admin-organizations")
        return redirect(organization_url(self.organization))


# --- API tokens -----------------------------------------------------------------------------


class TokenListView(LoginRequiredMixin, TemplateView):
    """Lists the tokens the user may manage; POST issues one and shows its key once, in this response
    only (never stored, never redirected through the session)."""

    template_name = "cdp/admin/tokens.html"

    def issue_form(self, data=None):
        user = self.request.user
        return TokenIssueForm(data, owners=token_owners_manageable_by(user), me=user)

    def get_context_data(self, **kwargs):
        user = self.request.user
        filterset = ApiTokenFilterSet(self.request.GET or None, queryset=tokens_visible_to(user), request=self.request)
        kwargs.setdefault("form", self.issue_form())
        form = kwargs["form"]
        return super().get_context_data(
            filterset=filterset,
            tokens=filterset.qs,
            manages_others=form.fields["user"].queryset.exclude(pk=user.pk).exists(),
            **kwargs,
        )

    def post(self, request):
        form = self.issue_form(request.POST)
        if form.is_valid():
            try:
                token, key = issue_api_token_for(
                    user=form.cleaned_data["user"], name=form.cleaned_data["name"], by=request.user
                )
            except SERVICE_REFUSALS as exc:
                apply_service_errors(form, exc)
            else:
                context = self.get_context_data(form=self.issue_form(), issued_token=token, issued_key=key)
                response = self.render_to_response(context)
                response["Cache-Control"] = "no-store"
                return response
        return self.render_to_response(self.get_context_data(form=form))


class TokenRevokeView(LoginRequiredMixin, View):
    def post(self, request, pk):
        token = get_object_or_404(tokens_visible_to(request.user), pk=pk)
        revoke_api_token_as(token, by=request.user)
        if request.htmx:
            return render(request, "cdp/admin/_token_row.html", {"token": token})
        messages.success(request, f"Token {token.name} revoked.")
        return redirect("cdp:admin-tokens")
