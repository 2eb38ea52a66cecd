"""Celery tasks of journey authoring (thin: load by id, call the service)."""

from celery import shared_task
from django.db import OperationalError

from cdp.exceptions import RuleViolation


# Idempotent (publishing a live journey returns its version), so a lost worker or a database
# hiccup is simply retried.
@shared_task(
    name="journeys.tasks.publish_journey", acks_late=True, reject_on_worker_lost=True,
    autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5,
)  # fmt: skip
def publish_journey_task(journey_id: int, user_id: int | None = None) -> dict:
    """Publish a journey (idempotent: a retry of a publish that committed finds the version)."""
    from django.contrib.auth import get_user_model

    from journeys.models import Journey
    from journeys.services.journeys import JourneyInvalid, publish_journey

    journey = Journey.objects.filter(pk=journey_id).first()
    if journey is None:
        return {"journey": journey_id, "published": False, "error": "The journey no longer exists."}
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    try:
        version = publish_journey(journey, by=user)
    except JourneyInvalid as invalid:
        return {"journey": journey_id, "published": False, "errors": invalid.errors}
    except RuleViolation as refused:
        return {"journey": journey_id, "published": False, "error": refused.message}
    return {"journey": journey_id, "published": True, "version": version.number}


@shared_task(name="journeys.tasks.finish_ended_journeys", acks_late=True)
def finish_ended_journeys_task() -> list[int]:
    """Finish running journeys whose end date has passed (beat, every few minutes)."""
    from journeys.services.journeys import finish_ended_journeys

    return finish_ended_journeys()
