"""Keep audiences current as profiles change: every committed ingest announces the changed ids,
and the segmentation queue re-evaluates just those (account audiences included)."""

from django.dispatch import receiver

from cdp.signals import people_merged, profiles_changed


@receiver(profiles_changed, dispatch_uid="audiences-on-profiles-changed")
def evaluate_audiences_for_changes(sender, sandbox_id, person_ids, account_ids, noted=False, **kwargs):
    """Queue a pass over the noted changes. Writers note them in their own transaction
    (announce_profile_changes); a sender that didn't is noted for here."""
    from cdp.models import Audience
    from cdp.services.audiences import note_profile_changes
    from cdp.tasks import evaluate_pending_changes

    if not noted:
        if not Audience.objects.filter(sandbox_id=sandbox_id).exists():
            return
        note_profile_changes(sandbox_id, person_ids, account_ids)
    evaluate_pending_changes.delay(sandbox_id)


@receiver(people_merged, dispatch_uid="audiences-on-people-merged")
def move_audience_memberships(sender, sandbox_id, survivor_id, merged_id, **kwargs):
    from cdp.services.audiences import move_memberships_on_merge

    move_memberships_on_merge(sandbox_id, survivor_id, merged_id)
