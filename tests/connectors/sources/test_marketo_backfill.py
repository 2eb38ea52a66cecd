import datetime as dt

import pytest

from cdp.models import Account, AccountPerson, CampaignMember, ExperienceEvent, Identity, ListMember, MarketingList, Person
from connectors.models import SyncRejection, SyncState
from connectors.services.sources import resume_run
from tests.connectors.sources.conftest import days_ago

pytestmark = pytest.mark.django_db


def test_backfill_leads_activities_lists_programs_across_windows(connection, history, drive, fake_marketo, sandbox):
    run = drive(drive.start(connection))

    assert run.state == SyncState.SUCCEEDED, run.error
    assert Person.objects.for_sandbox(sandbox).count() == 3
    ada = Identity.objects.get(sandbox=sandbox, namespace="marketo_lead_id", value=str(history["ada"])).person
    assert (ada.first_name, ada.email) == ("Ada", "ada@acme.com")
    assert set(ada.identities.values_list("namespace", flat=True)) == {"marketo_lead_id", "email", "sfdc_contact_id"}
    account = Account.objects.get(sandbox=sandbox, identities__namespace="sfdc_account_id")
    assert account.name == "Acme"
    assert AccountPerson.objects.filter(sandbox=sandbox, person=ada, account=account).exists()
    globex = Account.objects.get(sandbox=sandbox, domain="globex.com")
    assert globex.name == "Globex"
    bob = Identity.objects.get(sandbox=sandbox, namespace="marketo_lead_id", value=str(history["bob"])).person
    assert AccountPerson.objects.filter(sandbox=sandbox, person=bob, account=globex).exists()
    # 3 New Lead activities + 4 seeded ones, one event per activity.
    events = ExperienceEvent.objects.filter(sandbox=sandbox)
    assert events.count() == 7
    assert set(events.values_list("type", flat=True)) == {"lead.created", "web.visit", "email.opened", "email.clicked", "form.filled"}
    visit = events.get(type="web.visit")
    assert visit.person_id == ada.pk and visit.properties["Query Parameters"] == "a=1"
    assert MarketingList.objects.get(sandbox=sandbox).name == "Webinar attendees"
    assert ListMember.objects.filter(sandbox=sandbox).count() == 2
    member = CampaignMember.objects.get(sandbox=sandbox)
    assert (member.campaign.name, member.status, member.has_responded) == ("Spring webinar", "Attended", True)
    # 75 days of history → three windows per entity, each one export job.
    exports = fake_marketo.calls("POST", "/bulk/v1/leads/export/create.json")
    assert len(exports) == 3
    assert run.counts["person"]["received"] == 3 and run.counts["event"]["created"] == 7
    assert run.progress_done == run.progress_total > 0
    assert not SyncRejection.objects.exists()


def test_failed_bulk_export_fails_the_run_with_the_reason_and_resume_exports_again(connection, history, drive, fake_marketo, sandbox):
    fake_marketo.fail_next_export("Export failed: disk full")

    run = drive(drive.start(connection))

    assert run.state == SyncState.FAILED
    assert "disk full" in run.error and "leads created 2025-12-16" in run.error
    assert Person.objects.for_sandbox(sandbox).count() == 0

    run = drive(resume_run(run))

    assert run.state == SyncState.SUCCEEDED, run.error
    assert Person.objects.for_sandbox(sandbox).count() == 3
    assert len(fake_marketo.calls("POST", "/bulk/v1/leads/export/create.json")) == 4


class Crash(Exception):
    pass


class WorkerKilled(BaseException):
    """Stands for the process dying: nothing of the runner's error handling runs."""


def crash_on_call(monkeypatch, number, error):
    """Make the ``number``-th store of profile records raise ``error`` half-way through its transaction."""
    from cdp.services.ingestion import store
    from connectors.services import sources

    calls = {"n": 0}

    def store_then_crash(sandbox, entity, records, dataset, **kwargs):
        result = store.store_records(sandbox, entity, records, dataset, **kwargs)
        calls["n"] += 1
        if calls["n"] == number:
            raise error
        return result

    monkeypatch.setattr(sources, "store_records", store_then_crash)


