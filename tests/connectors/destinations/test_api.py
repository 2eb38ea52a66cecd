"""Destinations, dataflows, runs and dead letters over REST: roles, rules, isolation."""

import pytest

from connectors.models import ActivationRun, Dataflow, DataflowState, DeadLetter, Destination
from connectors.services.activation import create_dataflow, create_destination, push_dataflow
from tests.connectors.factories import MarketoInstanceFactory

SECRET = "s3cret-s3cret-s3cret"


def url(sandbox, path):
    return f"/api/sandboxes/{sandbox.pk}/{path}"


@pytest.fixture
def hook(sandbox, admin_user, receiver):
    return create_destination(sandbox, by=admin_user, name="Hook", kind="webhook", secret=SECRET, config={"url": receiver.url})


def test_admins_create_destinations_and_secrets_never_come_back(api_as, sandbox, admin_user, marketer, receiver):
    body = {"name": "Hook", "kind": "webhook", "config": {"url": receiver.url}, "secret": SECRET}
    assert api_as(marketer).post(url(sandbox, "destinations/"), body, format="json").status_code == 403
    response = api_as(admin_user).post(url(sandbox, "destinations/"), body, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["has_secret"] is True and "secret" not in data
    assert data["config"]["batch_size"] == 100
    listed = api_as(marketer).get(url(sandbox, "destinations/")).json()
    assert SECRET not in str(listed)
    kinds = api_as(marketer).get(url(sandbox, "destinations/kinds/")).json()
    assert [k["kind"] for k in kinds] == ["marketo_static_list", "webhook", "csv_export"]


def test_rule_violations_answer_400_with_the_rule(api_as, sandbox, admin_user, marketo_instance):
    response = api_as(admin_user).post(
        url(sandbox, "destinations/"), {"name": "W", "kind": "webhook", "config": {"url": "ftp://x"}, "secret": SECRET}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["rule"] == "webhook_https_only"
    body = {"name": "M", "kind": "marketo_static_list", "config": {"list_id": 5}, "marketo_instance": marketo_instance.pk}
    response = api_as(admin_user).post(url(sandbox, "destinations/"), body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["marketo_instance"] == marketo_instance.pk
    assert response.json()["allow_lead_creation"] is False
    foreign = MarketoInstanceFactory()
    response = api_as(admin_user).post(url(sandbox, "destinations/"), {**body, "name": "F", "marketo_instance": foreign.pk}, format="json")
    assert response.status_code == 400 and response.json()["error"]["fields"] == {"marketo_instance": [response.json()["error"]["message"]]}


def test_dataflow_life_cycle(api_as, sandbox, marketer, viewer, hook, profiles, receiver):
    profiles.set({"email": "a@x.io", "job_title": "CTO"})
    body = {"name": "To hook", "destination": hook.pk, "audiences": [profiles.audience.pk]}
    assert api_as(viewer).post(url(sandbox, "dataflows/"), body, format="json").status_code == 403
    response = api_as(marketer).post(url(sandbox, "dataflows/"), body, format="json")
    assert response.status_code == 201, response.json()
    flow = response.json()
    assert flow["mapping"] == [{"source": "email", "target": "email"}] and flow["state"] == "active"
    assert flow["audiences"] == [profiles.audience.pk] and flow["last_run"] is None

    detail = url(sandbox, f"dataflows/{flow['id']}/")
    assert api_as(marketer).post(detail + "pause/").json()["state"] == "paused"
    response = api_as(marketer).post(detail + "run/")
    assert response.status_code == 400 and response.json()["error"]["rule"] == "dataflow_paused"
    assert api_as(marketer).post(detail + "resume/").json()["state"] == "active"
    assert api_as(marketer).post(detail + "run/").status_code == 202
    push_dataflow(flow["id"])  # on_commit doesn't fire inside the test transaction: run what it queued
    last_run = api_as(viewer).get(detail).json()["last_run"]
    assert last_run["sent"] == 1 and last_run["status"] == "succeeded"

    runs = api_as(viewer).get(url(sandbox, f"activation-runs/?dataflow={flow['id']}")).json()
    run = runs["results"][0] if isinstance(runs, dict) else runs[0]
    assert run["changes"] == 1
    assert "outcomes" in api_as(viewer).get(url(sandbox, f"activation-runs/{run['id']}/")).json()
    assert api_as(marketer).delete(url(sandbox, f"activation-runs/{run['id']}/")).status_code == 405

    response = api_as(marketer).patch(detail, {"mapping": [{"source": "nope", "target": "x"}]}, format="json")
    assert response.status_code == 400 and response.json()["error"]["rule"] == "mapping_invalid"
    response = api_as(marketer).patch(detail, {"mode": "batch", "batch_time": "04:00"}, format="json")
    assert response.status_code == 200 and response.json()["next_batch_at"]
    assert api_as(marketer).delete(detail).status_code == 204


def test_dead_letters_can_be_resent(api_as, sandbox, marketer, viewer, hook, profiles, receiver):
    flow = create_dataflow(sandbox, by=marketer, name="F", destination=hook, audiences=[profiles.audience])
    profiles.set({"email": "a@x.io", "job_title": "CTO"})
    receiver.statuses = [400]
    push_dataflow(flow.pk)
    [letter] = api_as(viewer).get(url(sandbox, "dead-letters/")).json()["results"]
    assert letter["status"] == "pending"
    assert api_as(viewer).post(url(sandbox, f"dead-letters/{letter['id']}/resend/")).status_code == 403
    assert api_as(marketer).post(url(sandbox, "dead-letters/"), {}, format="json").status_code == 405
    response = api_as(marketer).post(url(sandbox, f"dead-letters/{letter['id']}/resend/"))
    assert response.status_code == 200 and response.json()["status"] == "resent"


def test_nothing_leaks_across_sandboxes(api_as, sandbox, other_sandbox, make_user, admin_user, hook, profiles):
    from cdp.choices import Role

    flow = create_dataflow(sandbox, by=admin_user, name="F", destination=hook, audiences=[profiles.audience])
    ActivationRun.objects.create(sandbox=sandbox, dataflow=flow, trigger="manual", started_at=flow.created_at)
    DeadLetter.objects.create(sandbox=sandbox, dataflow=flow, batch_id="b", payload={})
    outsider = make_user(Role.ADMIN, other_sandbox)
    client = api_as(outsider)
    for path in ("destinations/", "dataflows/", "activation-runs/", "dead-letters/"):
        assert client.get(url(sandbox, path)).status_code == 404
        listed = client.get(url(other_sandbox, path)).json()
        assert listed["results"] == [] if isinstance(listed, dict) else listed == []
    assert client.get(url(other_sandbox, f"dataflows/{flow.pk}/")).status_code == 404
    assert client.post(url(other_sandbox, f"dataflows/{flow.pk}/pause/")).status_code == 404
    # Another sandbox's destination or audience can't be named.
    response = client.post(url(other_sandbox, "dataflows/"), {"name": "X", "destination": hook.pk, "audiences": [profiles.audience.pk]}, format="json")
    assert response.status_code == 400 and response.json()["error"]["fields"].keys() == {"destination"}
    assert Dataflow.objects.for_sandbox(other_sandbox).count() == 0
    assert Destination.objects.for_sandbox(other_sandbox).count() == 0
    assert Dataflow.objects.get(pk=flow.pk).state == DataflowState.ACTIVE


def test_the_dataflow_list_reads_the_latest_runs_in_one_query(api_as, sandbox, marketer, admin_user, hook, profiles, receiver):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def list_queries():
        with CaptureQueriesContext(connection) as captured:
            assert api_as(marketer).get(url(sandbox, "dataflows/")).status_code == 200
        return len(captured)

    profiles.set({"email": "a@x.io", "job_title": "CTO"})
    flows = [create_dataflow(sandbox, by=admin_user, name="Flow 0", destination=hook, audiences=[profiles.audience])]
    push_dataflow(flows[0].pk)
    one = list_queries()
    for n in (1, 2):
        flows.append(create_dataflow(sandbox, by=admin_user, name=f"Flow {n}", destination=hook, audiences=[profiles.audience]))
        push_dataflow(flows[-1].pk)
    assert list_queries() == one
    rows = api_as(marketer).get(url(sandbox, "dataflows/")).json()["results"]
    assert all(row["last_run"]["status"] == "succeeded" for row in rows) and len(rows) == 3


def test_patching_an_audience_out_removes_its_members_on_the_next_run(api_as, sandbox, admin_user, marketer, hook, profiles, receiver):
    import json

    from cdp.services.audiences import save_audience

    others = save_audience(sandbox, name="Accounts", definition={"subject": "account", "condition": {"type": "compare", "field": "name", "op": "isNotNull"}})
    cfos = save_audience(sandbox, name="CFOs", definition={"subject": "person", "condition": {"type": "compare", "field": "jobTitle", "op": "eq", "value": "CFO"}})
    flow = create_dataflow(sandbox, by=admin_user, name="F", destination=hook, audiences=[profiles.audience, cfos])
    profiles.set({"email": "a@x.io", "job_title": "CTO"})
    push_dataflow(flow.pk)

    response = api_as(marketer).patch(url(sandbox, f"dataflows/{flow.pk}/"), {"audiences": [cfos.pk]}, format="json")
    assert response.status_code == 200, response.json()
    assert str(profiles.audience.pk) in response.json()["cursors"]  # kept until its members are removed
    run = push_dataflow(flow.pk)
    assert run.sent == 1
    assert [r["email"] for r in json.loads(receiver.requests[-1]["body"])["removes"]] == ["a@x.io"]
    assert str(profiles.audience.pk) not in api_as(marketer).get(url(sandbox, f"dataflows/{flow.pk}/")).json()["cursors"]

    response = api_as(marketer).patch(url(sandbox, f"dataflows/{flow.pk}/"), {"audiences": [others.pk], "mapping": [{"source": "name", "target": "name"}]}, format="json")
    assert response.status_code == 400 and response.json()["error"]["rule"] == "dataflow_audiences"
