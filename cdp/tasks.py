"""Celery tasks of the cdp app. Thin: take ids, load, call a service."""

from celery import shared_task
from django.db import OperationalError, connection
from django.utils import timezone


@shared_task(bind=True, name="cdp.tasks.health_check")
def health_check(self) -> dict:
    """Prove a worker is consuming and can reach the database (used by monitoring and tests)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {
        "ok": True,
        # The database name lets a caller check the worker talks to the same database it does.
        "database": str(connection.settings_dict["NAME"]),
        "worker": self.request.hostname,
        "at": timezone.now().isoformat(),
    }


@shared_task(bind=True, name="cdp.tasks.ingest_file_batch", acks_late=True, max_retries=5)
def ingest_file_batch(self, batch_id: int) -> dict:
    """Process an uploaded file; safe to run again after a crash (it resumes at its checkpoint)."""
    from cdp.models import IngestionBatch
    from cdp.services.ingestion.files import fail_file_batch, run_file_batch

    batch = IngestionBatch.objects.select_related("sandbox").filter(pk=batch_id).first()
    if batch is None or batch.status in ("succeeded", "failed"):
        return {"skipped": True}
    try:
        batch = run_file_batch(batch)
    except OperationalError as error:  # database away for a moment: resume later from the checkpoint
        if self.request.retries >= self.max_retries:
            fail_file_batch(batch_id, str(error))
            raise
        raise self.retry(exc=error, countdown=2 ** (self.request.retries + 1)) from error
    except Exception as error:
        fail_file_batch(batch_id, str(error))
        raise
    return {"status": batch.status, "created": batch.created, "updated": batch.updated, "rejected": batch.rejected}


SEGMENTATION_TASK = dict(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, retry_backoff_max=600, max_retries=5)


@shared_task(name="cdp.tasks.evaluate_audiences_in_full", **SEGMENTATION_TASK)
def evaluate_audiences_in_full(sandbox_id: int, audience_ids: list[int]) -> dict:
    from cdp.models import Sandbox
    from cdp.services.audiences import evaluate_in_full

    sandbox = Sandbox.objects.filter(pk=sandbox_id).first()
    if sandbox is None:
        return {"skipped": True}
    evaluations = evaluate_in_full(sandbox, audience_ids)
    return {"evaluated": len(evaluations)}


@shared_task(name="cdp.tasks.evaluate_pending_changes", **SEGMENTATION_TASK)
def evaluate_pending_changes(sandbox_id: int) -> dict:
    """Queued after every ingest that changed profiles; while the worker is behind, the first of
    the queued tasks evaluates every change noted so far and the rest find nothing left to do."""
    from cdp.models import Sandbox
    from cdp.services.audiences import evaluate_pending_changes as evaluate

    sandbox = Sandbox.objects.filter(pk=sandbox_id).first()
    if sandbox is None:
        return {"skipped": True}
    return {"evaluated": evaluate(sandbox)}


@shared_task(name="cdp.tasks.evaluate_due_audiences", acks_late=True)
def evaluate_due_audiences() -> dict:
    """Beat, every minute: batch evaluations that are due, time-window sweeps, stuck runs, and
    noted profile changes that no pass took."""
    from collections import defaultdict

    from cdp.services.audiences import audiences_due, sandboxes_with_stranded_changes

    by_sandbox = defaultdict(list)
    for sandbox_id, audience_id in audiences_due():
        by_sandbox[sandbox_id].append(audience_id)
    for sandbox_id, audience_ids in by_sandbox.items():
        evaluate_audiences_in_full.delay(sandbox_id, audience_ids)
    stranded = sandboxes_with_stranded_changes()
    for sandbox_id in stranded:
        evaluate_pending_changes.delay(sandbox_id)
    return {"queued": sum(map(len, by_sandbox.values())), "stranded_changes": len(stranded)}
