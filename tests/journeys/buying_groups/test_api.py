"""The buying group REST API: configuration, builds, groups and their actions, roles, isolation."""

import pytest

from cdp.choices import Role
from cdp.models import Account, AccountPerson, Person
from cdp.services.audiences import save_audience
from journeys.models import BuyingGroup, BuyingGroupMember
from journeys.services.buying_groups import roles_of

from .conftest import EXAMPLE_STAGES, EXAMPLE_TRANSITIONS, compare, person_rule


def url(sandbox, path):
    return f"/api/sandboxes/{sandbox.pk}/{path}"


@pytest.fixture
def marketer_api(api_as, marketer):
    return api_as(marketer)


def test_configure_and_build_through_the_api(sandbox, marketer_api, django_capture_on_commit_callbacks):
    roles = marketer_api.get(url(sandbox, "buying-group-roles/")).json()
    assert {r["name"] for r in roles["results"]} >= {"Decision Maker", "Champion"}
    assert marketer_api.post(url(sandbox, "buying-group-roles/"), {"name": "Legal"}, format="json").status_code == 201

    template = marketer_api.post(url(sandbox, "roles-templates/"), {
        "name": "Analytics roles",
        "roles": [
            {"role": "Decision Maker", "weight": 100, "condition_pql": 'person.jobTitle = "CTO"', "required": True},
            {"role": "Legal", "weight": 40, "condition": person_rule(compare("department", "eq", "Legal"))},
        ],
    }, format="json")  # fmt: skip
    assert template.status_code == 201, template.json()
    body = template.json()
    assert body["status"] == "draft" and body["roles"][0]["condition_pql"] == 'person.jobTitle = "CTO"'
    bad = marketer_api.post(url(sandbox, "roles-templates/"), {"name": "Bad", "roles": [{"role": "Other", "condition_pql": "person.jobTitle ="}]}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["rule"] == "invalid_condition"
    assert "line 1" in bad.json()["error"]["message"]

    interest_body = {"name": "Analytics", "roles_template": body["id"]}
    refused = marketer_api.post(url(sandbox, "solution-interests/"), interest_body, format="json")
    assert refused.status_code == 400 and refused.json()["error"]["rule"] == "template_not_live"
    assert marketer_api.post(url(sandbox, f"roles-templates/{body['id']}/publish/")).json()["status"] == "live"
    changed = marketer_api.patch(url(sandbox, f"roles-templates/{body['id']}/"), {"name": "New"}, format="json")
    assert changed.status_code == 400 and changed.json()["error"]["rule"] == "template_live"

    stages = marketer_api.post(url(sandbox, "stages-models/"), {"name": "Funnel", "stages": EXAMPLE_STAGES[:1]}, format="json")
    assert stages.status_code == 400 and stages.json()["error"]["rule"] == "one_success_stage"
    stages = marketer_api.post(url(sandbox, "stages-models/"), {"name": "Funnel", "stages": EXAMPLE_STAGES, "transitions": EXAMPLE_TRANSITIONS}, format="json")
    assert stages.status_code == 201, stages.json()
    assert stages.json()["transitions"][0] == {"from": "Discover", "to": "Evaluate"}
    marketer_api.post(url(sandbox, f"stages-models/{stages.json()['id']}/publish/"))

    interest = marketer_api.post(url(sandbox, "solution-interests/"), {**interest_body, "stages_model": stages.json()["id"]}, format="json")
    assert interest.status_code == 201, interest.json()

    acme = Account.objects.create(sandbox=sandbox, name="Acme", domain="acme.com", industry="Software")
    alice = Person.objects.create(sandbox=sandbox, email="alice@acme.com", job_title="CTO")
    bob = Person.objects.create(sandbox=sandbox, email="bob@acme.com", department="Legal")
    for p in (alice, bob):
        AccountPerson.objects.create(sandbox=sandbox, account=acme, person=p)
    with django_capture_on_commit_callbacks(execute=True):
        audience = save_audience(sandbox, name="Software", definition={"subject": "account", "condition": compare("industry", "eq", "Software")})
    with django_capture_on_commit_callbacks(execute=True):
        build = marketer_api.post(url(sandbox, f"solution-interests/{interest.json()['id']}/build/"), {"audience": audience.pk}, format="json")
    assert build.status_code == 202, build.json()
    progress = marketer_api.get(url(sandbox, f"buying-group-builds/{build.json()['id']}/")).json()
    assert (progress["status"], progress["progress_percent"], progress["groups_created"]) == ("succeeded", 100, 1)

    groups = marketer_api.get(url(sandbox, "buying-groups/"), {"solution_interest": interest.json()["id"], "completeness_min": 100}).json()
    assert [g["account"]["domain"] for g in groups["results"]] == ["acme.com"]
    group = groups["results"][0]
    assert (group["status"], group["stage"], group["completeness_score"], group["member_count"]) == ("full", "Discover", 100.0, 2)
    assert marketer_api.get(url(sandbox, "buying-groups/"), {"completeness_max": 50}).json()["results"] == []
    assert marketer_api.get(url(sandbox, "buying-groups/"), {"stage": "evaluate"}).json()["results"] == []

    detail = marketer_api.get(url(sandbox, f"buying-groups/{group['id']}/")).json()
    assert {(m["email"], m["role"], m["assigned_how"]) for m in detail["members"]} == {
        ("alice@acme.com", "Decision Maker", "auto"), ("bob@acme.com", "Legal", "auto")
    }
    moved = marketer_api.post(url(sandbox, f"buying-groups/{group['id']}/stage/"), {"stage": "Evaluate"}, format="json")
    assert moved.status_code == 200 and [h["to_stage"] for h in moved.json()["stage_history"]] == ["Evaluate", "Discover"]
    wrong = marketer_api.post(url(sandbox, f"buying-groups/{group['id']}/stage/"), {"stage": "Discover"}, format="json")
    assert wrong.status_code == 400 and wrong.json()["error"]["rule"] == "invalid_transition"
    assigned = marketer_api.post(url(sandbox, f"buying-groups/{group['id']}/members/"), {"person_id": bob.pk, "role": "Champion"}, format="json")
    assert assigned.status_code == 200
    assert BuyingGroupMember.objects.get(person=bob).assigned_how == "manual"
    assert marketer_api.delete(url(sandbox, f"buying-groups/{group['id']}/members/{bob.pk}/")).status_code == 204
    assert marketer_api.delete(url(sandbox, f"buying-groups/{group['id']}/members/{bob.pk}/")).status_code == 404
    status_changed = marketer_api.post(url(sandbox, f"buying-groups/{group['id']}/status/"), {"status": "complete"}, format="json")
    assert status_changed.json()["status"] == "complete"
    summary = marketer_api.get(url(sandbox, "buying-groups/summary/")).json()
    assert summary["total"] == 1 and {s["status"]: s["count"] for s in summary["by_status"]}["complete"] == 1
    assert summary["by_stage"] == [{"solution_interest": "Analytics", "stage": "Evaluate", "count": 1, "percent": 100}]
    assert marketer_api.post(url(sandbox, "buying-groups/"), {}, format="json").status_code == 405


def test_viewers_read_but_cannot_write(sandbox, api_as, viewer):
    client = api_as(viewer)
    assert client.get(url(sandbox, "buying-group-roles/")).status_code == 200
    assert client.post(url(sandbox, "buying-group-roles/"), {"name": "Legal"}, format="json").status_code == 403
    assert client.post(url(sandbox, "roles-templates/"), {"name": "T", "roles": []}, format="json").status_code == 403


def test_other_sandboxes_are_invisible(sandbox, other_sandbox, make_user, api_as, make_solution_interest):
    theirs = make_solution_interest(other_sandbox, name="Theirs")
    account = Account.objects.create(sandbox=other_sandbox, name="Hidden")
    group = BuyingGroup.objects.create(sandbox=other_sandbox, account=account, solution_interest=theirs)
    client = api_as(make_user(Role.ADMIN, sandbox))
    assert client.get(url(other_sandbox, "buying-groups/")).status_code == 404
    assert client.get(url(sandbox, f"buying-groups/{group.pk}/")).status_code == 404
    assert client.get(url(sandbox, "buying-groups/")).json()["results"] == []
    assert client.get(url(sandbox, f"solution-interests/{theirs.pk}/")).status_code == 404
    # Ids of another sandbox's rows read as unknown when written.
    mine = client.post(url(sandbox, "solution-interests/"), {"name": "X", "roles_template": theirs.roles_template_id}, format="json")
    assert mine.status_code == 400 and "roles_template" in mine.json()["error"]["fields"]
    assert not roles_of(sandbox).filter(name="Theirs").exists()
