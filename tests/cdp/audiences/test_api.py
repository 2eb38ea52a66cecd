"""The audiences REST API: CRUD in both forms, validate, preview, evaluate, members and CSV,
roles, isolation between sandboxes and guardrails."""

import csv
import io

import pytest

from cdp.choices import EvaluationState
from cdp.models import Audience, AudienceEvaluation, Person
from cdp.services.audiences import save_audience
from tests.cdp.ingest_helpers import ingest

CTO_TREE = {"subject": "person", "condition": {"type": "compare", "field": "jobTitle", "op": "eq", "value": "CTO"}}
CTO_PQL = 'person.jobTitle = "CTO"'


def url(sandbox, suffix=""):
    return f"/api/sandboxes/{sandbox.pk}/audiences/{suffix}"


@pytest.fixture
def people(sandbox):
    ingest(
        sandbox,
        "person",
        [
            {"email": "ada@acme.io", "first_name": "Ada", "job_title": "CTO", "country": "DE"},
            {"email": "bob@acme.io", "first_name": "Bob", "job_title": "CFO", "country": "DE"},
            {"email": "cy@globex.io", "first_name": "Cy", "job_title": "CTO", "country": "FR"},
        ],
    )
    return {p.email: p for p in Person.objects.for_sandbox(sandbox)}


@pytest.fixture
def on_commit(transactional_db):
    """Real commits, so the evaluation save_audience queues on commit runs (inline: Celery is eager
    in tests) before the API answers, as in production."""

    def _run(call):
        return call()

    return _run


def test_create_with_a_rule_tree_answers_both_forms_and_is_evaluated(api_as, marketer, sandbox, people, on_commit):
    response = on_commit(lambda: api_as(marketer).post(url(sandbox), {"name": "CTOs", "definition": CTO_TREE}, format="json"))

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["definition"] == CTO_TREE
    assert body["pql"] == CTO_PQL
    assert body["kind"] == "person"
    assert (body["state"], body["size"], body["last_entered"]) == (EvaluationState.IDLE, 2, 2)
    assert body["evaluation_interval"] == "1 00:00:00"