@pytest.fixture
def many_leads(fake_marketo, monkeypatch):
    from connectors.marketo import source

    monkeypatch.setattr(source, "CHUNK_ROWS", 2)
    for n in range(7):
        lead = fake_marketo.add_lead(f"p{n}@example.com", firstName=f"P{n}", at=days_ago(10 + n))
        fake_marketo.add_activity(lead, 10, primary_attribute_value="Newsletter", at=days_ago(9))


def test_run_that_crashed_mid_chunk_resumes_from_its_checkpoint_without_loss_or_duplicates(connection, many_leads, drive, monkeypatch, sandbox):
    crash_on_call(monkeypatch, 3, Crash("database went away"))
    run = drive.start(connection)
    with pytest.raises(Crash):
        drive(run)
    run.refresh_from_db()
    assert run.state == SyncState.FAILED and "database went away" in run.error
    stored_before = Person.objects.for_sandbox(sandbox).count()
    assert 0 < stored_before < 7

    monkeypatch.undo()
    from connectors.marketo import source

    monkeypatch.setattr(source, "CHUNK_ROWS", 2)
    run = drive(resume_run(run))

    assert run.state == SyncState.SUCCEEDED, run.error
    assert Person.objects.for_sandbox(sandbox).count() == 7
    assert ExperienceEvent.objects.filter(sandbox=sandbox, type="email.opened").count() == 7
    assert ExperienceEvent.objects.filter(sandbox=sandbox, type="lead.created").count() == 7
    assert run.counts["person"]["received"] == 7
    assert run.counts["person"]["created"] == 7
    assert run.counts["event"]["created"] == 14 and run.counts["event"]["duplicates"] == 0


def test_run_whose_worker_died_is_picked_up_by_the_beat_once_its_heartbeat_is_stale(connection, many_leads, drive, monkeypatch, sandbox):
    from connectors.services.sources import STALE_AFTER, schedule_syncs

    crash_on_call(monkeypatch, 4, WorkerKilled())
    run = drive.start(connection)
    with pytest.raises(WorkerKilled):
        drive(run)
    run.refresh_from_db()
    assert run.state == SyncState.RUNNING  # nobody recorded the death
    monkeypatch.undo()
    from connectors.marketo import source

    monkeypatch.setattr(source, "CHUNK_ROWS", 2)

    assert run.pk not in schedule_syncs(now=run.heartbeat_at + STALE_AFTER / 2)
    drive.now = run.heartbeat_at + STALE_AFTER + dt.timedelta(seconds=1)
    assert run.pk in schedule_syncs(now=drive.now)
    run = drive(run)

    assert run.state == SyncState.SUCCEEDED, run.error
    assert run.attempts >= 2
    assert Person.objects.for_sandbox(sandbox).count() == 7
    assert ExperienceEvent.objects.filter(sandbox=sandbox).count() == 14
    assert run.counts["person"]["received"] == 7


def test_quota_exhausted_pauses_the_run_until_utc_midnight_then_the_beat_resumes_it(connection, history, drive, fake_marketo, settings, sandbox):
    from connectors.services.sources import schedule_syncs

    fake_marketo.quota_after(12)
    run = drive(drive.start(connection))

    assert run.state == SyncState.PAUSED
    assert "quota" in run.error.lower()
    midnight = run.resume_after
    assert (midnight.hour, midnight.minute, midnight.second) == (0, 0, 0)
    assert run.pk not in schedule_syncs(now=midnight - dt.timedelta(minutes=1))

    # Next day: Marketo's quota (and the client's memory of it) starts afresh.
    settings.MARKETO_STATE_PREFIX += ":next-day"
    fake_marketo.quota_after(10_000)
    drive.now = midnight + dt.timedelta(seconds=1)
    assert run.pk in schedule_syncs(now=drive.now)
    run = drive(run)

    assert run.state == SyncState.SUCCEEDED, run.error
    assert Person.objects.for_sandbox(sandbox).count() == 3
    assert ExperienceEvent.objects.filter(sandbox=sandbox).count() == 7
