"""Audiences and their membership.

An audience is a definition (rule tree JSON; the PQL text is derived from it) plus evaluation
state kept on the row, as PostHog does for cohorts: the UI polls it, and a stuck "evaluating"
state is detectable from ``evaluation_started_at``. Membership rows are written set-wise by
cdp.services.audiences; each change is also appended to the membership history.
"""

import datetime as dt

from django.conf import settings
from django.db import models

from cdp.choices import AudienceKind, EvaluationState, MembershipStatus

from .base import SandboxScopedModel


class Audience(SandboxScopedModel):
    dashboard_label = "Audiences"

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=10, choices=AudienceKind.choices, default=AudienceKind.PERSON)
    definition = models.JSONField(help_text="The rule tree the builder edits; PQL text is derived from it.")
    # Batch schedule: re-evaluated in full this often (daily by default); changes in between are
    # applied incrementally within seconds.
    evaluation_interval = models.DurationField(default=dt.timedelta(days=1))
    depends_on = models.ManyToManyField("self", symmetrical=False, blank=True, related_name="dependents")
    has_time_window = models.BooleanField(default=False, help_text="Its conditions expire with time: swept on a schedule.")

    state = models.CharField(max_length=12, choices=EvaluationState.choices, default=EvaluationState.QUEUED)
    evaluation_started_at = models.DateTimeField(null=True, blank=True)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)
    last_full_evaluation_at = models.DateTimeField(null=True, blank=True)
    last_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    last_entered = models.PositiveIntegerField(default=0)
    last_exited = models.PositiveIntegerField(default=0)
    size = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    failure_count = models.PositiveSmallIntegerField(default=0)

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["sandbox", "name"], name="audience_name_unique_in_sandbox")]

    def __str__(self):
        return self.name


class AudienceMember(SandboxScopedModel):
    """One person (person audiences) or account (account audiences) and its state in an audience."""

    audience = models.ForeignKey(Audience, on_delete=models.CASCADE, related_name="members")
    member_id = models.BigIntegerField(help_text="Person id or account id, by the audience's kind.")
    status = models.CharField(max_length=10, choices=MembershipStatus.choices, default=MembershipStatus.REALIZED)
    realized_at = models.DateTimeField()
    exited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["audience", "member_id"], name="audience_member_unique")]
        indexes = [
            models.Index(fields=["audience", "status"]),
            models.Index(fields=["sandbox", "member_id"]),
        ]


class AudienceMembershipChange(SandboxScopedModel):
    """History: every entry into and exit from an audience."""

    class Change(models.TextChoices):
        ENTERED = "entered", "Entered"
        EXITED = "exited", "Exited"

    audience = models.ForeignKey(Audience, on_delete=models.CASCADE, related_name="changes")
    member_id = models.BigIntegerField()
    change = models.CharField(max_length=8, choices=Change.choices)
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["audience", "at"]), models.Index(fields=["sandbox", "member_id"])]


class AudienceEvaluation(SandboxScopedModel):
    """One evaluation run: what the audience list and the size-over-time chart show."""

    class Mode(models.TextChoices):
        FULL = "full", "Full"
        INCREMENTAL = "incremental", "Incremental"

    audience = models.ForeignKey(Audience, on_delete=models.CASCADE, related_name="evaluations")
    mode = models.CharField(max_length=12, choices=Mode.choices)
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    candidates = models.PositiveIntegerField(null=True, blank=True, help_text="Ids re-checked by an incremental run.")
    entered = models.PositiveIntegerField(default=0)
    exited = models.PositiveIntegerField(default=0)
    size = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["audience", "started_at"])]


class PendingProfileChange(SandboxScopedModel):
    """A changed person or account that the audiences have not re-checked yet.

    Ingest notes changes here and queues a pass; a pass claims what is pending, evaluates it and
    forgets exactly what it claimed. While the segmentation worker is behind, changes pile up here
    and the next pass takes them all at once, instead of one queued pass per ingest request."""

    class Kind(models.TextChoices):
        PERSON = "person"
        ACCOUNT = "account"

    sandbox = models.ForeignKey("cdp.Sandbox", on_delete=models.CASCADE, related_name="+", db_index=False)
    kind = models.CharField(max_length=7, choices=Kind.choices)
    profile_id = models.BigIntegerField()
    noted_at = models.DateTimeField()
    claim = models.UUIDField(null=True, blank=True, help_text="The pass evaluating it; cleared when it changes again.")
    claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sandbox", "kind", "profile_id"], name="pending_profile_change_unique")
        ]
        indexes = [models.Index(fields=["claim"], name="pending_change_claim_idx")]
