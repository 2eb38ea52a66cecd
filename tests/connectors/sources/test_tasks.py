"""Celery wiring (eager in tests): the beat task queues due syncs and run_sync works them."""

import datetime as dt

import pytest
from django.utils import timezone

from cdp.models import Identity, Person
from connectors.models import SourceConnection, SyncRejection, SyncRun, SyncState
from connectors.services.sources import create_source_connection, source_for
from connectors.tasks import run_sync, schedule_incremental_syncs
from tests.factories import SandboxFactory

pytestmark = pytest.mark.django_db


def test_beat_task_queues_the_due_sync_and_the_worker_task_runs_it(connection, fake_marketo, sandbox, django_capture_on_commit_callbacks):
    lead = fake_marketo.add_lead("ada@acme.com", firstName="Ada")
    SourceConnection.objects.filter(pk=connection.pk).update(next_sync_at=timezone.now() - dt.timedelta(seconds=1))

    with django_capture_on_commit_callbacks(execute=True):
        result = schedule_incremental_syncs.delay().get()

    run = SyncRun.objects.get(connection=connection)
    assert result == {"enqueued": [run.pk]}
    assert run.state == SyncState.SUCCEEDED, run.error
    assert Identity.objects.filter(sandbox=sandbox, namespace="marketo_lead_id", value=str(lead)).exists()
    # A redelivered task finds nothing to do.
    assert run_sync.delay(run.pk).get() == {"skipped": True}


def test_records_that_cant_be_stored_are_kept_with_the_reason(connection, fake_marketo, drive, sandbox):
    good = fake_marketo.add_lead("ada@acme.com", firstName="Ada")
    bad = fake_marketo.add_lead("not-an-email", firstName="Bad")
    run = drive(drive.start(connection, "incremental"))

    assert run.state == SyncState.SUCCEEDED
    assert run.counts["person"]["received"] == 2 and run.counts["person"]["rejected"] == 1
    rejection = SyncRejection.objects.get(run=run)
    assert rejection.source_ref == f"lead {bad}" and rejection.field == "email"
    assert "not an email address" in rejection.reason and "not-an-email" in rejection.raw
    assert Identity.objects.filter(sandbox=sandbox, namespace="marketo_lead_id", value=str(good)).exists()


def test_a_sync_writes_only_into_its_own_sandbox(connection, fake_marketo, drive, sandbox, organization, marketo_instance):
    # The same Marketo instance may feed two sandboxes of one organization.
    dev = SandboxFactory(organization=organization, name="dev")
    dev_connection = create_source_connection(sandbox=dev, name="Marketo → dev", marketo_instance=marketo_instance)
    fake_marketo.add_lead("ada@acme.com", firstName="Ada")

    drive(drive.start(connection, "incremental"))

    assert Person.objects.for_sandbox(sandbox).count() == 1
    assert Person.objects.for_sandbox(dev).count() == 0
    assert not SyncRun.objects.filter(connection=dev_connection).exists()


def test_unknown_kind_fails_the_run_with_a_message(connection, drive, monkeypatch):
    from connectors.services import sources

    monkeypatch.delitem(sources.SOURCE_KINDS, "marketo")
    monkeypatch.setattr(sources, "SOURCE_MODULES", ())
    run = drive(drive.start(connection, "backfill"))
    assert run.state == SyncState.FAILED and "not available" in run.error


def test_marketo_connections_are_synced_by_the_marketo_source(connection):
    from connectors.marketo.source import MarketoSource

    assert isinstance(source_for(connection), MarketoSource)
