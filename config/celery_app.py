"""Celery application: queues, routing, reliability defaults and the beat schedule."""

import os

from celery import Celery
from celery.schedules import crontab
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("quorum")
app.config_from_object("django.conf:settings", namespace="CELERY")

QUEUES = ("default", "segmentation", "connectors", "journeys")

app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_queues=[Queue(name) for name in QUEUES],
    task_default_queue="default",
    # Each app's tasks go to its own queue so a slow backfill never delays a journey step.
    task_routes={
        "cdp.tasks.evaluate_*": {"queue": "segmentation"},
        "connectors.*": {"queue": "connectors"},
        "journeys.*": {"queue": "journeys"},
    },
    # Tasks are idempotent: acknowledge after they finish so a killed worker's task is redelivered.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_soft_time_limit=15 * 60,
    task_time_limit=20 * 60,
    result_expires=24 * 3600,
    broker_connection_retry_on_startup=True,
    beat_schedule={
        "evaluate-due-audiences": {"task": "cdp.tasks.evaluate_due_audiences", "schedule": 60.0},
        "schedule-source-syncs": {"task": "connectors.tasks.schedule_incremental_syncs", "schedule": 60.0},
        "push-stranded-dataflows": {"task": "connectors.tasks.activation.push_stranded_dataflows", "schedule": 300.0},
        "run-due-batch-dataflows": {"task": "connectors.tasks.activation.run_due_batch_dataflows", "schedule": 60.0},
        "finish-ended-journeys": {"task": "journeys.tasks.finish_ended_journeys", "schedule": 300.0},
        "sweep-journey-timers": {"task": "journeys.runtime_tasks.sweep_journey_timers", "schedule": 60.0},
        "refresh-buying-groups": {"task": "journeys.tasks.refresh_buying_groups", "schedule": crontab(hour=3, minute=0)},
    },
)
app.autodiscover_tasks()
# Apps with several task modules (one per area) name them here so workers register them all.
app.autodiscover_tasks(related_name="activation_tasks")
app.autodiscover_tasks(related_name="authoring_tasks")
app.autodiscover_tasks(related_name="runtime_tasks")
