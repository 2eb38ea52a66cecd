import pytest

from connectors.models import Pairing, SourceConnection, SyncRun, SyncState
from connectors.services.pairings import create_pairing
from connectors.services.sources import start_sync
from tests.connectors.factories import MarketoInstanceFactory, same_instance_in
from tests.factories import SandboxFactory

pytestmark = pytest.mark.django_db


def url(sandbox, path=""):
    return f"/api/sandboxes/{sandbox.pk}/{path}"


def test_admin_connects_a_marketo_source_which_pairs_the_instance(api_as, admin_user, sandbox, marketo_instance):
    response = api_as(admin_user).post(
        url(sandbox, "sources/"), {"name": "Marketo", "marketo_instance": marketo_instance.pk, "sync_interval_minutes": 5}, format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["kind"], body["name"], body["sync_interval_minutes"], body["latest_run"]) == ("marketo", "Marketo", 5, None)
    assert Pairing.objects.filter(sandbox=sandbox, kind="source", marketo_instance=marketo_instance).exists()
    assert "cursor" not in body


def test_pairing_rule_refusal_names_the_rule(api_as, admin_user, sandbox, marketo_instance):
    elsewhere = SandboxFactory()
    create_pairing(sandbox=elsewhere, kind="source", marketo_instance=same_instance_in(elsewhere.organization, marketo_instance))

    response = api_as(admin_user).post(url(sandbox, "sources/"), {"name": "Marketo", "marketo_instance": marketo_instance.pk}, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["rule"]) == ("rule_violation", "marketo_source_one_organization")
    assert not SourceConnection.objects.exists()


def test_instance_of_another_organization_is_unknown(api_as, admin_user, sandbox, db):
    foreign = MarketoInstanceFactory()
    response = api_as(admin_user).post(url(sandbox, "sources/"), {"name": "M", "marketo_instance": foreign.pk}, format="json")
    assert response.status_code == 400
    assert "marketo_instance" in response.json()["error"]["fields"]


def test_second_connection_to_the_same_instance_is_refused(api_as, admin_user, sandbox, connection):
    response = api_as(admin_user).post(
        url(sandbox, "sources/"), {"name": "Again", "marketo_instance": connection.marketo_instance_id}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["rule"] == "source_connection_duplicate"


def test_backfill_and_sync_queue_runs_and_refuse_a_second_one(api_as, admin_user, sandbox, connection, django_capture_on_commit_callbacks, monkeypatch):
    queued = []
    monkeypatch.setattr("connectors.tasks.run_sync.delay", queued.append)
    client = api_as(admin_user)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url(sandbox, f"sources/{connection.pk}/backfill/"))
    assert response.status_code == 202
    run = SyncRun.objects.get(pk=response.json()["id"])
    assert (run.mode, run.state, run.requested_by) == ("backfill", "queued", admin_user)
    assert queued == [run.pk]

    again = client.post(url(sandbox, f"sources/{connection.pk}/backfill/"))
    assert again.status_code == 400 and again.json()["error"]["rule"] == "sync_in_progress"

    incremental = client.post(url(sandbox, f"sources/{connection.pk}/sync/"))
    assert incremental.status_code == 202 and incremental.json()["mode"] == "incremental"


def test_test_connection_reports_success_and_failure(api_as, admin_user, sandbox, connection, fake_marketo):
    client = api_as(admin_user)
    ok = client.post(url(sandbox, f"sources/{connection.pk}/test/")).json()
    assert ok["ok"] is True and fake_marketo.munchkin_id in ok["message"]

    connection.marketo_instance.client_secret = "wrong"
    connection.marketo_instance.save()
    failed = client.post(url(sandbox, f"sources/{connection.pk}/test/")).json()
    assert failed["ok"] is False and "can't be reached" in failed["message"]


def test_sync_runs_are_read_only_with_progress_and_counts(api_as, viewer, admin_user, sandbox, connection, history, drive):
    run = drive(drive.start(connection))
    body = api_as(viewer).get(url(sandbox, f"sync-runs/{run.pk}/")).json()
    assert body["state"] == "succeeded" and body["percent"] == 100
    assert body["counts"]["person"]["received"] == 3
    listed = api_as(viewer).get(url(sandbox, "sync-runs/"), {"connection": connection.pk}).json()
    assert [r["id"] for r in listed["results"]] == [run.pk]
    assert api_as(admin_user).post(url(sandbox, "sync-runs/"), {}, format="json").status_code == 405
    assert api_as(admin_user).delete(url(sandbox, f"sync-runs/{run.pk}/")).status_code == 405
    source = api_as(viewer).get(url(sandbox, f"sources/{connection.pk}/")).json()
    assert source["latest_run"]["id"] == run.pk


def test_resume_and_cancel(api_as, admin_user, sandbox, connection):
    client = api_as(admin_user)
    run = start_sync(connection, "backfill")
    assert client.post(url(sandbox, f"sync-runs/{run.pk}/resume/")).json()["error"]["rule"] == "sync_not_resumable"
    assert client.post(url(sandbox, f"sync-runs/{run.pk}/cancel/")).json()["state"] == "cancelled"
    SyncRun.objects.filter(pk=run.pk).update(state=SyncState.FAILED)
    assert client.post(url(sandbox, f"sync-runs/{run.pk}/resume/")).json()["state"] == "queued"


def test_viewers_read_but_only_admins_write(api_as, viewer, marketer, sandbox, connection):
    assert api_as(viewer).get(url(sandbox, "sources/")).json()["count"] == 1
    for user in (viewer, marketer):
        client = api_as(user)
        assert client.post(url(sandbox, f"sources/{connection.pk}/backfill/")).status_code == 403
        assert client.patch(url(sandbox, f"sources/{connection.pk}/"), {"name": "x"}, format="json").status_code == 403


def test_edit_and_delete(api_as, admin_user, sandbox, connection, marketo_instance):
    client = api_as(admin_user)
    response = client.patch(url(sandbox, f"sources/{connection.pk}/"), {"name": "Renamed", "enabled": False}, format="json")
    assert response.status_code == 200 and response.json()["name"] == "Renamed"
    other = MarketoInstanceFactory(organization=sandbox.organization)
    moved = client.patch(url(sandbox, f"sources/{connection.pk}/"), {"marketo_instance": other.pk}, format="json")
    assert moved.status_code == 400
    assert client.delete(url(sandbox, f"sources/{connection.pk}/")).status_code == 204
    assert Pairing.objects.filter(sandbox=sandbox, marketo_instance=marketo_instance).exists()


def test_sources_and_runs_of_other_sandboxes_are_invisible(api_as, admin_user, sandbox, connection, organization, make_user):
    run = start_sync(connection, "backfill")
    second = SandboxFactory(organization=organization, name="dev")
    client = api_as(admin_user)
    assert client.get(url(second, "sources/")).json()["count"] == 0
    assert client.get(url(second, f"sources/{connection.pk}/")).status_code == 404
    assert client.get(url(second, f"sync-runs/{run.pk}/")).status_code == 404
    assert client.post(url(second, f"sources/{connection.pk}/backfill/")).status_code == 404
    outsider = make_user()
    assert api_as(outsider).get(url(sandbox, "sources/")).status_code == 404
