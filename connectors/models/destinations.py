"""Activation: destinations, the dataflows that feed audiences to them, and what each run did.

A dataflow reads the audiences' membership history (``cdp.AudienceMembershipChange``) past its own
cursor, so a missed signal or a crashed worker delays a push but never loses one. Create and change
these rows through ``connectors.services.activation``: that is where the rules live.
"""

import datetime as dt

from django.conf import settings
from django.db import models

from cdp.models import SandboxScopedModel
from connectors.fields import EncryptedTextField


class DestinationKind(models.TextChoices):
    MARKETO_STATIC_LIST = "marketo_static_list", "Marketo Engage static list"
    WEBHOOK = "webhook", "Webhook"
    CSV_EXPORT = "csv_export", "CSV file export"


class DataflowMode(models.TextChoices):
    STREAMING = "streaming", "Streaming"
    BATCH = "batch", "Batch (daily)"


class DataflowState(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"


class RunTrigger(models.TextChoices):
    STREAMING = "streaming", "Streaming"
    SCHEDULE = "schedule", "Daily schedule"
    MANUAL = "manual", "Run now"


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    STOPPED = "stopped", "Stopped (resumes next run)"
    FAILED = "failed", "Failed"


class Destination(SandboxScopedModel):
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=30, choices=DestinationKind.choices)
    config = models.JSONField(default=dict, blank=True, help_text="Settings of the kind; validated by the service.")
    # Marketo: the destination pairing of the instance (made through the pairing rules). Unpairing
    # leaves the destination without it: its runs stop with a message until an admin pairs it again.
    pairing = models.ForeignKey(
        "connectors.Pairing", null=True, blank=True, on_delete=models.SET_NULL, related_name="destinations"
    )
    allow_lead_creation = models.BooleanField(
        default=False, help_text="Marketo only: create leads for people Marketo doesn't know (admins only)."
    )
    # Webhook: HMAC-SHA256 signing secret; never shown back.
    secret = EncryptedTextField(blank=True)
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["sandbox", "name"], name="destination_name_unique_in_sandbox")]

    def __str__(self):
        return self.name


class Dataflow(SandboxScopedModel):
    name = models.CharField(max_length=200)
    destination = models.ForeignKey(Destination, on_delete=models.PROTECT, related_name="dataflows")
    audiences = models.ManyToManyField("cdp.Audience", through="DataflowAudience", related_name="dataflows")
    mapping = models.JSONField(default=list, blank=True, help_text='[{"source": "email", "target": "email"}, …]')
    mode = models.CharField(max_length=10, choices=DataflowMode.choices, default=DataflowMode.STREAMING)
    batch_time = models.TimeField(default=dt.time(2, 0), help_text="Batch mode: when the daily run starts (UTC).")
    state = models.CharField(max_length=10, choices=DataflowState.choices, default=DataflowState.ACTIVE)
    # Per audience id: the last AudienceMembershipChange id delivered (or dead-lettered); the next
    # run starts after it. One cursor per audience because each audience writes its history under
    # its own lock, so ids only arrive in order within one audience.
    cursors = models.JSONField(default=dict, blank=True)
    next_batch_at = models.DateTimeField(null=True, blank=True)
    # A push holds the dataflow through this lease so two workers never send the same changes.
    lease_token = models.CharField(max_length=32, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["sandbox", "name"], name="dataflow_name_unique_in_sandbox")]
        indexes = [models.Index(fields=["state", "mode", "next_batch_at"])]

    def __str__(self):
        return self.name


class DataflowAudience(SandboxScopedModel):
    """Sandbox-scoped link rows, so resetting a sandbox removes them with the rest."""

    dataflow = models.ForeignKey(Dataflow, on_delete=models.CASCADE)
    audience = models.ForeignKey("cdp.Audience", on_delete=models.CASCADE)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["dataflow", "audience"], name="dataflow_audience_unique")]


class DestinationMember(SandboxScopedModel):
    """Who a dataflow put into its destination, under the destination's own id (a Marketo lead id).
    A removal uses it, so a person whose email changed since is still removed from the right lead."""

    dataflow = models.ForeignKey(Dataflow, on_delete=models.CASCADE, related_name="destination_members")
    member_id = models.BigIntegerField()
    external_id = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dataflow", "member_id", "external_id"], name="destination_member_unique")
        ]


class ActivationRun(SandboxScopedModel):
    dataflow = models.ForeignKey(Dataflow, on_delete=models.CASCADE, related_name="runs")
    trigger = models.CharField(max_length=10, choices=RunTrigger.choices)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    cursors_from = models.JSONField(default=dict, blank=True)
    cursors_to = models.JSONField(default=dict, blank=True)
    changes = models.PositiveIntegerField(default=0, help_text="Membership changes read.")
    sent = models.PositiveIntegerField(default=0, help_text="Adds and removes the destination accepted.")
    matched = models.PositiveIntegerField(default=0, help_text="People found in the destination.")
    unmatched = models.PositiveIntegerField(default=0, help_text="People the destination doesn't know.")
    failed = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0, help_text="Already in the wanted state.")
    created = models.PositiveIntegerField(default=0, help_text="Marketo leads created (only when allowed).")
    file = models.CharField(max_length=500, blank=True, help_text="CSV export: the file written.")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["dataflow", "started_at"])]


class ActivationOutcome(SandboxScopedModel):
    """A person a run could not deliver as asked: unmatched in the destination, or failed."""

    class Outcome(models.TextChoices):
        UNMATCHED = "unmatched", "Unmatched"
        FAILED = "failed", "Failed"
        CREATED = "created", "Lead created"

    run = models.ForeignKey(ActivationRun, on_delete=models.CASCADE, related_name="outcomes")
    member_id = models.BigIntegerField(help_text="Person (or account) id.")
    email = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=6, help_text="add or remove")
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    detail = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["id"]


class DeadLetter(SandboxScopedModel):
    """A webhook batch that failed every attempt. Kept with its payload so it can be re-sent."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to be re-sent"
        RESENT = "resent", "Re-sent"

    dataflow = models.ForeignKey(Dataflow, on_delete=models.CASCADE, related_name="dead_letters")
    run = models.ForeignKey(ActivationRun, null=True, on_delete=models.SET_NULL, related_name="dead_letters")
    batch_id = models.CharField(max_length=64)
    payload = models.JSONField()
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    resent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["dataflow", "batch_id"], name="dead_letter_batch_unique")]
