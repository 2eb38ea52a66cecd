"""Keep audiences current as profiles change: every committed ingest announces the changed ids,
and the segmentation queue re-evaluates just those (account audiences included)."""

import logging

from django.db import DatabaseError
from django.dispatch import receiver

from cdp.signals import people_merged, profiles_changed

logger = logging.getLogger(__name__)


@receiver(profiles_changed, dispatch_uid="audiences-on-profiles-changed")
def evaluate_audiences_for_changes(sender, sandbox_id, person_ids, account_ids, **kwargs):
    from cdp.models import Audience
    from cdp.services.audiences import note_profile_changes
    from cdp.tasks import evaluate_pending_changes

    if not Audience.objects.filter(sandbox_id=sandbox_id).exists():
        return
    try:
        note_profile_changes(sandbox_id, person_ids, account_ids)
    except DatabaseError:
        # The profiles are stored (this runs after their commit): the worker notes the ids instead.
        logger.exception("Noting changed profiles of sandbox %s failed; the evaluation task notes them", sandbox_id)
        evaluate_pending_changes.delay(sandbox_id, sorted(person_ids), sorted(account_ids))
    else:
        evaluate_pending_changes.delay(sandbox_id)


@receiver(people_merged, dispatch_uid="audiences-on-people-merged")
def move_audience_memberships(sender, sandbox_id, survivor_id, merged_id, **kwargs):
    from cdp.services.audiences import move_memberships_on_merge

    move_memberships_on_merge(sandbox_id, survivor_id, merged_id)
