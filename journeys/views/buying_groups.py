"""Buying group pages under /journeys/buying-groups/: the dashboard (status and stage
distribution), the groups list with filters, a group's page (members by role, scores, stage
history, stage / status / member changes), roles and roles templates, stages models, solution
interests and their builds (progress polled with HTMX).

Every write goes through ``journeys.services.buying_groups``; its refusals land on the form or as
an error message. Every object is looked up in the session's sandbox only.
"""

from django.contrib import messages
from django.db.models import Count, ProtectedError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path
from django.views.generic import TemplateView
from django_htmx.http import HttpResponseClientRefresh

from cdp.choices import Role
from cdp.exceptions import RuleViolation
from cdp.forms_audiences import add_rule_violation
from cdp.views.mixins import SandboxRoleRequiredMixin
from journeys.choices import BuildStatus, BuyingGroupStatus, RoleWeight, StageKind
from journeys.forms import (
    BuildForm,
    BuyingGroupFilterSet,
    MemberForm,
    RoleForm,
    RolesTemplateForm,
    SolutionInterestForm,
    StageForm,
    StagesModelForm,
    StatusForm,
)
from journeys.models import (
    BuyingGroup,
    BuyingGroupBuild,
    BuyingGroupRole,
    RolesTemplate,
    SolutionInterest,
    Stage,
    StagesModel,
    StageTransition,
)
from journeys.services import buying_groups as service

PAGE_SIZE = 100


class BuyingGroupPage(SandboxRoleRequiredMixin, TemplateView):
    def get_context_data(self, **kwargs):
        return super().get_context_data(can_write=self.request.sandbox_role.allows(Role.MARKETER), **kwargs)

    def scoped(self, model, pk):
        return get_object_or_404(model.objects.for_sandbox(self.sandbox), pk=pk)


# ---------------------------------------------------------------------------- dashboard
class DashboardView(BuyingGroupPage):
    template_name = "journeys/buying_groups/dashboard.html"

    def get_context_data(self, **kwargs):
        interests = list(SolutionInterest.objects.for_sandbox(self.sandbox).annotate(groups=Count("buying_groups")))
        chosen = self.request.GET.get("solution_interest")
        chosen = int(chosen) if chosen and chosen.isdigit() and any(i.pk == int(chosen) for i in interests) else None
        return super().get_context_data(
            summary=service.buying_group_summary(self.sandbox, solution_interest_id=chosen),
            interests=interests,
            chosen=chosen,
            **kwargs,
        )


# ---------------------------------------------------------------------------- groups
class GroupListView(BuyingGroupPage):
    template_name = "journeys/buying_groups/list.html"

    def get_context_data(self, **kwargs):
        groups = BuyingGroup.objects.for_sandbox(self.sandbox).select_related("account", "solution_interest", "stage")
        filterset = BuyingGroupFilterSet(self.request.GET or None, queryset=groups.annotate(member_count=Count("members")))
        # Unbound (no filters in the URL): every group; bound but invalid: none.
        valid = not filterset.is_bound or filterset.is_valid()
        rows = filterset.qs.order_by("account__name", "solution_interest__name") if valid else groups.none()
        stage_names = sorted(set(Stage.objects.for_sandbox(self.sandbox).values_list("name", flat=True)))
        return super().get_context_data(
            filterset=filterset,
            groups=rows[:PAGE_SIZE],
            total=rows.count(),
            page_size=PAGE_SIZE,
            interests=SolutionInterest.objects.for_sandbox(self.sandbox),
            statuses=BuyingGroupStatus.choices,
            stage_names=stage_names,
            **kwargs,
        )


class GroupDetailView(BuyingGroupPage):
    template_name = "journeys/buying_groups/detail.html"

    def group(self, pk):
        return get_object_or_404(
            BuyingGroup.objects.for_sandbox(self.sandbox).select_related("account", "solution_interest", "stage"), pk=pk
        )

    def get_context_data(self, pk, **kwargs):
        group = self.group(pk)
        stages = []
        if group.solution_interest.stages_model_id:
            stages = list(Stage.objects.filter(stages_model_id=group.solution_interest.stages_model_id))
        next_stages = [t.to_stage for t in StageTransition.objects.filter(from_stage_id=group.stage_id).select_related("to_stage")]
        if group.stage_id is None:
            next_stages = [s for s in stages if s.kind == StageKind.ENTRY]
        return super().get_context_data(
            group=group,
            sections=service.members_by_role(group),
            history=group.stage_changes.select_related("from_stage", "to_stage"),
            stages=stages,
            next_stages=next_stages,
            statuses=BuyingGroupStatus.choices,
            roles=service.roles_of(self.sandbox),
            candidates=service.assignable_people(group)[:200],
            **kwargs,
        )


