"""The Sources pages (/connectors/sources/…)."""

import datetime as dt

import pytest
from django.urls import reverse

from connectors.models import SourceConnection, SyncRejection, SyncRun, SyncState
from connectors.services.pairings import create_pairing
from connectors.services.sources import start_sync
from tests.connectors.factories import MarketoInstanceFactory, same_instance_in
from cdp.choices import Role
from cdp.middleware import SESSION_KEY
from tests.factories import SandboxFactory, grant

pytestmark = pytest.mark.django_db
SOURCES = reverse("connectors:sources")


def test_list_shows_connections_with_their_latest_run(login, viewer, connection):
    run = start_sync(connection, "backfill")
    SyncRun.objects.filter(pk=run.pk).update(state=SyncState.FAILED, error="Marketo said no")
    html = login(viewer).get(SOURCES).content.decode()
    assert "Marketo production" in html and "Failed" in html and "Marketo said no" in html
    assert "Connect a source" not in html  # viewers don't write


def test_admin_connects_a_source_through_the_form(login, admin_user, sandbox, marketo_instance):
    response = login(admin_user).post(
        SOURCES, {"instance": f"marketo:{marketo_instance.pk}", "name": "Marketo", "enabled": "on", "sync_interval_minutes": 10}
    )
    connection = SourceConnection.objects.get(sandbox=sandbox)
    assert response.status_code == 302 and response.url == reverse("connectors:source-detail", args=[connection.pk])
    assert (connection.name, connection.sync_interval_minutes, connection.enabled) == ("Marketo", 10, True)


def test_a_pairing_rule_refusal_shows_on_the_form(login, admin_user, sandbox, marketo_instance):
    elsewhere = SandboxFactory()
    create_pairing(sandbox=elsewhere, kind="source", marketo_instance=same_instance_in(elsewhere.organization, marketo_instance))
    response = login(admin_user).post(
        SOURCES, {"instance": f"marketo:{marketo_instance.pk}", "name": "Marketo", "sync_interval_minutes": 10}
    )
    assert response.status_code == 200
    assert "already a source for another organization" in response.content.decode()
    assert not SourceConnection.objects.exists()


def test_form_offers_only_this_organizations_instances(login, admin_user, sandbox):
    ours = MarketoInstanceFactory(organization=sandbox.organization, name="Ours")
    theirs = MarketoInstanceFactory(name="Theirs")
    html = login(admin_user).get(SOURCES).content.decode()
    assert f"marketo:{ours.pk}" in html and "Theirs" not in html
    response = login(admin_user).post(SOURCES, {"instance": f"marketo:{theirs.pk}", "name": "x", "sync_interval_minutes": 5})
    assert response.status_code == 200 and not SourceConnection.objects.exists()


def test_detail_buttons_test_connection_and_start_backfill(login, admin_user, connection, fake_marketo):
    client = login(admin_user)
    detail = reverse("connectors:source-detail", args=[connection.pk])
    response = client.post(reverse("connectors:source-action", args=[connection.pk, "test"]), follow=True)
    assert f"Connected to Marketo instance {fake_marketo.munchkin_id}" in response.content.decode()

    response = client.post(reverse("connectors:source-action", args=[connection.pk, "backfill"]))
    assert response.url == detail
    run = SyncRun.objects.get(connection=connection)
    html = client.get(detail).content.decode()
    assert "Historical backfill" in html and reverse("connectors:source-run-progress", args=[run.pk]) in html

    refused = client.post(reverse("connectors:source-action", args=[connection.pk, "backfill"]), follow=True)
    assert "already in progress" in refused.content.decode()
    assert client.post(reverse("connectors:source-action", args=[connection.pk, "explode"])).status_code == 404


def test_progress_partial_polls_while_active_and_stops_when_done(login, viewer, connection, history, drive):
    run = start_sync(connection, "backfill")
    url = reverse("connectors:source-run-progress", args=[run.pk])
    client = login(viewer)
    assert 'hx-trigger="every 2s"' in client.get(url).content.decode()
    drive(run)
    html = client.get(url).content.decode()
    assert "hx-trigger" not in html and "100%" in html and "Succeeded" in html


def test_run_page_shows_counts_and_rejections_and_resume(login, admin_user, connection):
    run = start_sync(connection, "backfill")
    SyncRun.objects.filter(pk=run.pk).update(
        state=SyncState.FAILED, error="stopped", counts={"person": {"received": 2, "created": 1, "rejected": 1}}
    )
    SyncRejection.objects.create(sandbox=connection.sandbox, run=run, entity="person", source_ref="lead 7", field="email", reason="email: 'x' is not an email address")
    client = login(admin_user)
    html = client.get(reverse("connectors:source-run", args=[run.pk])).content.decode()
    assert "lead 7" in html and "is not an email address" in html and "Resume" in html
    client.post(reverse("connectors:source-run-action", args=[run.pk, "resume"]))
    run.refresh_from_db()
    assert run.state == SyncState.QUEUED


def test_settings_edit_and_disconnect(login, admin_user, connection):
    client = login(admin_user)
    detail = reverse("connectors:source-detail", args=[connection.pk])
    client.post(detail, {"name": "Renamed", "sync_interval_minutes": 30, "backfill_since": "2026-01-01 00:00"})
    connection.refresh_from_db()
    assert (connection.name, connection.sync_interval_minutes, connection.enabled) == ("Renamed", 30, False)
    assert connection.backfill_since == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    refused = client.post(detail, {"name": "Renamed", "sync_interval_minutes": 0})
    assert refused.status_code == 200 and "at most once a minute" in refused.content.decode()
    client.post(reverse("connectors:source-action", args=[connection.pk, "delete"]))
    assert not SourceConnection.objects.exists()


def test_viewers_cannot_write_and_other_sandboxes_see_nothing(login, viewer, connection, make_user, organization):
    client = login(viewer)
    assert client.post(reverse("connectors:source-action", args=[connection.pk, "backfill"])).status_code == 403
    assert not SyncRun.objects.exists()
    other = SandboxFactory(organization=organization, name="dev")
    grant(viewer, other, Role.ADMIN)
    session = client.session
    session[SESSION_KEY] = other.pk
    session.save()
    assert client.get(reverse("connectors:source-detail", args=[connection.pk])).status_code == 404
    assert "Marketo production" not in client.get(SOURCES).content.decode()
