"""Source connections (an external system feeding a sandbox's profile store) and their sync runs.

The sync machinery lives in ``connectors.services.sources``; read its module docstring first.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from cdp.models import SandboxScopedModel


class SourceKind(models.TextChoices):
    MARKETO = "marketo", "Marketo Engage"
    SALESFORCE = "salesforce", "Salesforce"


class SyncMode(models.TextChoices):
    BACKFILL = "backfill", "Historical backfill"
    INCREMENTAL = "incremental", "Incremental sync"


class SyncState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused (API quota)"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


# A run in one of these states still has work to do; at most one such run per connection and mode.
ACTIVE_SYNC_STATES = (SyncState.QUEUED, SyncState.RUNNING, SyncState.PAUSED)


class SourceConnection(SandboxScopedModel):
    """A Marketo instance or Salesforce org feeding this sandbox. Create it through
    ``connectors.services.sources.create_source_connection``: that enforces the pairing rules."""

    # Configuration, like pairings: a sandbox reset keeps it (and its cursor); run a backfill after a reset.
    survives_sandbox_reset = True

    kind = models.CharField(max_length=20, choices=SourceKind.choices)
    marketo_instance = models.ForeignKey(
        "connectors.MarketoInstance", null=True, blank=True, on_delete=models.RESTRICT, related_name="source_connections"
    )
    salesforce_org = models.ForeignKey(
        "connectors.SalesforceOrg", null=True, blank=True, on_delete=models.RESTRICT, related_name="source_connections"
    )
    name = models.CharField(max_length=200)
    enabled = models.BooleanField(default=True, help_text="Disabled connections are not synced on schedule.")
    sync_interval_minutes = models.PositiveIntegerField(
        "sync every (minutes)", default=15, help_text="How often the incremental sync runs."
    )
    backfill_since = models.DateTimeField(
        null=True, blank=True, help_text="Start of the historical backfill; blank for the last 90 days."
    )
    # Kind-specific settings (e.g. Marketo activity type ids of interest); see the source class.
    options = models.JSONField(default=dict, blank=True)
    # Where the incremental sync continues from (paging tokens, SystemModstamp…), owned by the source class.
    cursor = models.JSONField(default=dict, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    next_sync_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(kind="marketo", marketo_instance__isnull=False, salesforce_org__isnull=True)
                    | Q(kind="salesforce", marketo_instance__isnull=True, salesforce_org__isnull=False)
                ),
                name="source_connection_instance_matches_kind",
                violation_error_message="A Marketo source names a Marketo instance; a Salesforce source a Salesforce org.",
            ),
            models.UniqueConstraint(
                fields=["sandbox", "marketo_instance"], name="source_connection_marketo_unique"
            ),
            models.UniqueConstraint(fields=["sandbox", "salesforce_org"], name="source_connection_salesforce_unique"),
        ]

    def __str__(self):
        return self.name

    @property
    def instance(self):
        return self.marketo_instance or self.salesforce_org


class SyncRun(SandboxScopedModel):
    """One backfill or incremental sync of a connection: progress the UI polls, a checkpoint to resume
    from, counts per entity and the error that stopped it."""

    connection = models.ForeignKey(SourceConnection, on_delete=models.CASCADE, related_name="runs")
    mode = models.CharField(max_length=20, choices=SyncMode.choices)
    state = models.CharField(max_length=20, choices=SyncState.choices, default=SyncState.QUEUED, db_index=True)
    # What the run is doing now, for people: "Leads 2026-01-01 → 2026-01-31: waiting for the export".
    phase = models.CharField(max_length=255, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    # Owned by the source class: the window / export job / page the run resumes from.
    checkpoint = models.JSONField(default=dict, blank=True)
    # {entity: {"received": n, "accepted": n, "updated": n, "merged": n, "rejected": n, "deleted": n}}
    counts = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    # A queued run waits (e.g. for a bulk export) and a paused one (quota) sleeps until then.
    resume_after = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="How many times a worker picked the run up.")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "mode"],
                condition=Q(state__in=["queued", "running", "paused"]),
                name="sync_run_one_active_per_connection_mode",
                violation_error_message="This connection already has a sync of this kind in progress.",
            )
        ]
        indexes = [models.Index(fields=["connection", "-created_at"], name="sync_run_connection_recent")]

    def __str__(self):
        return f"{self.get_mode_display()} of {self.connection_id} ({self.state})"

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_SYNC_STATES

    @property
    def percent(self) -> int:
        if not self.progress_total:
            return 100 if self.state == SyncState.SUCCEEDED else 0
        return min(100, int(100 * self.progress_done / self.progress_total))


class SyncRejection(SandboxScopedModel):
    """A record a sync received but could not store, with the reason: nothing is dropped silently."""

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="rejections")
    entity = models.CharField(max_length=32)
    # Where the record came from in the source (e.g. "lead 1234", "activity 99812").
    source_ref = models.CharField(max_length=255, blank=True)
    field = models.CharField(max_length=120, blank=True)
    reason = models.TextField()
    raw = models.TextField(blank=True, help_text="The record as received, truncated to 2,000 characters.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "pk"]
