"""The journeys and email assets REST API: CRUD, graph save and edit operations, validate,
publish (400 with the errors array until valid), close/abort/duplicate, the campaign plan, email
preview, roles and isolation between sandboxes."""

import datetime as dt

from django.utils import timezone

from cdp.models import Person
from journeys.models import Journey, JourneyState

from .conftest import sample_graph


def url(sandbox, suffix=""):
    return f"/api/sandboxes/{sandbox.pk}/journeys/{suffix}"


def emails_url(sandbox, suffix=""):
    return f"/api/sandboxes/{sandbox.pk}/emails/{suffix}"


def dates(days=60):
    now = timezone.now()
    return {"start_at": now.isoformat(), "end_at": (now + dt.timedelta(days=days)).isoformat()}


def test_create_read_and_change_a_journey(api_as, marketer, sandbox, account_audience):
    client = api_as(marketer)
    response = client.post(url(sandbox), {"name": "Welcome", "audience_id": account_audience.pk, **dates()}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["state"], body["editable"], body["audience_id"], body["current_version"]) == ("draft", True, account_audience.pk, None)
    assert body["graph"]["nodes"]["n1"]["audience_id"] == account_audience.pk

    response = client.patch(url(sandbox, f"{body['id']}/"), {"description": "For new accounts", "allow_reentry": True, "reentry_interval": "7 00:00:00"}, format="json")
    assert response.status_code == 200, response.json()
    assert (response.json()["description"], response.json()["reentry_interval"]) == ("For new accounts", "7 00:00:00")
    assert [j["name"] for j in client.get(url(sandbox)).json()["results"]] == ["Welcome"]


def test_creation_refusals(api_as, marketer, sandbox, person_audience):
    client = api_as(marketer)
    response = client.post(url(sandbox), {"name": "X", "audience_id": person_audience.pk, **dates()}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["rule"] == "journey_account_audience"
    response = client.post(url(sandbox), {"name": "X", "start_at": timezone.now().isoformat()}, format="json")
    assert response.status_code == 400 and "end_at" in response.json()["error"]["fields"]
    response = client.post(url(sandbox), {"name": "X", **dates(days=3 * 365 + 2)}, format="json")
    assert response.json()["error"]["rule"] == "journey_too_long"


def test_save_edit_validate_and_publish(api_as, marketer, sandbox, account_audience, email, django_capture_on_commit_callbacks):
    client = api_as(marketer)
    journey = client.post(url(sandbox), {"name": "Flow", "audience_id": account_audience.pk, **dates()}, format="json").json()
    detail = url(sandbox, f"{journey['id']}/")

    # Insert a wait after the start through the guarded edit endpoint (not saved yet).
    edited = client.post(f"{detail}edit/", {"op": "add_node", "args": {"after": "n1", "node_type": "wait", "config": {"duration": {"amount": 0, "unit": "days"}}}}, format="json")
    assert edited.status_code == 200, edited.json()
    graph = edited.json()["graph"]
    assert graph["nodes"]["n1"]["next"] == "n3" and Journey.objects.get(pk=journey["id"]).graph["nodes"]["n1"]["next"] == "n2"
    refused = client.post(f"{detail}edit/", {"op": "delete_node", "args": {"node_id": "n1"}, "graph": graph}, format="json")
    assert refused.status_code == 400 and refused.json()["error"]["rule"] == "journey_graph_edit"

    assert client.put(f"{detail}graph/", {"graph": graph}, format="json").status_code == 200
    validation = client.post(f"{detail}validate/").json()
    assert validation == {
        "valid": False, "state": "draft",
        "errors": [{"node": "n3", "code": "wait_not_positive", "message": "A wait must last longer than zero.", "path": "$.nodes.n3.duration"}],
    }  # fmt: skip
    response = client.post(f"{detail}publish/")
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["rule"], error["errors"][0]["node"]) == ("rule_violation", "journey_invalid", "n3")

    graph["nodes"]["n3"]["duration"]["amount"] = 2
    client.put(f"{detail}graph/", {"graph": graph}, format="json")
    assert client.post(f"{detail}validate/").json() == {"valid": True, "state": "validated", "errors": []}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{detail}publish/")
    assert response.status_code == 202
    body = client.get(detail).json()
    assert (body["state"], body["current_version"], body["editable"]) == ("live", 1, False)

    plan = client.get(f"{detail}plan/").json()
    assert [c["node"] for c in plan["campaigns"]] == ["n1", "n3", "n2"] and plan["version"] == 1
    assert client.put(f"{detail}graph/", {"graph": graph}, format="json").json()["error"]["rule"] == "journey_not_editable"

    copy = client.post(f"{detail}duplicate/", {"name": "Flow v2"}, format="json")
    assert copy.status_code == 201 and (copy.json()["state"], copy.json()["graph"]) == ("draft", graph)
    assert client.post(f"{detail}close/").json()["state"] == "closed"
    assert client.post(f"{detail}abort/").json()["state"] == "aborted"
    assert client.post(f"{detail}close/").json()["error"]["rule"] == "journey_state"


def test_plan_of_an_unpublished_journey_is_404(api_as, marketer, sandbox, valid_journey):
    response = api_as(marketer).get(url(sandbox, f"{valid_journey.pk}/plan/"))
    assert response.status_code == 404 and "not been published" in response.json()["error"]["message"]


