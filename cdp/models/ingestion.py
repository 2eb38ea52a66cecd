from django.conf import settings
from django.db import models

from cdp.choices import BatchStatus, IngestionEntity

from .base import SandboxScopedModel


class FieldMapping(SandboxScopedModel):
    """How the columns of a file (or keys of a JSON line) map to an entity's fields."""

    name = models.CharField(max_length=120)
    entity = models.CharField(max_length=32, choices=IngestionEntity.choices)
    # {"<target field>": "<source column>"}; identities use "identity.<namespace>" as the target.
    columns = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["sandbox", "name"], name="field_mapping_name_unique")]

    def __str__(self):
        return self.name


class IngestionBatch(SandboxScopedModel):
    """One uploaded file, or the records of the streaming endpoint for one sandbox and day.

    Progress and counts live on the row so the UI can poll it and a crashed run can resume.
    """

    class Kind(models.TextChoices):
        FILE = "file", "File upload"
        STREAM = "stream", "Streaming"

    class FileFormat(models.TextChoices):
        CSV = "csv", "CSV"
        JSONL = "jsonl", "JSON lines"

    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.FILE)
    entity = models.CharField(max_length=32, choices=IngestionEntity.choices)
    dataset = models.CharField(max_length=64, default="file", help_text="Name used by the merge policy.")
    file = models.FileField(upload_to="ingestion/%Y/%m/", blank=True)
    file_name = models.CharField(max_length=255, blank=True)
    file_format = models.CharField(max_length=10, choices=FileFormat.choices, default=FileFormat.CSV)
    mapping = models.ForeignKey(FieldMapping, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    columns = models.JSONField(default=dict, blank=True, help_text="The mapping used, frozen at upload time.")
    status = models.CharField(max_length=12, choices=BatchStatus.choices, default=BatchStatus.QUEUED)
    bytes_total = models.BigIntegerField(default=0)
    bytes_done = models.BigIntegerField(default=0)
    # Checkpoint: rows fully committed, so a restarted task resumes after them.
    rows_done = models.BigIntegerField(default=0)
    created = models.BigIntegerField(default=0)
    updated = models.BigIntegerField(default=0)
    merged = models.BigIntegerField(default=0)
    rejected = models.BigIntegerField(default=0)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "ingestion batches"

    @property
    def accepted(self) -> int:
        return self.created + self.updated + self.merged

    @property
    def progress_percent(self) -> int:
        if self.status == BatchStatus.SUCCEEDED:
            return 100
        if not self.bytes_total:
            return 0
        return min(99, int(100 * self.bytes_done / self.bytes_total))


class RejectedRecord(SandboxScopedModel):
    """A record that was not stored, with the reason. Nothing is dropped silently."""

    batch = models.ForeignKey(IngestionBatch, on_delete=models.CASCADE, related_name="rejections")
    row_number = models.BigIntegerField(help_text="1-based data row in the file, or index in the request.")
    field = models.CharField(max_length=120, blank=True)
    reason = models.TextField()
    raw = models.TextField(blank=True, help_text="The record as received, truncated to 2,000 characters.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["batch", "row_number"]


class IdempotencyKey(SandboxScopedModel):
    """Remembers a streaming request's answer so a retry with the same key stores nothing twice."""

    survives_sandbox_reset = False

    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    response = models.JSONField()
    status_code = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["sandbox", "key"], name="idempotency_key_unique")]
