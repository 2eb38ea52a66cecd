"""Keep buying groups current: changed profiles re-assign members, and the source audience's
membership changes create groups (entered accounts) or make them inactive (exited accounts)."""

from django.dispatch import receiver

from cdp.signals import audience_deletion_requested, audience_membership_changed, people_merged, profiles_changed


@receiver(profiles_changed, dispatch_uid="buying-groups-on-profiles-changed")
def reassign_members_for_changes(sender, sandbox_id, person_ids, account_ids, **kwargs):
    from journeys.models import BuyingGroup
    from journeys.tasks import reassign_buying_group_members

    if (person_ids or account_ids) and BuyingGroup.objects.filter(sandbox_id=sandbox_id).exists():
        reassign_buying_group_members.delay(sandbox_id, sorted(person_ids), sorted(account_ids))


@receiver(audience_membership_changed, dispatch_uid="buying-groups-on-audience-membership")
def follow_source_audience(sender, sandbox_id, audience_id, **kwargs):
    from journeys.models import BuyingGroupBuild
    from journeys.tasks import apply_buying_group_audience_changes

    for build_id in BuyingGroupBuild.objects.filter(sandbox_id=sandbox_id, audience_id=audience_id).values_list("pk", flat=True):
        apply_buying_group_audience_changes.delay(build_id)


@receiver(people_merged, dispatch_uid="buying-groups-on-people-merged")
def move_buying_group_members(sender, sandbox_id, survivor_id, merged_id, **kwargs):
    from journeys.services.buying_groups import move_members_on_merge

    move_members_on_merge(sandbox_id, survivor_id, merged_id)


@receiver(audience_deletion_requested, dispatch_uid="journeys.keep_audiences_of_running_journeys")
def keep_audiences_of_running_journeys(sender, audience, **kwargs):
    """A live or closed journey still moves the accounts of its audience."""
    from journeys.models import Journey
    from journeys.models.journeys import RUNNING_STATES

    running = Journey.objects.filter(sandbox=audience.sandbox, audience=audience, state__in=RUNNING_STATES)
    names = list(running.order_by("name").values_list("name", flat=True)[:5])
    if names:
        return f"It drives the running journeys {', '.join(names)}: let them finish or abort them first."
    return None
