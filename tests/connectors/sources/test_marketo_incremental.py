import datetime as dt

import pytest

from cdp.models import ExperienceEvent, Identity, Person
from connectors.models import SourceConnection, SyncMode, SyncRun, SyncState
from connectors.services.sources import schedule_syncs

pytestmark = pytest.mark.django_db


def person_of(sandbox, lead_id):
    return Identity.objects.get(sandbox=sandbox, namespace="marketo_lead_id", value=str(lead_id)).person


def test_incremental_sync_follows_paging_tokens_page_after_page(connection, drive, fake_marketo, sandbox):
    ada = fake_marketo.add_lead("ada@acme.com", firstName="Ada")
    fake_marketo.add_activity(ada, 11, primary_attribute_value="Launch mail", attributes={"Link": "https://acme.com/x"})

    run = drive(drive.start(connection, SyncMode.INCREMENTAL))

    assert run.state == SyncState.SUCCEEDED, run.error
    assert person_of(sandbox, ada).first_name == "Ada"
    assert set(ExperienceEvent.objects.filter(sandbox=sandbox).values_list("type", flat=True)) == {"lead.created", "email.clicked"}
    connection.refresh_from_db()
    first_cursor = connection.cursor
    assert first_cursor["lead_changes"] and first_cursor["deleted"] and first_cursor["activities"]
    assert connection.last_synced_at and connection.next_sync_at > connection.last_synced_at

    # Changes after the stored tokens only: the second run reads just those.
    fake_marketo.update_lead(ada, title="CTO", firstName="Augusta")
    bob = fake_marketo.add_lead("bob@globex.com", firstName="Bob")
    run = drive(drive.start(connection, SyncMode.INCREMENTAL))

    assert run.state == SyncState.SUCCEEDED, run.error
    augusta = person_of(sandbox, ada)
    assert (augusta.first_name, augusta.job_title) == ("Augusta", "CTO")
    assert person_of(sandbox, bob).email == "bob@globex.com"
    assert Person.objects.for_sandbox(sandbox).count() == 2
    assert ExperienceEvent.objects.filter(sandbox=sandbox).count() == 3  # + Bob's New Lead
    assert run.counts["event"]["created"] == 1 and run.counts["event"]["duplicates"] == 0
    lookups = fake_marketo.calls("GET", "/rest/v1/leads.json")
    assert lookups[-1].query["filterType"] == ["id"]
    connection.refresh_from_db()
    assert connection.cursor != first_cursor

    # Nothing new: nothing stored, no lead read.
    run = drive(drive.start(connection, SyncMode.INCREMENTAL))
    assert run.state == SyncState.SUCCEEDED
    assert run.counts.get("person", {}).get("received", 0) == 0
    assert len(fake_marketo.calls("GET", "/rest/v1/leads.json")) == len(lookups)


def test_deleted_lead_loses_its_marketo_identity_but_the_person_and_history_stay(connection, drive, fake_marketo, sandbox):
    ada = fake_marketo.add_lead("ada@acme.com", firstName="Ada")
    drive(drive.start(connection, SyncMode.INCREMENTAL))
    person = person_of(sandbox, ada)

    fake_marketo.delete_lead(ada)
    run = drive(drive.start(connection, SyncMode.INCREMENTAL))

    assert run.state == SyncState.SUCCEEDED, run.error
    assert run.counts["person"]["deleted"] == 1
    assert not Identity.objects.filter(sandbox=sandbox, namespace="marketo_lead_id", value=str(ada)).exists()
    person.refresh_from_db()
    assert person.email == "ada@acme.com"
    assert "deleted_in_marketo_at" in person.attributes
    assert ExperienceEvent.objects.filter(sandbox=sandbox, person=person, type="lead.created").exists()


def test_cursor_advances_only_with_stored_pages(connection, drive, fake_marketo, sandbox, monkeypatch):
    from cdp.services.ingestion import store
    from connectors.services import sources

    ada = fake_marketo.add_lead("ada@acme.com", firstName="Ada")
    drive(drive.start(connection, SyncMode.INCREMENTAL))
    connection.refresh_from_db()
    cursor = connection.cursor
    fake_marketo.add_activity(ada, 10, primary_attribute_value="Newsletter")

    def failing_store(sandbox, entity, records, dataset, **kwargs):
        if entity == "event":
            raise RuntimeError("disk full")
        return store.store_records(sandbox, entity, records, dataset, **kwargs)

    monkeypatch.setattr(sources, "store_records", failing_store)
    run = drive.start(connection, SyncMode.INCREMENTAL)
    with pytest.raises(RuntimeError):
        drive(run)
    connection.refresh_from_db()
    assert connection.cursor["activities"] == cursor["activities"]  # the unstored page is read again next time

    monkeypatch.undo()
    run.refresh_from_db()
    assert run.state == SyncState.FAILED
    run = drive(drive.start(connection, SyncMode.INCREMENTAL))
    assert run.state == SyncState.SUCCEEDED
    assert ExperienceEvent.objects.filter(sandbox=sandbox, type="email.opened").count() == 1


def test_beat_queues_due_incremental_syncs_once(connection, drive):
    now = connection.next_sync_at + dt.timedelta(seconds=1)
    queued = schedule_syncs(now=now)
    run = SyncRun.objects.get(connection=connection)
    assert run.mode == SyncMode.INCREMENTAL and queued == [run.pk]
    # While that run is pending the next beat queues nothing new.
    schedule_syncs(now=now + dt.timedelta(minutes=30))
    assert SyncRun.objects.filter(connection=connection).count() == 1

    SourceConnection.objects.filter(pk=connection.pk).update(enabled=False, next_sync_at=now)
    SyncRun.objects.filter(pk=run.pk).update(state=SyncState.SUCCEEDED)
    schedule_syncs(now=now + dt.timedelta(hours=1))
    assert SyncRun.objects.filter(connection=connection).count() == 1


def test_list_additions_keep_static_list_members_current(connection, drive, fake_marketo, sandbox):
    from cdp.models import ListMember

    ada = fake_marketo.add_lead("ada@acme.com", firstName="Ada")
    webinar = fake_marketo.add_list("Webinar")
    fake_marketo.add_activity(ada, 24, primary_attribute_value="Webinar", primary_attribute_value_id=webinar)

    run = drive(drive.start(connection, SyncMode.INCREMENTAL))

    assert run.state == SyncState.SUCCEEDED, run.error
    member = ListMember.objects.get(sandbox=sandbox)
    assert (member.marketing_list.name, member.person_id) == ("Webinar", person_of(sandbox, ada).pk)
    assert ExperienceEvent.objects.filter(sandbox=sandbox, type="list.added").count() == 1
