"""Celery tasks of activation. Thin: take ids, call ``connectors.services.activation``.

Task names start with ``connectors.tasks.`` so they are routed to the connectors queue.
"""

from celery import shared_task

ACTIVATION_TASK = dict(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, retry_backoff_max=600, max_retries=5)


@shared_task(name="connectors.tasks.activation.push_dataflow", **ACTIVATION_TASK)
def push_dataflow_task(dataflow_id: int, trigger: str = "streaming") -> dict:
    from connectors.services.activation import push_dataflow

    run = push_dataflow(dataflow_id, trigger=trigger)
    if run is None:
        return {"run": None}
    return {"run": run.pk, "status": run.status, "sent": run.sent, "unmatched": run.unmatched, "failed": run.failed}


@shared_task(name="connectors.tasks.activation.run_due_batch_dataflows", acks_late=True)
def run_due_batch_dataflows_task() -> dict:
    from connectors.services.activation import run_due_batch_dataflows

    return {"started": run_due_batch_dataflows()}


@shared_task(name="connectors.tasks.activation.push_stranded_dataflows", acks_late=True)
def push_stranded_dataflows_task() -> dict:
    from connectors.services.activation import push_stranded_dataflows

    return {"queued": push_stranded_dataflows()}
