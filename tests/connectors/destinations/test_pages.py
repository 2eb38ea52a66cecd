"""Destination and dataflow pages: catalog, create, wizard, detail with runs, actions, roles."""

import json

from connectors.models import Dataflow, DataflowState, DeadLetter, Destination
from connectors.services.activation import create_dataflow, create_destination, push_dataflow

SECRET = "s3cret-s3cret-s3cret"


def test_the_catalog_lists_the_three_kinds(login, viewer, admin_user):
    page = login(viewer).get("/connectors/destinations/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Marketo Engage static list" in text and "Webhook" in text and "CSV file export" in text
    assert "/connectors/destinations/new/webhook/" not in text  # viewers don't set destinations up
    assert "/connectors/destinations/new/webhook/" in login(admin_user).get("/connectors/destinations/").content.decode()


def test_admins_create_a_marketo_destination_and_refusals_show_on_the_form(login, sandbox, admin_user, marketer, marketo_instance):
    assert login(marketer).get("/connectors/destinations/new/marketo_static_list/").status_code == 403
    client = login(admin_user)
    assert client.get("/connectors/destinations/new/nope/").status_code == 404
    page = client.get("/connectors/destinations/new/marketo_static_list/")
    assert "Create leads for people Marketo doesn&#x27;t know" in page.content.decode()
    response = client.post(
        "/connectors/destinations/new/marketo_static_list/",
        {"name": "Marketo", "marketo_instance": marketo_instance.pk, "list_id": 12},
    )
    assert response.status_code == 302
    destination = Destination.objects.get(sandbox=sandbox)
    assert destination.config == {"list_id": 12} and destination.allow_lead_creation is False
    response = client.post("/connectors/destinations/new/marketo_static_list/", {"name": "Marketo", "marketo_instance": marketo_instance.pk, "list_id": 3})
    assert "already has a destination named" in response.content.decode()


def test_webhook_form_refuses_plain_http(login, admin_user, settings):
    settings.QUORUM_WEBHOOK_ALLOW_LOCAL_HTTP = False
    response = login(admin_user).post(
        "/connectors/destinations/new/webhook/",
        {"name": "Hook", "url": "http://example.com/x", "secret": SECRET, "batch_size": 10, "max_attempts": 3},
    )
    assert response.status_code == 200 and "must be an https:// URL" in response.content.decode()


def test_the_wizard_creates_a_dataflow_and_the_detail_shows_its_runs(login, sandbox, admin_user, marketer, viewer, profiles, receiver):
    hook = create_destination(sandbox, by=admin_user, name="Hook", kind="webhook", secret=SECRET, config={"url": receiver.url})
    assert login(viewer).get("/connectors/dataflows/new/").status_code == 403
    client = login(marketer)
    page = client.get("/connectors/dataflows/new/").content.decode()
    assert "dataflow_wizard.js" in page and "CTOs" in page
    response = client.post("/connectors/dataflows/new/", {
        "audiences": [profiles.audience.pk], "destination": hook.pk, "mode": "streaming", "name": "CTO hook",
        "mapping": json.dumps([{"source": "email", "target": "mail"}, {"source": "job_title", "target": "title"}]),
    })  # fmt: skip
    flow = Dataflow.objects.get(sandbox=sandbox)
    assert response.status_code == 302 and response["Location"] == f"/connectors/dataflows/{flow.pk}/"
    assert flow.mapping == [{"source": "email", "target": "mail"}, {"source": "job_title", "target": "title"}]

    profiles.set({"email": "a@x.io", "job_title": "CTO"})
    push_dataflow(flow.pk)
    page = client.get(f"/connectors/dataflows/{flow.pk}/").content.decode()
    assert "Activation history" in page and "Succeeded" in page
    partial = client.get(f"/connectors/dataflows/{flow.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert "runs-table" in partial and "<html" not in partial

    # Mapping problems come back on the form.
    response = client.post("/connectors/dataflows/new/", {
        "audiences": [profiles.audience.pk], "destination": hook.pk, "mode": "streaming", "name": "Other",
        "mapping": json.dumps([{"source": "shoe_size", "target": "x"}]),
    })  # fmt: skip
    assert response.status_code == 200 and "is not a person field" in response.content.decode()


def test_pause_resume_run_and_resend_from_the_detail_page(login, sandbox, admin_user, marketer, viewer, profiles, receiver):
    hook = create_destination(sandbox, by=admin_user, name="Hook", kind="webhook", secret=SECRET, config={"url": receiver.url, "max_attempts": 1})
    flow = create_dataflow(sandbox, by=admin_user, name="F", destination=hook, audiences=[profiles.audience])
    profiles.set({"email": "a@x.io", "job_title": "CTO"})
    receiver.statuses = [500]
    push_dataflow(flow.pk)
    letter = DeadLetter.objects.get()
    assert f"/dead-letters/{letter.pk}/resend/" in login(marketer).get(f"/connectors/dataflows/{flow.pk}/").content.decode()

    assert login(viewer).post(f"/connectors/dataflows/{flow.pk}/pause/").status_code == 403
    client = login(marketer)
    client.post(f"/connectors/dataflows/{flow.pk}/pause/")
    assert Dataflow.objects.get(pk=flow.pk).state == DataflowState.PAUSED
    response = client.post(f"/connectors/dataflows/{flow.pk}/run/", follow=True)
    assert "paused" in response.content.decode()
    client.post(f"/connectors/dataflows/{flow.pk}/resume/")
    assert Dataflow.objects.get(pk=flow.pk).state == DataflowState.ACTIVE
    client.post(f"/connectors/dataflows/{flow.pk}/dead-letters/{letter.pk}/resend/")
    letter.refresh_from_db()
    assert letter.status == DeadLetter.Status.RESENT


def test_pages_of_another_sandbox_are_not_found(login, other_sandbox, make_user, sandbox, admin_user, profiles, receiver):
    from cdp.choices import Role

    hook = create_destination(sandbox, by=admin_user, name="Hook", kind="webhook", secret=SECRET, config={"url": receiver.url})
    flow = create_dataflow(sandbox, by=admin_user, name="F", destination=hook, audiences=[profiles.audience])
    outsider = login(make_user(Role.ADMIN, other_sandbox))
    assert outsider.get(f"/connectors/dataflows/{flow.pk}/").status_code == 404
    assert outsider.post(f"/connectors/dataflows/{flow.pk}/pause/").status_code == 404
    assert outsider.post(f"/connectors/destinations/{hook.pk}/delete/").status_code == 404
    assert "Hook" not in outsider.get("/connectors/destinations/").content.decode()