def test_create_with_pql_and_kind(api_as, marketer, sandbox, people, on_commit):
    response = on_commit(
        lambda: api_as(marketer).post(
            url(sandbox),
            {"name": "German CTOs", "pql": 'person.jobTitle = "CTO" and person.country in ["DE"]', "kind": "person", "evaluation_interval": "06:00:00"},
            format="json",
        )
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["definition"]["condition"]["type"] == "and"
    assert body["pql"] == 'person.jobTitle = "CTO" and person.country in ["DE"]'
    assert body["size"] == 1
    assert body["evaluation_interval"] == "06:00:00"


def test_update_with_pql_keeps_the_kind_and_re_evaluates(api_as, marketer, sandbox, people, on_commit):
    audience = on_commit(lambda: save_audience(sandbox, name="CTOs", definition=CTO_TREE))
    client = api_as(marketer)

    response = on_commit(lambda: client.patch(url(sandbox, f"{audience.pk}/"), {"pql": 'person.jobTitle = "CFO"'}, format="json"))

    assert response.status_code == 200, response.json()
    assert response.json()["size"] == 1
    assert response.json()["definition"]["condition"]["value"] == "CFO"
    renamed = client.patch(url(sandbox, f"{audience.pk}/"), {"name": "Finance"}, format="json")
    assert renamed.status_code == 200
    assert renamed.json()["pql"] == 'person.jobTitle = "CFO"'
    listed = client.get(url(sandbox)).json()["results"]
    assert [(a["name"], a["pql"]) for a in listed] == [("Finance", 'person.jobTitle = "CFO"')]


def test_a_bad_rule_tree_is_refused_with_its_json_path(api_as, marketer, sandbox):
    tree = {"subject": "person", "condition": {"type": "and", "conditions": [CTO_TREE["condition"], {"type": "compare", "field": "leadScore", "op": "gt", "value": "high"}]}}

    response = api_as(marketer).post(url(sandbox), {"name": "Bad", "definition": tree}, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_definition"
    assert error["location"]["json_path"] == "$.condition.conditions[1].value"
    assert "whole number" in error["message"]
    assert "definition" in error["fields"]
    assert not Audience.objects.exists()


def test_bad_pql_is_refused_with_line_and_column(api_as, marketer, sandbox):
    response = api_as(marketer).post(url(sandbox), {"name": "Bad", "pql": 'person.jobTitle = "CTO" and\nperson.country =', "kind": "person"}, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["location"]["line"], error["location"]["column"]) == (2, 17)
    assert "pql" in error["fields"]


def test_pql_without_kind_is_refused(api_as, marketer, sandbox):
    response = api_as(marketer).post(url(sandbox), {"name": "X", "pql": CTO_PQL}, format="json")

    assert response.status_code == 400
    assert "kind" in response.json()["error"]["fields"]


def test_validate_answers_both_forms_or_where_it_is_wrong(api_as, viewer, sandbox):
    client = api_as(viewer)  # checking changes nothing: viewers may

    ok = client.post(url(sandbox, "validate/"), {"pql": CTO_PQL, "kind": "person"}, format="json").json()
    assert ok == {"ok": True, "kind": "person", "definition": CTO_TREE, "pql": CTO_PQL}

    from_tree = client.post(url(sandbox, "validate/"), {"definition": CTO_TREE}, format="json").json()
    assert from_tree["pql"] == CTO_PQL

    unknown_field = client.post(url(sandbox, "validate/"), {"pql": 'person.jobTitel = "CTO"', "kind": "person"}, format="json").json()
    assert unknown_field["ok"] is False
    assert "did you mean jobTitle" in unknown_field["error"]["message"]
    assert (unknown_field["error"]["line"], unknown_field["error"]["column"]) == (1, 1)

    bad_tree = {"subject": "person", "condition": {"type": "compare", "field": "jobTitle", "op": "equals", "value": "CTO"}}
    answer = client.post(url(sandbox, "validate/"), {"definition": bad_tree}, format="json").json()
    assert answer["ok"] is False
    assert answer["error"]["json_path"] == "$.condition.op"


def test_preview_counts_without_saving(api_as, viewer, sandbox, people):
    response = api_as(viewer).post(url(sandbox, "preview/"), {"pql": CTO_PQL, "kind": "person"}, format="json")

    assert response.status_code == 200
    assert response.json()["count"] == 2
    assert response.json()["definition"] == CTO_TREE
    assert not Audience.objects.exists()


def test_preview_with_in_segment_reads_the_stored_membership(api_as, marketer, sandbox, people, on_commit):
    ctos = on_commit(lambda: save_audience(sandbox, name="CTOs", definition=CTO_TREE))
    pql = f'inSegment("{ctos.pk}") and person.country = "FR"'

    response = api_as(marketer).post(url(sandbox, "preview/"), {"pql": pql, "kind": "person"}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["count"] == 1


def test_preview_of_a_bad_definition_is_400_with_location(api_as, marketer, sandbox):
    response = api_as(marketer).post(url(sandbox, "preview/"), {"pql": "person.leadScore >", "kind": "person"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["location"]["column"] == 19


def test_evaluate_queues_a_full_evaluation(api_as, marketer, sandbox, people, on_commit):
    audience = on_commit(lambda: save_audience(sandbox, name="CTOs", definition=CTO_TREE))
    ingest(sandbox, "person", [{"email": "dee@acme.io", "job_title": "CTO"}])

    response = api_as(marketer).post(url(sandbox, f"{audience.pk}/evaluate/"))

    assert response.status_code == 202
    assert response.json()["size"] == 3  # Celery runs eagerly in tests
    assert AudienceEvaluation.objects.filter(audience=audience, mode="full").count() == 2


def test_evaluations_history(api_as, viewer, sandbox, people, on_commit):
    audience = on_commit(lambda: save_audience(sandbox, name="CTOs", definition=CTO_TREE))

    rows = api_as(viewer).get(url(sandbox, f"{audience.pk}/evaluations/")).json()["results"]

    assert [(r["mode"], r["size"], r["entered"], r["error"]) for r in rows] == [("full", 2, 2, "")]


def test_members_paginated_with_profile_basics_and_status_filter(api_as, viewer, sandbox, people, on_commit):
    audience = on_commit(lambda: save_audience(sandbox, name="CTOs", definition=CTO_TREE))
    client = api_as(viewer)

    page = client.get(url(sandbox, f"{audience.pk}/members/"), {"page_size": 1}).json()
    assert page["count"] == 2 and len(page["results"]) == 1 and page["next"]
    everyone = client.get(url(sandbox, f"{audience.pk}/members/")).json()["results"]
    assert {m["person"]["email"] for m in everyone} == {"ada@acme.io", "cy@globex.io"}
    assert all(m["status"] == "realized" and m["account"] is None for m in everyone)

    on_commit(lambda: save_audience(sandbox, name="CTOs", definition={**CTO_TREE, "condition": {**CTO_TREE["condition"], "value": "CFO"}}, audience=audience))
    exited = client.get(url(sandbox, f"{audience.pk}/members/"), {"status": "exited"}).json()["results"]
    assert {m["person"]["email"] for m in exited} == {"ada@acme.io", "cy@globex.io"}
    assert client.get(url(sandbox, f"{audience.pk}/members/"), {"status": "all"}).json()["count"] == 3
    assert client.get(url(sandbox, f"{audience.pk}/members/"), {"status": "gone"}).status_code == 400


def test_members_csv_export(api_as, viewer, sandbox, people, on_commit):
    audience = on_commit(lambda: save_audience(sandbox, name="CTOs", definition=CTO_TREE))

    response = api_as(viewer).get(url(sandbox, f"{audience.pk}/members.csv"))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {r["email"] for r in rows} == {"ada@acme.io", "cy@globex.io"}
    assert {r["person_id"] for r in rows} == {str(people["ada@acme.io"].pk), str(people["cy@globex.io"].pk)}


def test_schema_lists_what_conditions_can_name(api_as, viewer, sandbox):
    client = api_as(viewer)

    body = client.get(url(sandbox, "schema/"), {"subject": "account"}).json()

    assert body["subject"] == "account"
    account = body["entities"]["account"]
    assert {"name", "industry"} <= {f["name"] for f in account["fields"]}
    assert "opportunities" in {c["name"] for c in account["collections"]}
    assert client.get(url(sandbox, "schema/"), {"subject": "lead"}).status_code == 400


def test_viewers_read_but_do_not_write(api_as, viewer, sandbox, people, on_commit):
    audience = on_commit(lambda: save_audience(sandbox, name="CTOs", definition=CTO_TREE))
    client = api_as(viewer)

    assert client.get(url(sandbox)).status_code == 200
    assert client.get(url(sandbox, f"{audience.pk}/")).status_code == 200
    assert client.post(url(sandbox), {"name": "X", "definition": CTO_TREE}, format="json").status_code == 403
    assert client.patch(url(sandbox, f"{audience.pk}/"), {"name": "Y"}, format="json").status_code == 403
    assert client.post(url(sandbox, f"{audience.pk}/evaluate/")).status_code == 403
    assert client.delete(url(sandbox, f"{audience.pk}/")).status_code == 403
    assert Audience.objects.get().name == "CTOs"


def test_delete_is_refused_while_another_audience_uses_it(api_as, marketer, sandbox, people, on_commit):
    ctos = on_commit(lambda: save_audience(sandbox, name="CTOs", definition=CTO_TREE))
    user = on_commit(lambda: save_audience(sandbox, name="French CTOs", definition={"subject": "person", "condition": {"type": "inSegment", "audience": str(ctos.pk)}}))
    client = api_as(marketer)

    refused = client.delete(url(sandbox, f"{ctos.pk}/"))

    assert refused.status_code == 400
    assert refused.json()["error"]["rule"] == "audience_in_use"
    assert "French CTOs" in refused.json()["error"]["message"]
    assert client.delete(url(sandbox, f"{user.pk}/")).status_code == 204
    assert client.delete(url(sandbox, f"{ctos.pk}/")).status_code == 204
    assert not Audience.objects.exists()


def test_another_sandboxs_audience_is_invisible_and_cannot_be_referenced(api_as, marketer, sandbox, other_sandbox, on_commit):
    foreign = on_commit(lambda: save_audience(other_sandbox, name="Theirs", definition=CTO_TREE))
    client = api_as(marketer)

    assert client.get(url(sandbox, f"{foreign.pk}/")).status_code == 404
    assert client.get(url(sandbox, f"{foreign.pk}/members/")).status_code == 404
    assert client.post(url(sandbox, f"{foreign.pk}/evaluate/")).status_code == 404
    assert client.delete(url(sandbox, f"{foreign.pk}/")).status_code == 404
    assert client.get(url(sandbox)).json()["results"] == []
    assert client.get(url(other_sandbox)).status_code == 404

    referencing = {"subject": "person", "condition": {"type": "inSegment", "audience": str(foreign.pk)}}
    refused = client.post(url(sandbox), {"name": "Sneaky", "definition": referencing}, format="json")
    assert refused.status_code == 400
    assert refused.json()["error"]["rule"] == "unknown_audience"
    preview = client.post(url(sandbox, "preview/"), {"definition": referencing}, format="json")
    assert preview.status_code == 400
    assert "does not have" in preview.json()["error"]["message"]


def test_guardrail_refusal_comes_through_the_api(api_as, marketer, sandbox, on_commit):
    sandbox.limits = {"audiences": 1}
    sandbox.save()
    client = api_as(marketer)
    on_commit(lambda: client.post(url(sandbox), {"name": "One", "definition": CTO_TREE}, format="json"))

    response = client.post(url(sandbox), {"name": "Two", "definition": CTO_TREE}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["rule"] == "audience_limit"
    assert "limit of 1" in response.json()["error"]["message"]


def test_duplicate_name_is_refused(api_as, marketer, sandbox, on_commit):
    client = api_as(marketer)
    on_commit(lambda: client.post(url(sandbox), {"name": "CTOs", "definition": CTO_TREE}, format="json"))

    response = client.post(url(sandbox), {"name": "CTOs", "pql": CTO_PQL, "kind": "person"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["rule"] == "audience_name_taken"


def test_in_segment_must_name_an_audience_of_the_kind_it_tests(api_as, marketer, sandbox, on_commit):
    accounts = on_commit(lambda: save_audience(sandbox, name="Big accounts", definition={
        "subject": "account", "condition": {"type": "compare", "field": "employees", "op": "ge", "value": 1000}}))  # fmt: skip
    people = on_commit(lambda: save_audience(sandbox, name="CTOs", definition=CTO_TREE))
    client = api_as(marketer)

    # A person audience testing "the person is in <account audience>" compares ids of different kinds.
    wrong = {"subject": "person", "condition": {"type": "inSegment", "audience": str(accounts.pk)}}
    refused = client.post(url(sandbox), {"name": "Mixed up", "definition": wrong}, format="json")
    assert refused.status_code == 400
    assert refused.json()["error"]["rule"] == "audience_kind_mismatch"
    assert "'Big accounts' is an audience of accounts" in refused.json()["error"]["message"]
    preview = client.post(url(sandbox, "preview/"), {"definition": wrong}, format="json")
    assert preview.status_code == 400
    assert "audience of accounts" in preview.json()["error"]["message"]

    # Through the person's account link it is right; and an account audience may read people's accounts.
    right = {"subject": "person", "condition": {"type": "and", "conditions": [
        {"type": "inSegment", "audience": str(accounts.pk), "field": "account"},
        {"type": "inSegment", "audience": str(people.pk)}]}}  # fmt: skip
    assert client.post(url(sandbox), {"name": "CTOs at big accounts", "definition": right}, format="json").status_code == 201
