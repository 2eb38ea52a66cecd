"""A Salesforce source through the API: connect, test, backfill, read the run; other sandboxes see nothing."""

import pytest

from cdp.choices import Role
from cdp.models import Person
from connectors.models import Pairing, SyncRun

pytestmark = pytest.mark.django_db


def url(sandbox, path=""):
    return f"/api/sandboxes/{sandbox.pk}/{path}"


def test_connect_test_and_backfill_through_the_api(
    api_as, admin_user, make_user, sandbox, other_sandbox, salesforce_org, fake_salesforce, django_capture_on_commit_callbacks
):
    account = fake_salesforce.add("Account", Name="Acme", Website="acme.example")
    fake_salesforce.add("Contact", LastName="Lee", Email="ann@acme.example", AccountId=account)
    client = api_as(admin_user)

    created = client.post(url(sandbox, "sources/"), {"name": "CRM", "salesforce_org": salesforce_org.pk}, format="json")
    assert created.status_code == 201, created.content
    source = created.json()
    assert source["kind"] == "salesforce"
    assert Pairing.objects.filter(sandbox=sandbox, kind="source", salesforce_org=salesforce_org).exists()

    tested = client.post(url(sandbox, f"sources/{source['id']}/test/")).json()
    assert tested["ok"] is True and fake_salesforce.url in tested["message"]

    with django_capture_on_commit_callbacks(execute=True):  # the eager Celery task runs the backfill
        started = client.post(url(sandbox, f"sources/{source['id']}/backfill/"))
    assert started.status_code == 202
    run = client.get(url(sandbox, f"sync-runs/{started.json()['id']}/")).json()
    assert run["state"] == "succeeded", run
    assert run["counts"]["account"]["received"] == 1 and run["counts"]["person"]["received"] == 1
    assert Person.objects.for_sandbox(sandbox).get().email == "ann@acme.example"

    outsider = api_as(make_user(Role.ADMIN, other_sandbox))
    assert outsider.get(url(other_sandbox, "sync-runs/")).json()["count"] == 0
    assert outsider.get(url(sandbox, f"sync-runs/{run['id']}/")).status_code in (403, 404)
    assert SyncRun.objects.for_sandbox(other_sandbox).count() == 0
