"""Starting file ingestion: validate the request, keep the file, queue the work."""

from django.conf import settings
from django.db import transaction

from cdp.choices import IngestionEntity
from cdp.exceptions import RuleViolation
from cdp.models import FieldMapping, IngestionBatch
from cdp.schema import KEY_TARGETS, target_catalog

DEFAULT_MAX_FILE_BYTES = 2 * 1024**3


def validate_mapping(entity: str, columns: dict) -> dict:
    """The mapping cleaned, or RuleViolation naming the first bad target."""
    if entity not in IngestionEntity.values:
        raise RuleViolation(f"'{entity}' is not an entity; use one of {', '.join(IngestionEntity.values)}.", "unknown_entity", "entity")
    if not isinstance(columns, dict):
        raise RuleViolation("The mapping must be an object of target field → source column.", "invalid_mapping", "columns")
    known = set(target_catalog(entity))
    wildcard_prefixes = tuple(k[:-1] for k in KEY_TARGETS[entity] if k.endswith(".*"))
    cleaned = {}
    for target, source in columns.items():
        if not isinstance(source, str) or not source.strip():
            raise RuleViolation(f"Target '{target}' maps to an empty column name.", "invalid_mapping", "columns")
        if target not in known and not target.startswith(wildcard_prefixes):
            raise RuleViolation(
                f"'{target}' is not a field of {entity} records. Known fields: {', '.join(sorted(known))}.",
                "invalid_mapping",
                "columns",
            )
        cleaned[target] = source.strip()
    return cleaned


def detect_format(file_name: str) -> str:
    lowered = file_name.lower()
    if lowered.endswith((".jsonl", ".ndjson", ".json")):
        return IngestionBatch.FileFormat.JSONL
    return IngestionBatch.FileFormat.CSV


def start_file_ingestion(
    sandbox, *, entity: str, uploaded_file, user=None, mapping: FieldMapping | None = None, columns=None,
    file_format: str | None = None, dataset: str = "file",
) -> IngestionBatch:
    """Keep the uploaded file and queue its processing (after this transaction commits)."""
    from cdp.tasks import ingest_file_batch

    max_bytes = getattr(settings, "INGEST_MAX_FILE_BYTES", DEFAULT_MAX_FILE_BYTES)
    if uploaded_file.size > max_bytes:
        raise RuleViolation(
            f"The file is {uploaded_file.size:,} bytes; files of at most {max_bytes:,} bytes are accepted. Split it.",
            "file_too_large",
            "file",
        )
    if mapping is not None:
        if mapping.sandbox_id != sandbox.pk:
            raise RuleViolation("That mapping belongs to another sandbox.", "mapping_not_found", "mapping")
        if mapping.entity != entity:
            raise RuleViolation(f"Mapping '{mapping.name}' is for {mapping.entity} records, not {entity}.", "mapping_entity_mismatch", "mapping")
        columns = mapping.columns
    columns = validate_mapping(entity, columns or {})
    with transaction.atomic():
        batch = IngestionBatch.objects.create(
            sandbox=sandbox,
            entity=entity,
            dataset=dataset or "file",
            file=uploaded_file,
            file_name=uploaded_file.name[:255],
            file_format=file_format or detect_format(uploaded_file.name),
            mapping=mapping,
            columns=columns,
            bytes_total=uploaded_file.size,
            created_by=user if user and user.is_authenticated else None,
        )
        transaction.on_commit(lambda: ingest_file_batch.delay(batch.pk))
    return batch
