"""Buying groups: roles, roles templates, stages models, solution interests and the groups built
for accounts (members, stage history, scores), plus the build that keeps them current.

Rules live in ``journeys.services.buying_groups``; these rows only hold state.
"""

from django.conf import settings
from django.db import models

from cdp.models import SandboxScopedModel
from journeys.choices import (
    AssignedHow,
    BuildStatus,
    BuyingGroupStatus,
    RoleWeight,
    StageKind,
    StagesModelStatus,
    TemplateStatus,
)


class BuyingGroupRole(SandboxScopedModel):
    """A role a person can play in a buying group: the six defaults plus custom ones."""

    name = models.CharField(max_length=100)
    description = models.CharField(max_length=255, blank=True)
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-is_default", "name"]
        constraints = [models.UniqueConstraint(fields=["sandbox", "name"], name="bg_role_name_unique_in_sandbox")]

    def __str__(self):
        return self.name


class _VersionedSetup(SandboxScopedModel):
    """What roles templates and stages models share: a named setup, edited as a draft and frozen
    once it goes live (``status`` and its choices are each model's own)."""

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        ordering = ["name"]

    def __str__(self):
        return self.name


class RolesTemplate(_VersionedSetup):
    """Which roles a buying group needs, how much each weighs, and who gets each role automatically.
    Drafts are edited; a live template is frozen so groups built from it keep their meaning."""

    status = models.CharField(max_length=10, choices=TemplateStatus.choices, default=TemplateStatus.DRAFT)

    class Meta(_VersionedSetup.Meta):
        constraints = [models.UniqueConstraint(fields=["sandbox", "name"], name="roles_template_name_unique_in_sandbox")]


class TemplateRole(SandboxScopedModel):
    template = models.ForeignKey(RolesTemplate, on_delete=models.CASCADE, related_name="roles")
    role = models.ForeignKey(BuyingGroupRole, on_delete=models.PROTECT, related_name="+")
    weight = models.PositiveSmallIntegerField(choices=RoleWeight.choices, default=RoleWeight.NORMAL)
    condition = models.JSONField(
        null=True, blank=True, help_text="Audience rule tree (subject person); matching people get this role."
    )
    required = models.BooleanField(default=False, help_text="Counts towards completeness.")
    required_count = models.PositiveSmallIntegerField(default=1)

    class Meta:
        ordering = ["-weight", "role__name"]
        constraints = [models.UniqueConstraint(fields=["template", "role"], name="template_role_unique")]

    def __str__(self):
        return f"{self.role} ({self.get_weight_display()})"


class StagesModel(_VersionedSetup):
    """The stages a buying group moves through. Frozen once published."""

    status = models.CharField(max_length=10, choices=StagesModelStatus.choices, default=StagesModelStatus.DRAFT)

    class Meta(_VersionedSetup.Meta):
        constraints = [models.UniqueConstraint(fields=["sandbox", "name"], name="stages_model_name_unique_in_sandbox")]


class Stage(SandboxScopedModel):
    stages_model = models.ForeignKey(StagesModel, on_delete=models.CASCADE, related_name="stages")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=12, choices=StageKind.choices, default=StageKind.INTERMEDIATE)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["stages_model", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["stages_model", "name"], name="stage_name_unique_in_model")]

    def __str__(self):
        return self.name


class StageTransition(SandboxScopedModel):
    """An allowed move from one stage to another of the same model."""

    stages_model = models.ForeignKey(StagesModel, on_delete=models.CASCADE, related_name="transitions")
    from_stage = models.ForeignKey(Stage, on_delete=models.CASCADE, related_name="transitions_out")
    to_stage = models.ForeignKey(Stage, on_delete=models.CASCADE, related_name="transitions_in")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["from_stage", "to_stage"], name="stage_transition_unique")]


class SolutionInterest(SandboxScopedModel):
    """A product or solution an account may buy: one live roles template, optional stages model."""

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    roles_template = models.ForeignKey(RolesTemplate, on_delete=models.PROTECT, related_name="solution_interests")
    stages_model = models.ForeignKey(
        StagesModel, null=True, blank=True, on_delete=models.PROTECT, related_name="solution_interests"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["sandbox", "name"], name="solution_interest_name_unique_in_sandbox")]

    def __str__(self):
        return self.name


class BuyingGroupBuild(SandboxScopedModel):
    """Builds the groups of a solution interest for the accounts of an account audience, then keeps
    them current. Progress and the checkpoint (last account id done) let a crashed run resume;
    ``membership_cursor`` is the last AudienceMembershipChange id applied."""

    solution_interest = models.ForeignKey(SolutionInterest, on_delete=models.CASCADE, related_name="builds")
    audience = models.ForeignKey("cdp.Audience", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=10, choices=BuildStatus.choices, default=BuildStatus.QUEUED)
    total_accounts = models.PositiveIntegerField(default=0)
    processed_accounts = models.PositiveIntegerField(default=0)
    groups_created = models.PositiveIntegerField(default=0)
    checkpoint_account_id = models.BigIntegerField(default=0)
    membership_cursor = models.BigIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["solution_interest", "audience"], name="bg_build_unique_per_audience")
        ]

    @property
    def progress_percent(self):
        if not self.total_accounts:
            return 100 if self.status == BuildStatus.SUCCEEDED else 0
        return min(100, round(100 * self.processed_accounts / self.total_accounts))


class BuyingGroup(SandboxScopedModel):
    account = models.ForeignKey("cdp.Account", on_delete=models.CASCADE, related_name="buying_groups")
    solution_interest = models.ForeignKey(SolutionInterest, on_delete=models.CASCADE, related_name="buying_groups")
    status = models.CharField(max_length=12, choices=BuyingGroupStatus.choices, default=BuyingGroupStatus.IN_PROGRESS)
    stage = models.ForeignKey(Stage, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    completeness_score = models.FloatField(default=0)
    completeness_computed_at = models.DateTimeField(null=True, blank=True)
    engagement_score = models.FloatField(default=0)
    engagement_computed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["solution_interest", "account"], name="buying_group_unique_per_account")
        ]
        indexes = [
            models.Index(fields=["sandbox", "account"]),
            models.Index(fields=["solution_interest", "status"]),
        ]

    def __str__(self):
        return f"{self.solution_interest} — {self.account}"


class BuyingGroupMember(SandboxScopedModel):
    group = models.ForeignKey(BuyingGroup, on_delete=models.CASCADE, related_name="members")
    person = models.ForeignKey("cdp.Person", on_delete=models.CASCADE, related_name="buying_group_memberships")
    role = models.ForeignKey(BuyingGroupRole, on_delete=models.PROTECT, related_name="+")
    assigned_how = models.CharField(max_length=8, choices=AssignedHow.choices, default=AssignedHow.AUTO)
    assigned_by = models.CharField(max_length=150, blank=True, help_text="Who assigned: a user, a journey or the system.")
    assigned_at = models.DateTimeField()

    class Meta:
        ordering = ["role__name", "person_id"]
        constraints = [models.UniqueConstraint(fields=["group", "person"], name="buying_group_member_unique")]
        indexes = [models.Index(fields=["sandbox", "person"])]


class BuyingGroupStageChange(SandboxScopedModel):
    """Stage history of a buying group (the first row has no ``from_stage``)."""

    group = models.ForeignKey(BuyingGroup, on_delete=models.CASCADE, related_name="stage_changes")
    from_stage = models.ForeignKey(Stage, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    to_stage = models.ForeignKey(Stage, on_delete=models.PROTECT, related_name="+")
    changed_by = models.CharField(max_length=150, blank=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-id"]
