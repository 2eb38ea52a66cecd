"""Celery tasks of buying groups. Thin: take ids, load, call a service. All are idempotent."""

from celery import shared_task

BUYING_GROUP_TASK = dict(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, retry_backoff_max=600, max_retries=5)


@shared_task(name="journeys.tasks.build_buying_groups", acks_late=True, max_retries=5, bind=True)
def build_buying_groups(self, solution_interest_id: int, audience_id: int) -> dict:
    """Build (or resume building) the groups of a solution interest over an account audience."""
    from django.db import OperationalError

    from journeys.choices import BuildStatus
    from journeys.models import BuyingGroupBuild
    from journeys.services.buying_groups import fail_build, run_build

    build = (
        BuyingGroupBuild.objects.select_related("solution_interest__sandbox", "audience", "sandbox")
        .filter(solution_interest_id=solution_interest_id, audience_id=audience_id)
        .first()
    )
    if build is None or build.status in (BuildStatus.SUCCEEDED, BuildStatus.FAILED):
        return {"skipped": True}
    try:
        build = run_build(build)
    except OperationalError as error:  # database away for a moment: resume from the checkpoint
        if self.request.retries >= self.max_retries:
            fail_build(build.pk, str(error))
            raise
        raise self.retry(exc=error, countdown=2 ** (self.request.retries + 1)) from error
    except Exception as error:
        fail_build(build.pk, str(error))
        raise
    return {"status": build.status, "accounts": build.processed_accounts, "created": build.groups_created}


@shared_task(name="journeys.tasks.reassign_buying_group_members", **BUYING_GROUP_TASK)
def reassign_buying_group_members(sandbox_id: int, person_ids: list[int], account_ids: list[int]) -> dict:
    from cdp.models import Sandbox
    from journeys.services.buying_groups import reassign_for_profile_changes

    sandbox = Sandbox.objects.filter(pk=sandbox_id).first()
    if sandbox is None:
        return {"skipped": True}
    return {"groups": reassign_for_profile_changes(sandbox, person_ids=person_ids, account_ids=account_ids)}


@shared_task(name="journeys.tasks.apply_buying_group_audience_changes", **BUYING_GROUP_TASK)
def apply_buying_group_audience_changes(build_id: int) -> dict:
    from journeys.models import BuyingGroupBuild
    from journeys.services.buying_groups import apply_audience_changes

    build = BuyingGroupBuild.objects.filter(pk=build_id).first()
    return {"skipped": True} if build is None else apply_audience_changes(build)


@shared_task(name="journeys.tasks.refresh_buying_groups", **BUYING_GROUP_TASK)
def refresh_buying_groups(sandbox_id: int | None = None) -> dict:
    """Daily (beat): re-check time-window role conditions and recompute engagement scores, for
    every sandbox with buying groups (or one sandbox)."""
    from cdp.models import Sandbox
    from journeys.models import BuyingGroup
    from journeys.services.buying_groups import refresh_daily

    sandbox_ids = [sandbox_id] if sandbox_id else BuyingGroup.objects.values_list("sandbox_id", flat=True).distinct()
    totals = {"rechecked": 0, "scored": 0}
    for sandbox in Sandbox.objects.filter(pk__in=list(sandbox_ids)):
        for key, value in refresh_daily(sandbox).items():
            totals[key] += value
    return totals
