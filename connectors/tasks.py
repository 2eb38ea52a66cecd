"""Celery tasks of the connectors app's source syncs. Thin: take ids, call a service.

(Destination pushes live in ``connectors/activation_tasks.py``.)
"""

from celery import shared_task


@shared_task(name="connectors.tasks.run_sync", acks_late=True, reject_on_worker_lost=True)
def run_sync(run_id: int) -> dict:
    """Work on a sync run. Idempotent: a run that isn't due or is held by another worker is skipped,
    and a redelivered task continues from the run's checkpoint."""
    from connectors.services.sources import run_sync as run_sync_service

    run = run_sync_service(run_id)
    if run is None:
        return {"skipped": True}
    return {"state": run.state, "progress": [run.progress_done, run.progress_total]}


@shared_task(name="connectors.tasks.schedule_incremental_syncs", acks_late=True)
def schedule_incremental_syncs() -> dict:
    """Beat, every minute: queue due incremental syncs; resume parked, paused and stale runs."""
    from connectors.services.sources import schedule_syncs

    return {"enqueued": schedule_syncs()}