def test_viewers_read_but_do_not_write(api_as, viewer, sandbox, valid_journey):
    client = api_as(viewer)
    assert client.get(url(sandbox, f"{valid_journey.pk}/")).status_code == 200
    assert client.post(url(sandbox, f"{valid_journey.pk}/publish/")).status_code == 403
    assert client.put(url(sandbox, f"{valid_journey.pk}/graph/"), {"graph": valid_journey.graph}, format="json").status_code == 403


def test_delete_only_when_not_running(api_as, marketer, sandbox, valid_journey):
    from journeys.services.journeys import publish_journey

    client = api_as(marketer)
    publish_journey(valid_journey)
    response = client.delete(url(sandbox, f"{valid_journey.pk}/"))
    assert response.status_code == 400 and response.json()["error"]["rule"] == "journey_state"
    client.post(url(sandbox, f"{valid_journey.pk}/abort/"))
    assert client.delete(url(sandbox, f"{valid_journey.pk}/")).status_code == 204


def test_email_assets_and_preview(api_as, marketer, viewer, sandbox):
    person = Person.objects.create(sandbox=sandbox, first_name="Ada", email="ada@acme.io")
    client = api_as(marketer)
    response = client.post(emails_url(sandbox), {"name": "Hello", "subject": "Hi {{person.first_name}}", "body_html": "<p>{{person.first_name}}</p>"}, format="json")
    assert response.status_code == 201, response.json()
    email_id = response.json()["id"]
    bad = client.patch(emails_url(sandbox, f"{email_id}/"), {"body_html": "{{person.ssn}}"}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["fields"] == {"body_html": [bad.json()["error"]["message"]]}
    assert client.patch(emails_url(sandbox, f"{email_id}/"), {"subject": "Hey {{person.first_name}}"}, format="json").json()["subject"] == "Hey {{person.first_name}}"

    preview = api_as(viewer).post(emails_url(sandbox, f"{email_id}/preview/"), {"person_id": person.pk}, format="json")
    assert preview.status_code == 200
    assert {k: preview.json()[k] for k in ("person_id", "subject", "html")} == {"person_id": person.pk, "subject": "Hey Ada", "html": "<p>Ada</p>"}
    by_email = api_as(viewer).post(emails_url(sandbox, f"{email_id}/preview/"), {"email": "ADA@acme.io"}, format="json")
    assert by_email.json()["person_id"] == person.pk
    missing = api_as(viewer).post(emails_url(sandbox, f"{email_id}/preview/"), {"email": "nobody@x.io"}, format="json")
    assert missing.status_code == 400 and missing.json()["error"]["rule"] == "unknown_person"
    assert api_as(viewer).post(emails_url(sandbox), {"name": "V", "subject": "s", "body_html": "b"}, format="json").status_code == 403


def test_sandbox_isolation(api_as, make_user, marketer, sandbox, other_sandbox, valid_journey, email):
    from cdp.choices import Role

    outsider = make_user(Role.ADMIN, other_sandbox)
    client = api_as(outsider)
    assert client.get(url(other_sandbox)).json()["results"] == []
    assert client.get(url(other_sandbox, f"{valid_journey.pk}/")).status_code == 404
    assert client.post(url(other_sandbox, f"{valid_journey.pk}/publish/")).status_code == 404
    assert client.get(url(sandbox)).status_code == 404  # not a member of that sandbox
    assert client.post(emails_url(other_sandbox, f"{email.pk}/preview/"), {"person_id": 1}, format="json").status_code == 404

    # A graph in the other sandbox can't send this sandbox's email or start from its audience.
    theirs = client.post(url(other_sandbox), {"name": "Theirs", **dates()}, format="json").json()
    graph = sample_graph(valid_journey.audience_id, email.pk)
    client.put(url(other_sandbox, f"{theirs['id']}/graph/"), {"graph": graph}, format="json")
    errors = client.post(url(other_sandbox, f"{theirs['id']}/validate/")).json()["errors"]
    assert {(e["node"], e["code"]) for e in errors} == {("n1", "start_audience"), ("n3", "unknown_email")}
    assert Journey.objects.get(pk=theirs["id"]).audience is None and Journey.objects.get(pk=valid_journey.pk).state == JourneyState.DRAFT


def test_malformed_graphs_are_refused_and_lists_filter_by_state(api_as, marketer, sandbox, valid_journey):
    client = api_as(marketer)
    detail = url(sandbox, f"{valid_journey.pk}/")
    for bad in (["n1"], {"nodes": {"n1": "start"}}, {"start": "n1"}):
        response = client.post(f"{detail}edit/", {"op": "delete_node", "args": {"node_id": "n1"}, "graph": bad}, format="json")
        assert (response.status_code, response.json()["error"]["rule"]) == (400, "journey_graph")
    response = client.post(f"{detail}edit/", {"op": "add_node", "args": {"after": "n1", "kind": "wait"}}, format="json")
    assert response.status_code == 400 and "Wrong arguments for add_node" in response.json()["error"]["message"]
    response = client.post(url(sandbox), {"name": "Junk", "graph": {"nodes": []}, **dates()}, format="json")
    assert (response.status_code, response.json()["error"]["rule"]) == (400, "journey_graph")

    assert [j["name"] for j in client.get(url(sandbox), {"state": "draft"}).json()["results"]] == ["Onboarding"]
    assert client.get(url(sandbox), {"state": "live"}).json()["results"] == []
