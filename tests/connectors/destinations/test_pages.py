"""Destination and dataflow pages: catalog, create, wizard, detail with runs, actions, roles."""

import json

from connectors.models import Dataflow, DataflowState, DeadLetter, Destination
from connectors.services.activation import create_dataflow, create_destination, push_dataflow
from tests.connectors.destinations.conftest import CTO as CTO_DEFINITION

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


def test_admins_edit_a_webhook_without_ever_seeing_its_secret(login, sandbox, admin_user, marketer, receiver):
    hook = create_destination(
        sandbox, by=admin_user, name="Hook", kind="webhook", secret=SECRET,
        config={"url": receiver.url, "batch_size": 10, "timeout_seconds": 30},
    )  # fmt: skip
    url = f"/connectors/destinations/{hook.pk}/edit/"
    assert login(marketer).get(url).status_code == 403
    client = login(admin_user)
    assert url in client.get("/connectors/destinations/").content.decode()
    page = client.get(url).content.decode()
    assert receiver.url in page and SECRET not in page and "Leave empty to keep the stored secret" in page

    response = client.post(url, {"name": "Hook 2", "url": receiver.url, "secret": "", "batch_size": 50, "max_attempts": 2, "enabled": "on"})
    assert response.status_code == 302
    hook.refresh_from_db()
    assert (hook.name, hook.secret, hook.enabled) == ("Hook 2", SECRET, True)
    # What the page doesn't show (set through the API) stays.
    assert hook.config == {"url": receiver.url, "batch_size": 50, "max_attempts": 2, "timeout_seconds": 30}

    response = client.post(url, {"name": "Hook 2", "url": receiver.url, "secret": "n3w-s3cret-n3w-s3cret", "batch_size": 50, "max_attempts": 2})
    hook.refresh_from_db()
    assert (hook.secret, hook.enabled) == ("n3w-s3cret-n3w-s3cret", False)
    assert "n3w-s3cret" not in client.get(url).content.decode()

    # The service's refusals show on the form, and nothing is saved.
    response = client.post(url, {"name": "Hook 3", "url": "ftp://example.com/x", "batch_size": 50, "max_attempts": 2})
    assert response.status_code == 200 and "must be an https:// URL" in response.content.decode()
    assert "Edit destination: Hook 2" in response.content.decode()
    assert Destination.objects.get(pk=hook.pk).name == "Hook 2"


def test_admins_edit_a_marketo_destination(login, sandbox, admin_user, marketo_instance):
    destination = create_destination(
        sandbox, by=admin_user, name="Marketo", kind="marketo_static_list", marketo_instance=marketo_instance, config={"list_id": 12}
    )
    client = login(admin_user)
    url = f"/connectors/destinations/{destination.pk}/edit/"
    page = client.get(url).content.decode()
    assert 'value="12"' in page and f'<option value="{marketo_instance.pk}" selected>' in page
    response = client.post(url, {"name": "Marketo", "marketo_instance": marketo_instance.pk, "list_id": 34, "allow_lead_creation": "on", "enabled": "on"})
    assert response.status_code == 302
    destination.refresh_from_db()
    assert destination.config == {"list_id": 34} and destination.allow_lead_creation is True


def test_marketers_edit_a_dataflow_from_its_page(login, sandbox, admin_user, marketer, viewer, profiles, receiver, other_sandbox, make_user):
    from cdp.choices import Role
    from cdp.services.audiences import save_audience

    hook = create_destination(sandbox, by=admin_user, name="Hook", kind="webhook", secret=SECRET, config={"url": receiver.url})
    other_hook = create_destination(sandbox, by=admin_user, name="Other hook", kind="webhook", secret=SECRET, config={"url": receiver.url})
    ctos, cfos = profiles.audience, save_audience(sandbox, name="CFOs", definition={**CTO_DEFINITION, "condition": {**CTO_DEFINITION["condition"], "value": "CFO"}})
    flow = create_dataflow(sandbox, by=admin_user, name="F", destination=hook, audiences=[ctos, cfos])
    url = f"/connectors/dataflows/{flow.pk}/edit/"
    assert url in login(marketer).get(f"/connectors/dataflows/{flow.pk}/").content.decode()
    assert url not in login(viewer).get(f"/connectors/dataflows/{flow.pk}/").content.decode()
    assert login(viewer).get(url).status_code == 403
    assert login(make_user(Role.ADMIN, other_sandbox)).get(url).status_code == 404

    client = login(marketer)
    page = client.get(url).content.decode()
    assert "Edit dataflow" in page and 'value="F"' in page and "Other hook" not in page
    mapping = json.dumps([{"source": "email", "target": "mail"}])
    response = client.post(url, {"audiences": [cfos.pk], "destination": other_hook.pk, "mapping": mapping, "mode": "streaming", "name": "CFOs only"})
    assert response.status_code == 302 and response["Location"] == f"/connectors/dataflows/{flow.pk}/"
    flow = Dataflow.objects.get(pk=flow.pk)
    assert (flow.name, flow.destination, list(flow.audiences.all()), flow.mapping) == ("CFOs only", hook, [cfos], [{"source": "email", "target": "mail"}])

    response = client.post(url, {"audiences": [cfos.pk], "mapping": json.dumps([{"source": "shoe_size", "target": "x"}]), "mode": "streaming", "name": "X"})
    assert response.status_code == 200 and "is not a person field" in response.content.decode()
    assert "Edit dataflow: CFOs only" in response.content.decode()
    assert Dataflow.objects.get(pk=flow.pk).name == "CFOs only"
