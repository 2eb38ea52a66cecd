"""Celery tasks of the journey runtime (thin: ids in, a service call) and the receivers that
start them. Imported by journeys.apps (ready) so the receivers are connected in every process."""

from celery import shared_task
from django.db import transaction
from django.dispatch import receiver

from cdp.signals import audience_membership_changed, people_merged, profiles_changed
from journeys.models import Journey
from journeys.models.journeys import JourneyState
from journeys.services import runtime
from journeys.services.journeys import journey_published

MAX_SWEEP_BATCHES = 20  # the rest waits for the next minute
RETRY = dict(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, retry_backoff_max=600, max_retries=8)


@shared_task(**RETRY)
def advance_enrollments_task(enrollment_ids: list[int]):
    runtime.advance_in_batch(enrollment_ids)


@shared_task(**RETRY)
def advance_enrollment_task(enrollment_id: int):
    """One enrollment on its own: what a failed batch is split into (and what older messages queued)."""
    runtime.advance_enrollment(enrollment_id)


@shared_task(acks_late=True)
def sweep_journey_timers():
    """Beat, every minute: wake due waits and listen timeouts and buying-group listeners, take
    the accounts out of stopped journeys, advance enrollments whose advance was lost with its
    worker, and enroll accounts a missed audience signal left behind."""
    for _ in range(MAX_SWEEP_BATCHES):
        if runtime.sweep_timers() < runtime.SWEEP_BATCH:
            break
    runtime.poll_listeners()
    runtime.stop_ended_enrollments()
    runtime.resume_stalled_enrollments()
    runtime.enroll_live_journeys()


@shared_task(**RETRY)
def enroll_journey_members(journey_id: int):
    journey = Journey.objects.filter(pk=journey_id).select_related("current_version").first()
    if journey is not None:
        runtime.enroll_new_members(journey)


@shared_task(**RETRY)
def wake_listeners_task(sandbox_id: int, person_ids: list[int]):
    runtime.wake_listeners(sandbox_id, person_ids)


@receiver(audience_membership_changed, dispatch_uid="journeys.runtime.audience_changed")
def _audience_changed(sender, sandbox_id, audience_id, kind, entered, **kwargs):
    if not entered:
        return
    for journey_id in Journey.objects.filter(sandbox_id=sandbox_id, audience_id=audience_id, state=JourneyState.LIVE).values_list("pk", flat=True):
        transaction.on_commit(lambda j=journey_id: enroll_journey_members.delay(j))


@receiver(journey_published, dispatch_uid="journeys.runtime.published")
def _published(sender, journey_id, **kwargs):
    enroll_journey_members.delay(journey_id)


@receiver(profiles_changed, dispatch_uid="journeys.runtime.profiles_changed")
def _profiles_changed(sender, sandbox_id, person_ids, **kwargs):
    ids = sorted(person_ids or ())
    if ids and runtime.waiting_listeners(sandbox_id, ids):
        transaction.on_commit(lambda: wake_listeners_task.delay(sandbox_id, ids))


@receiver(people_merged, dispatch_uid="journeys.runtime.people_merged")
def _people_merged(sender, sandbox_id, survivor_id, merged_id, **kwargs):
    runtime.move_state_on_merge(sandbox_id, survivor_id, merged_id)
