"""The streaming endpoint's work: validate a request's records, store the good ones at once,
answer per-record errors, keep rejections in the sandbox's error log, and make retries safe."""

import hashlib
import json

from django.db import IntegrityError, transaction
from django.db.models import F, Subquery
from django.utils import timezone

from cdp.choices import BatchStatus, IngestionEntity
from cdp.exceptions import RuleViolation
from cdp.models import IdempotencyKey, IngestionBatch, RejectedRecord
from cdp.services.ingestion.records import Rejection, parse_record
from cdp.services.ingestion.store import store_records
from cdp.services.profiles import identity_owners, lock_sandbox_profiles

MAX_RECORDS_PER_REQUEST = 1000


def _stream_log(sandbox, entity: str):
    today = timezone.now().date()
    return IngestionBatch.objects.filter(
        sandbox=sandbox, kind=IngestionBatch.Kind.STREAM, entity=entity, created_at__date=today
    )


def record_stream_counts(sandbox, entity: str, **counts) -> IngestionBatch | None:
    """Add a request's counts to the day's streaming batch of the entity (created on first use).
    One UPDATE in the usual case: this runs on every streaming request."""
    increments = {name: F(name) + value for name, value in counts.items()}
    # The earliest of the day's logs: two first requests of a day may each have created one.
    earliest = _stream_log(sandbox, entity).order_by("pk").values("pk")[:1]
    if IngestionBatch.objects.filter(pk__in=Subquery(earliest)).update(**increments):
        return None
    return IngestionBatch.objects.create(
        sandbox=sandbox,
        kind=IngestionBatch.Kind.STREAM,
        entity=entity,
        dataset="stream",
        file_name=f"Streaming {entity} {timezone.now().date().isoformat()}",
        file_format=IngestionBatch.FileFormat.JSONL,
        status=BatchStatus.RUNNING,
        started_at=timezone.now(),
        **counts,
    )


def stream_log_batch(sandbox, entity: str) -> IngestionBatch:
    """The day's streaming batch for an entity: where its rejections and counts are kept."""
    return _stream_log(sandbox, entity).order_by("pk").first() or record_stream_counts(sandbox, entity)


def ingest_stream(sandbox, entity: str, items: list, *, idempotency_key: str | None = None, dataset="stream") -> tuple[dict, int]:
    """Store streamed records. Returns (response body, HTTP status). With an idempotency key, a
    retry of the same request returns the first answer and stores nothing again."""
    if len(items) > MAX_RECORDS_PER_REQUEST:
        raise RuleViolation(
            f"A request carries at most {MAX_RECORDS_PER_REQUEST} records; this one has {len(items)}. Split it.",
            rule="stream_batch_size",
            field="records",
        )
    request_hash = hashlib.sha256(json.dumps([entity, items], sort_keys=True, default=str).encode()).hexdigest()
    if idempotency_key:
        replay = _replay(sandbox, idempotency_key, request_hash)
        if replay:
            return replay
    # Validation needs no lock: only the writes are serialised per sandbox.
    records, rejections = _parse(entity, items)
    lock = not _only_events_of_known_people(sandbox, entity, records)
    try:
        return _store_once(sandbox, entity, records, rejections, items, dataset, idempotency_key, request_hash, lock)
    except IntegrityError:
        replay = idempotency_key and _replay(sandbox, idempotency_key, request_hash)
        if replay:
            return replay
        if lock:
            raise
        # A concurrent request stored the same event id first: do it again, serialised.
        return _store_once(sandbox, entity, records, rejections, items, dataset, idempotency_key, request_hash, True)


def _store_once(sandbox, entity, records, rejections, items, dataset, idempotency_key, request_hash, lock):
    with transaction.atomic():
        if lock:
            lock_sandbox_profiles(sandbox)
        if idempotency_key:
            # Claimed first: a concurrent retry waits on this row, then replays our answer.
            claim = IdempotencyKey.objects.create(
                sandbox=sandbox, key=idempotency_key, request_hash=request_hash, response={}, status_code=0
            )
        body, status, counts = _store(sandbox, entity, records, list(rejections), len(items), dataset)
        if idempotency_key:
            claim.response, claim.status_code = body, status
            claim.save(update_fields=["response", "status_code"])
        # Last: every request of the sandbox updates this one row, and holds its lock until commit.
        record_stream_counts(sandbox, entity, **counts)
    return body, status


def _only_events_of_known_people(sandbox, entity, records) -> bool:
    """Events whose identities all belong to one existing person each, with no account to
    resolve, create no profile or identity: they need not wait for the sandbox's writer lock."""
    if entity != IngestionEntity.EVENT or not records or any(r.refs.get("account") for r in records):
        return False
    owners = identity_owners(sandbox, {key for record in records for key in record.identities}, "person_id")
    for record in records:
        people = {owners.get(key) or None for key in record.identities}  # False: an account's identity
        if None in people or len(people) != 1:
            return False
    return True


def _replay(sandbox, key, request_hash):
    stored = IdempotencyKey.objects.filter(sandbox=sandbox, key=key).first()
    if stored is None:
        return None
    if stored.request_hash != request_hash:
        raise RuleViolation(
            "This Idempotency-Key was already used with a different request body. Use a new key for a new request.",
            rule="idempotency_key_reused",
            field="Idempotency-Key",
        )
    return {**stored.response, "replayed": True}, stored.status_code


def _parse(entity, items):
    records, rejections = [], []
    for index, raw in enumerate(items):
        if not isinstance(raw, dict):
            rejections.append(Rejection(index, "each record must be a JSON object", raw=str(raw)[:2000]))
            continue
        item = parse_record(entity, index, raw, strict_keys=True)
        (rejections if isinstance(item, Rejection) else records).append(item)
    return records, rejections


def _store(sandbox, entity, records, rejections, item_count, dataset):
    """(response body, HTTP status, the counts to add to the day's stream log)."""
    result = store_records(sandbox, entity, records, dataset, locked=True) if records else None
    if result:
        rejections += result.rejections
    counts = {
        "created": result.created if result else 0,
        "updated": result.updated if result else 0,
        "merged": result.merged if result else 0,
        "rejected": len(rejections),
        "rows_done": item_count,
    }
    if rejections:
        batch = stream_log_batch(sandbox, entity)
        RejectedRecord.objects.bulk_create(
            [
                RejectedRecord(sandbox=sandbox, batch=batch, row_number=r.row_number, field=r.field, reason=r.reason, raw=r.raw)
                for r in rejections
            ]
        )
    accepted = len(records) - (len(result.rejections) if result else 0)
    body = {
        "accepted": accepted,
        "created": result.created if result else 0,
        "updated": result.updated if result else 0,
        "merged": result.merged if result else 0,
        "rejected": [
            {"index": r.row_number, "field": r.field, "reason": r.reason, "duplicate": r.duplicate}
            for r in sorted(rejections, key=lambda r: r.row_number)
        ],
    }
    if accepted == 0 and rejections:
        return body, 422, counts
    return body, 207 if rejections else 200, counts
