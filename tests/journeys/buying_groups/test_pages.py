"""Buying group pages: configuration forms, building, the list with filters, a group's page and
its actions, the dashboard; roles and sandbox isolation."""

from django.urls import reverse

from cdp.models import Account, AccountPerson, Person
from cdp.services.audiences import save_audience
from journeys.models import BuyingGroup, BuyingGroupMember, RolesTemplate, SolutionInterest, StagesModel
from journeys.services.buying_groups import roles_of

from .conftest import compare


def role_fields(sandbox, **roles):
    """POST fields of the roles template form: name → (weight, required, count, pql)."""
    data = {}
    for role in roles_of(sandbox):
        if role.name in roles:
            weight, required, count, pql = roles[role.name]
            prefix = f"role-{role.pk}"
            data |= {f"{prefix}-included": "on", f"{prefix}-weight": weight, f"{prefix}-required_count": count, f"{prefix}-pql": pql}
            if required:
                data[f"{prefix}-required"] = "on"
    return data


def test_configure_build_and_work_a_group_through_the_pages(login, marketer, sandbox, django_capture_on_commit_callbacks):
    client = login(marketer)
    assert client.get(reverse("journeys:buying-groups")).status_code == 200

    # A condition that doesn't parse is shown with where it is wrong.
    bad = client.post(reverse("journeys:roles-template-new"), {"name": "Roles", **role_fields(sandbox, Champion=(40, False, 1, "person.jobTitle ="))})
    assert bad.status_code == 400 and "line 1" in bad.content.decode()

    fields = role_fields(sandbox, **{"Decision Maker": (100, True, 1, 'person.jobTitle = "CTO"'), "Champion": (40, False, 1, "")})
    response = client.post(reverse("journeys:roles-template-new"), {"name": "Roles", "publish": "1", **fields})
    assert response.status_code == 302
    template = RolesTemplate.objects.get(sandbox=sandbox)
    assert template.status == "live" and template.roles.count() == 2
    page = client.get(reverse("journeys:roles-template", args=[template.pk])).content.decode()
    assert "This template is live" in page and "person.jobTitle = &quot;CTO&quot;" in page

    refused = client.post(reverse("journeys:stages-model-new"), {"name": "Funnel", "stages": "Start: entry", "transitions": ""})
    assert refused.status_code == 400 and "exactly one success stage" in refused.content.decode()
    stages = "Discover: entry\nEvaluate\nPurchase: success\nLost: failure"
    client.post(reverse("journeys:stages-model-new"), {"name": "Funnel", "stages": stages, "transitions": "Discover -> Evaluate\nEvaluate -> Purchase", "publish": "1"})
    model = StagesModel.objects.get(sandbox=sandbox)
    assert model.status == "published" and [s.kind for s in model.stages.all()] == ["entry", "intermediate", "success", "failure"]

    response = client.post(reverse("journeys:solution-interest-new"), {"name": "Analytics", "roles_template": template.pk, "stages_model": model.pk})
    interest = SolutionInterest.objects.get(sandbox=sandbox)
    assert response.status_code == 302 and interest.stages_model == model

    acme = Account.objects.create(sandbox=sandbox, name="Acme", domain="acme.com", industry="Software")
    alice = Person.objects.create(sandbox=sandbox, email="alice@acme.com", first_name="Alice", job_title="CTO")
    bob = Person.objects.create(sandbox=sandbox, email="bob@acme.com", first_name="Bob", job_title="Analyst")
    for person in (alice, bob):
        AccountPerson.objects.create(sandbox=sandbox, account=acme, person=person)
    with django_capture_on_commit_callbacks(execute=True):
        audience = save_audience(sandbox, name="Software", definition={"subject": "account", "condition": compare("industry", "eq", "Software")})
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("journeys:solution-interest-build", args=[interest.pk]), {"audience": audience.pk})
    assert response.status_code == 302
    page = client.get(reverse("journeys:solution-interest", args=[interest.pk])).content.decode()
    assert "Succeeded" in page and "1 of 1 accounts" in page

    group = BuyingGroup.objects.get(sandbox=sandbox)
    assert "Acme" in client.get(reverse("journeys:buying-group-list")).content.decode()  # no filter: every group
    listing = client.get(reverse("journeys:buying-group-list"), {"status": "full", "completeness_min": 100}).content.decode()
    assert "Acme" in listing
    assert "Acme" not in client.get(reverse("journeys:buying-group-list"), {"completeness_max": 10}).content.decode()
    assert "Acme" not in client.get(reverse("journeys:buying-group-list"), {"stage": "Evaluate"}).content.decode()

    detail = client.get(reverse("journeys:buying-group", args=[group.pk])).content.decode()
    assert "Alice" in detail and "Decision Maker" in detail and "Discover" in detail
    client.post(reverse("journeys:buying-group-stage", args=[group.pk]), {"stage": "Evaluate"})
    client.post(reverse("journeys:buying-group-assign", args=[group.pk]), {"person": bob.pk, "role": roles_of(sandbox).get(name="Champion").pk})
    member = BuyingGroupMember.objects.get(person=bob)
    assert (member.role.name, member.assigned_how) == ("Champion", "manual")
    response = client.post(reverse("journeys:buying-group-stage", args=[group.pk]), {"stage": "Discover"}, follow=True)
    assert "cannot move from" in response.content.decode()
    client.post(reverse("journeys:buying-group-remove", args=[group.pk, bob.pk]))
    client.post(reverse("journeys:buying-group-status", args=[group.pk]), {"status": "complete"})
    group.refresh_from_db()
    assert (group.stage.name, group.status, group.members.count()) == ("Evaluate", "complete", 1)

    dashboard = client.get(reverse("journeys:buying-groups")).content.decode()
    assert 'id="status-distribution"' in dashboard and "Evaluate" in dashboard


