"""A Marketo backfill whose worker is SIGKILLed mid-run finishes on a new worker, nothing lost or doubled."""

import datetime as dt

import pytest
from django.db.models import F
from django.utils import timezone

from cdp.models import ExperienceEvent, Person
from connectors.models import SyncRun, SyncState
from connectors.services.sources import STALE_AFTER, create_source_connection, start_sync
from connectors.tasks import schedule_incremental_syncs
from tests.faults.conftest import wait_for

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

LEADS = 9
FILE = r"/bulk/v1/leads/export/[\w-]+/file\.json"


def test_backfill_killed_mid_run_resumes_on_a_new_worker_with_exact_counts(
    workers, sandbox, marketo_instance, fake_marketo, marketo_hooks
):
    now = timezone.now()
    for n in range(LEADS):  # spread over 72 days: three 31-day export windows of leads and of activities
        lead = fake_marketo.add_lead(f"p{n}@acme.io", firstName=f"P{n}", at=now - dt.timedelta(days=72 - 8 * n))
        fake_marketo.add_activity(lead, 10, primary_attribute_value="Newsletter", at=now - dt.timedelta(days=71 - 8 * n))
    # Marketo prepares each export at once (else the run parks for a minute per window).
    marketo_hooks.after(r"/bulk/v1/\w+/export/[\w-]+/enqueue\.json", lambda: [fake_marketo.advance_exports() for _ in range(2)])
    second_file = marketo_hooks.hold(FILE, nth=2)
    connection = create_source_connection(
        sandbox=sandbox, name="Marketo", marketo_instance=marketo_instance, enabled=False,
        backfill_since=now - dt.timedelta(days=75),
    )  # fmt: skip
    first = workers.start()

    run = start_sync(connection, "backfill")
    assert second_file["reached"].wait(90), workers.logs()
    # The worker is inside the download of the second window's leads: the first window is stored.
    run.refresh_from_db()
    stored_before = Person.objects.for_sandbox(sandbox).count()
    assert run.state == SyncState.RUNNING and 0 < stored_before < LEADS
    first.kill()
    second_file["release"].set()

    run.refresh_from_db()
    assert run.state == SyncState.RUNNING  # nobody recorded the death
    assert Person.objects.for_sandbox(sandbox).count() == stored_before
    workers.start()
    # Time passes: the dead worker's heartbeat goes stale, and the beat hands the run to a live worker.
    SyncRun.objects.filter(pk=run.pk).update(heartbeat_at=F("heartbeat_at") - STALE_AFTER - dt.timedelta(seconds=1))
    schedule_incremental_syncs.delay()

    def finished():
        run.refresh_from_db()
        return run.state not in (SyncState.QUEUED, SyncState.RUNNING)

    wait_for(finished, "the resumed backfill to finish", on_timeout=workers.logs)
    assert run.state == SyncState.SUCCEEDED, run.error
    assert run.attempts == 2
    assert Person.objects.for_sandbox(sandbox).count() == LEADS
    events = ExperienceEvent.objects.filter(sandbox=sandbox)
    assert events.filter(type="lead.created").count() == LEADS
    assert events.filter(type="email.opened").count() == LEADS
    assert events.count() == 2 * LEADS
    # The run's own counts agree: every row received and created exactly once.
    assert (run.counts["person"]["received"], run.counts["person"]["created"]) == (LEADS, LEADS)
    assert (run.counts["event"]["created"], run.counts["event"]["duplicates"]) == (2 * LEADS, 0)
    assert run.progress_done == run.progress_total