class GroupActionView(GroupDetailView):
    """POST-only changes of a group: stage, status, assign or remove a member."""

    def post(self, request, pk, action, person_id=None):
        group = self.group(pk)
        try:
            if action == "stage":
                form = StageForm(request.POST)
                if form.is_valid():
                    service.set_stage(group, form.cleaned_data["stage"], by=request.user)
                    messages.success(request, f"Moved to “{form.cleaned_data['stage']}”.")
            elif action == "status":
                form = StatusForm(request.POST)
                if form.is_valid():
                    group = service.set_status(group, form.cleaned_data["status"], by=request.user)
                    messages.success(request, f"Status is now {group.get_status_display().lower()}.")
            elif action == "assign":
                form = MemberForm(request.POST)
                if form.is_valid():
                    service.assign_member(group, form.cleaned_data["person"], form.cleaned_data["role"], by=request.user)
                    messages.success(request, "Member assigned.")
            else:
                form = None
                service.remove_member(group, person_id, by=request.user)
                messages.success(request, "Member removed.")
            if form is not None and not form.is_valid():
                messages.error(request, "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()))
        except RuleViolation as violation:
            messages.error(request, violation.message)
        return redirect("journeys:buying-group", pk=group.pk)


# ----------------------------------------------------------------- roles and templates
class RolesTemplateListView(BuyingGroupPage):
    template_name = "journeys/buying_groups/roles_templates.html"

    def get_context_data(self, role_form=None, **kwargs):
        templates = RolesTemplate.objects.for_sandbox(self.sandbox).annotate(role_count=Count("roles", distinct=True))
        return super().get_context_data(
            templates=templates.prefetch_related("solution_interests"),
            roles=service.roles_of(self.sandbox),
            role_form=role_form or RoleForm(),
            **kwargs,
        )

    def post(self, request):
        """Add a custom role."""
        form = RoleForm(request.POST)
        if form.is_valid():
            try:
                role = service.create_role(self.sandbox, form.cleaned_data["name"], form.cleaned_data["description"])
            except RuleViolation as violation:
                add_rule_violation(form, violation)
            else:
                messages.success(request, f"Role “{role.name}” added.")
                return redirect("journeys:roles-templates")
        return self.render_to_response(self.get_context_data(role_form=form), status=400)


class RoleDeleteView(BuyingGroupPage):
    http_method_names = ["post"]  # a form action, not a page
    def post(self, request, pk):
        role = self.scoped(BuyingGroupRole, pk)
        try:
            service.delete_role(role)
        except RuleViolation as violation:
            messages.error(request, violation.message)
        else:
            messages.success(request, f"Role “{role.name}” deleted.")
        return redirect("journeys:roles-templates")


class RolesTemplateEditView(BuyingGroupPage):
    """Create or edit a draft template; a live one is shown read-only."""

    template_name = "journeys/buying_groups/roles_template_form.html"

    def form(self, template, data=None):
        initial = {"name": template.name, "description": template.description} if template else None
        return RolesTemplateForm(data, initial=initial, roles=service.roles_of(self.sandbox), template=template)

    def get(self, request, pk=None):
        template = self.scoped(RolesTemplate, pk) if pk else None
        return self.render_to_response(self.get_context_data(form=self.form(template), template=template, weights=RoleWeight.choices))

    def post(self, request, pk=None):
        template = self.scoped(RolesTemplate, pk) if pk else None
        form = self.form(template, request.POST)
        if form.is_valid():
            try:
                saved = service.save_roles_template(
                    self.sandbox, name=form.cleaned_data["name"], description=form.cleaned_data["description"],
                    roles=form.role_specs(), template=template,
                )  # fmt: skip
                if "publish" in request.POST:
                    service.publish_roles_template(saved)
            except RuleViolation as violation:
                add_rule_violation(form, violation)
            else:
                messages.success(request, f"Roles template “{saved.name}” saved{' and live' if 'publish' in request.POST else ''}.")
                return redirect("journeys:roles-templates")
        context = self.get_context_data(form=form, template=template, weights=RoleWeight.choices)
        return self.render_to_response(context, status=400)


# ----------------------------------------------------------------------- stages models
class StagesModelListView(BuyingGroupPage):
    template_name = "journeys/buying_groups/stages_models.html"

    def get_context_data(self, **kwargs):
        models = StagesModel.objects.for_sandbox(self.sandbox).prefetch_related("stages", "solution_interests")
        return super().get_context_data(stages_models=models, **kwargs)


class StagesModelEditView(BuyingGroupPage):
    template_name = "journeys/buying_groups/stages_model_form.html"

    def get(self, request, pk=None):
        model = self.scoped(StagesModel, pk) if pk else None
        initial = StagesModelForm.initial_for(model, service.stages_model_as_dict(model)) if model else {
            "stages": "Discover: entry\nEvaluate: intermediate\nPurchase: success\nLost: failure",
            "transitions": "Discover -> Evaluate\nEvaluate -> Purchase\nEvaluate -> Lost",
        }  # fmt: skip
        return self.render_to_response(self.get_context_data(form=StagesModelForm(initial=initial), stages_model=model))

    def post(self, request, pk=None):
        model = self.scoped(StagesModel, pk) if pk else None
        form = StagesModelForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                saved = service.save_stages_model(
                    self.sandbox, name=data["name"], description=data["description"], stages=data["stages"],
                    transitions=data["transitions"], stages_model=model,
                )  # fmt: skip
                if "publish" in request.POST:
                    service.publish_stages_model(saved)
            except RuleViolation as violation:
                add_rule_violation(form, violation)
            else:
                messages.success(request, f"Stages model “{saved.name}” saved{' and published' if 'publish' in request.POST else ''}.")
                return redirect("journeys:stages-models")
        return self.render_to_response(self.get_context_data(form=form, stages_model=model), status=400)


# ------------------------------------------------------------------ solution interests
class SolutionInterestListView(BuyingGroupPage):
    template_name = "journeys/buying_groups/solution_interests.html"

    def get_context_data(self, **kwargs):
        interests = (
            SolutionInterest.objects.for_sandbox(self.sandbox)
            .select_related("roles_template", "stages_model")
            .annotate(groups=Count("buying_groups", distinct=True))
            .prefetch_related("builds__audience")
        )
        return super().get_context_data(interests=interests, **kwargs)


class SolutionInterestEditView(BuyingGroupPage):
    template_name = "journeys/buying_groups/solution_interest_form.html"

    def render_page(self, interest, form=None, build_form=None, status=200):
        if form is None:
            initial = None
            if interest is not None:
                initial = {"name": interest.name, "description": interest.description,
                           "roles_template": interest.roles_template_id, "stages_model": interest.stages_model_id}  # fmt: skip
            form = SolutionInterestForm(initial=initial, sandbox=self.sandbox)
        context = self.get_context_data(
            form=form,
            interest=interest,
            build_form=build_form or BuildForm(sandbox=self.sandbox),
            builds=interest.builds.select_related("audience") if interest else [],
        )
        return self.render_to_response(context, status=status)

    def get(self, request, pk=None):
        return self.render_page(self.scoped(SolutionInterest, pk) if pk else None)

    def post(self, request, pk=None):
        interest = self.scoped(SolutionInterest, pk) if pk else None
        form = SolutionInterestForm(request.POST, sandbox=self.sandbox)
        if form.is_valid():
            data = form.cleaned_data
            try:
                saved = service.save_solution_interest(
                    self.sandbox, name=data["name"], description=data["description"], roles_template=data["roles_template"],
                    stages_model=data["stages_model"], solution_interest=interest,
                )  # fmt: skip
            except RuleViolation as violation:
                add_rule_violation(form, violation)
            else:
                messages.success(request, f"Solution interest “{saved.name}” saved.")
                return redirect("journeys:solution-interest", pk=saved.pk)
        return self.render_page(interest, form=form, status=400)


class SolutionInterestBuildView(SolutionInterestEditView):
    def post(self, request, pk):
        interest = self.scoped(SolutionInterest, pk)
        form = BuildForm(request.POST, sandbox=self.sandbox)
        if form.is_valid():
            try:
                service.start_build(interest, form.cleaned_data["audience"], by=request.user)
            except RuleViolation as violation:
                add_rule_violation(form, violation)
            else:
                messages.success(request, f"Building buying groups over “{form.cleaned_data['audience'].name}”.")
                return redirect("journeys:solution-interest", pk=interest.pk)
        return self.render_page(interest, build_form=form, status=400)


class BuildProgressView(BuyingGroupPage):
    """Polled while a build runs: the progress bar, then a page refresh once it is over."""

    template_name = "journeys/buying_groups/_build_progress.html"

    def get(self, request, pk):
        build = self.scoped(BuyingGroupBuild, pk)
        if build.status in (BuildStatus.QUEUED, BuildStatus.RUNNING):
            return self.render_to_response(self.get_context_data(build=build))
        return HttpResponseClientRefresh() if request.htmx else HttpResponse(build.get_status_display())


class DeleteView(BuyingGroupPage):
    """Delete a draft or unused template / stages model / solution interest (POST)."""
    http_method_names = ["post"]  # a form action, not a page

    models = {"roles-template": (RolesTemplate, "journeys:roles-templates"), "stages-model": (StagesModel, "journeys:stages-models"),
              "solution-interest": (SolutionInterest, "journeys:solution-interests")}  # fmt: skip

    def post(self, request, pk, kind):
        model, back = self.models[kind]
        instance = self.scoped(model, pk)
        try:
            instance.delete()
        except ProtectedError:
            messages.error(request, f"“{instance}” is used by a solution interest or a buying group; it can't be deleted.")
        else:
            messages.success(request, f"“{instance}” deleted.")
        return redirect(back)


urlpatterns = [
    path("", DashboardView.as_view(), name="buying-groups"),
    path("groups/", GroupListView.as_view(), name="buying-group-list"),
    path("groups/<int:pk>/", GroupDetailView.as_view(), name="buying-group"),
    path("groups/<int:pk>/stage/", GroupActionView.as_view(), {"action": "stage"}, name="buying-group-stage"),
    path("groups/<int:pk>/status/", GroupActionView.as_view(), {"action": "status"}, name="buying-group-status"),
    path("groups/<int:pk>/members/", GroupActionView.as_view(), {"action": "assign"}, name="buying-group-assign"),
    path("groups/<int:pk>/members/<int:person_id>/remove/", GroupActionView.as_view(), {"action": "remove"}, name="buying-group-remove"),
    path("roles-templates/", RolesTemplateListView.as_view(), name="roles-templates"),
    path("roles-templates/new/", RolesTemplateEditView.as_view(), name="roles-template-new"),
    path("roles-templates/<int:pk>/", RolesTemplateEditView.as_view(), name="roles-template"),
    path("roles/<int:pk>/delete/", RoleDeleteView.as_view(), name="role-delete"),
    path("stages-models/", StagesModelListView.as_view(), name="stages-models"),
    path("stages-models/new/", StagesModelEditView.as_view(), name="stages-model-new"),
    path("stages-models/<int:pk>/", StagesModelEditView.as_view(), name="stages-model"),
    path("solution-interests/", SolutionInterestListView.as_view(), name="solution-interests"),
    path("solution-interests/new/", SolutionInterestEditView.as_view(), name="solution-interest-new"),
    path("solution-interests/<int:pk>/", SolutionInterestEditView.as_view(), name="solution-interest"),
    path("solution-interests/<int:pk>/build/", SolutionInterestBuildView.as_view(), name="solution-interest-build"),
    path("builds/<int:pk>/progress/", BuildProgressView.as_view(), name="buying-group-build-progress"),
    path("roles-templates/<int:pk>/delete/", DeleteView.as_view(), {"kind": "roles-template"}, name="roles-template-delete"),
    path("stages-models/<int:pk>/delete/", DeleteView.as_view(), {"kind": "stages-model"}, name="stages-model-delete"),
    path("solution-interests/<int:pk>/delete/", DeleteView.as_view(), {"kind": "solution-interest"}, name="solution-interest-delete"),
]