def test_roles_page_adds_custom_roles(login, marketer, sandbox):
    client = login(marketer)
    response = client.post(reverse("journeys:roles-templates"), {"name": "Legal"})
    assert response.status_code == 302 and roles_of(sandbox).filter(name="Legal").exists()
    response = client.post(reverse("journeys:roles-templates"), {"name": "legal"})
    assert response.status_code == 400 and "already exists" in response.content.decode()


def test_viewers_read_but_cannot_change(login, viewer, sandbox, make_solution_interest):
    client = login(viewer)
    assert client.get(reverse("journeys:solution-interests")).status_code == 200
    assert client.post(reverse("journeys:roles-templates"), {"name": "Legal"}).status_code == 403
    interest = make_solution_interest(sandbox)
    assert client.post(reverse("journeys:solution-interest-delete", args=[interest.pk])).status_code == 403


def test_other_sandboxes_groups_are_not_found(login, marketer, sandbox, other_sandbox, make_solution_interest):
    theirs = make_solution_interest(other_sandbox, name="Theirs")
    group = BuyingGroup.objects.create(sandbox=other_sandbox, account=Account.objects.create(sandbox=other_sandbox, name="Hidden"), solution_interest=theirs)
    client = login(marketer)
    assert client.get(reverse("journeys:buying-group", args=[group.pk])).status_code == 404
    assert client.get(reverse("journeys:solution-interest", args=[theirs.pk])).status_code == 404
    assert "Hidden" not in client.get(reverse("journeys:buying-group-list")).content.decode()
    assert "Theirs" not in client.get(reverse("journeys:buying-groups")).content.decode()


def test_build_progress_is_polled_until_the_build_is_over(login, viewer, sandbox, make_solution_interest):
    from journeys.models import BuyingGroupBuild

    interest = make_solution_interest(sandbox)
    audience = save_audience(sandbox, name="Software", definition={"subject": "account", "condition": compare("industry", "eq", "Software")})
    build = BuyingGroupBuild.objects.create(sandbox=sandbox, solution_interest=interest, audience=audience, status="running",
                                            total_accounts=4, processed_accounts=1)  # fmt: skip
    client = login(viewer)
    url = reverse("journeys:buying-group-build-progress", args=[build.pk])
    polling = client.get(url, HTTP_HX_REQUEST="true")
    assert polling.status_code == 200 and 'aria-valuenow="25"' in polling.content.decode() and "hx-trigger" in polling.content.decode()
    BuyingGroupBuild.objects.filter(pk=build.pk).update(status="succeeded", processed_accounts=4)
    assert client.get(url, HTTP_HX_REQUEST="true").headers.get("HX-Refresh") == "true"
