"""The sync runner's claims: one worker per run, and a run taken away stops writing."""

import datetime as dt

import pytest

from cdp.models import Person
from connectors.models import SyncRun, SyncState
from connectors.services.sources import STALE_AFTER, cancel_run, claim_run, start_sync

pytestmark = pytest.mark.django_db


def test_a_run_is_claimed_once_until_its_heartbeat_goes_stale(connection):
    run = start_sync(connection, "backfill")
    now = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)

    first = claim_run(run.pk, now=now)
    assert first.state == SyncState.RUNNING and first.attempts == 1
    assert claim_run(run.pk, now=now + STALE_AFTER / 2) is None  # its worker is alive
    second = claim_run(run.pk, now=now + STALE_AFTER + dt.timedelta(seconds=1))
    assert second.attempts == 2 and second.started_at == first.started_at


def test_parked_and_finished_runs_are_not_claimed(connection):
    run = start_sync(connection, "backfill")
    now = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    SyncRun.objects.filter(pk=run.pk).update(resume_after=now + dt.timedelta(minutes=1))
    assert claim_run(run.pk, now=now) is None
    assert claim_run(run.pk, now=now + dt.timedelta(minutes=1)) is not None
    SyncRun.objects.filter(pk=run.pk).update(state=SyncState.SUCCEEDED)
    assert claim_run(run.pk, now=now + dt.timedelta(days=1)) is None


def test_cancelling_a_running_sync_stops_it_before_its_next_chunk_is_written(connection, history, drive, monkeypatch, sandbox):
    from connectors.marketo.source import MarketoSource

    lead_rows = MarketoSource.lead_rows

    def rows_while_cancelled(self, leads):
        cancel_run(SyncRun.objects.get(connection=connection))  # a person pressed Cancel meanwhile
        return lead_rows(self, leads)

    monkeypatch.setattr(MarketoSource, "lead_rows", rows_while_cancelled)
    run = drive(drive.start(connection))

    assert run.state == SyncState.CANCELLED
    assert Person.objects.for_sandbox(sandbox).count() == 0  # the chunk in flight was not written
    assert run.counts == {}


def test_beat_resends_a_queued_run_only_once_nobody_took_it_for_a_while(connection):
    from connectors.services.sources import REQUEUE_AFTER, schedule_syncs

    run = start_sync(connection, "backfill")
    assert run.pk not in schedule_syncs(now=run.created_at + dt.timedelta(minutes=1))
    assert run.pk in schedule_syncs(now=run.created_at + REQUEUE_AFTER + dt.timedelta(seconds=1))


def test_an_unpaired_instance_no_longer_syncs(connection, drive, fake_marketo):
    from cdp.exceptions import RuleViolation
    from connectors.models import Pairing
    from connectors.services.pairings import delete_pairing
    from connectors.services.sources import schedule_syncs

    run = start_sync(connection, "incremental")
    delete_pairing(Pairing.objects.get(sandbox=connection.sandbox, kind="source"))

    run = drive(run)
    assert run.state == SyncState.FAILED and "no longer paired" in run.error
    with pytest.raises(RuleViolation) as refused:
        start_sync(connection, "backfill")
    assert refused.value.rule == "source_not_paired"
    assert schedule_syncs(now=connection.next_sync_at + dt.timedelta(hours=1)) == []
    assert fake_marketo.calls() == []
