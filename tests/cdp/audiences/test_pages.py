"""Audience pages: the list, the builder form (save and its refusals), the audience page with its
chart, members and history, evaluate / export / delete, roles and sandbox isolation."""

import datetime as dt
import json

import pytest
from django.urls import reverse
from django.utils import timezone

from cdp.choices import EvaluationState
from cdp.models import Audience, AudienceEvaluation, Person
from cdp.services.audiences import save_audience
from tests.cdp.ingest_helpers import ingest

CTO_TREE = {"subject": "person", "condition": {"type": "compare", "field": "jobTitle", "op": "eq", "value": "CTO"}}


@pytest.fixture
def committed(transactional_db):
    """Real commits: the evaluation save_audience queues on commit runs (Celery is eager in tests)."""


@pytest.fixture
def people(sandbox):
    ingest(
        sandbox,
        "person",
        [
            {"email": "ada@acme.io", "first_name": "Ada", "last_name": "Lovelace", "job_title": "CTO"},
            {"email": "bob@acme.io", "first_name": "Bob", "job_title": "CFO"},
        ],
    )
    return {p.email: p for p in Person.objects.for_sandbox(sandbox)}


def builder_post(name="CTOs", definition=CTO_TREE, **extra):
    data = {
        "name": name,
        "description": "",
        "kind": "person",
        "interval_amount": "1",
        "interval_unit": "days",
        "definition": json.dumps(definition) if definition is not None else "",
    }
    return {**data, **extra}


def test_list_shows_size_state_and_a_failure_with_its_error(login, marketer, sandbox, people, committed):
    save_audience(sandbox, name="CTOs", definition=CTO_TREE)
    broken = save_audience(sandbox, name="Broken", definition=CTO_TREE)
    Audience.objects.filter(pk=broken.pk).update(state=EvaluationState.FAILED, last_error="OperationalError: disk full", failure_count=2)

    page = login(marketer).get(reverse("cdp:audiences")).content.decode()

    assert "CTOs" in page and "Up to date" in page
    assert "Failed" in page and "OperationalError: disk full" in page
    assert "1 audience failed to evaluate" in page
    assert reverse("cdp:audiences-new") in page


def test_builder_creates_an_audience_and_redirects_to_its_page(login, marketer, sandbox, people, committed):
    client = login(marketer)
    assert client.get(reverse("cdp:audiences-new")).status_code == 200

    response = client.post(reverse("cdp:audiences-new"), builder_post(interval_amount="6", interval_unit="hours"))

    audience = Audience.objects.get(name="CTOs")
    assert response.status_code == 302 and response.url == reverse("cdp:audiences-detail", args=[audience.pk])
    assert audience.definition == CTO_TREE
    assert audience.evaluation_interval == dt.timedelta(hours=6)
    assert audience.size == 1 and audience.created_by == marketer


def test_builder_shows_what_is_wrong_with_the_definition(login, marketer, sandbox):
    client = login(marketer)
    bad = {"subject": "person", "condition": {"type": "compare", "field": "jobTitel", "op": "eq", "value": "CTO"}}

    response = client.post(reverse("cdp:audiences-new"), builder_post(definition=bad))

    assert response.status_code == 400
    page = response.content.decode()
    assert "did you mean jobTitle" in page and "$.condition.field" in page
    empty = client.post(reverse("cdp:audiences-new"), builder_post(definition=None))
    assert "Give a definition" in empty.content.decode()
    assert not Audience.objects.exists()


def test_builder_shows_the_services_refusals(login, marketer, sandbox, committed):
    save_audience(sandbox, name="CTOs", definition=CTO_TREE)
    sandbox.limits = {"audiences": 1}
    sandbox.save()

    response = login(marketer).post(reverse("cdp:audiences-new"), builder_post(name="Others"))

    assert response.status_code == 400
    assert "limit of 1 audiences" in response.content.decode()


def test_editing_keeps_the_form_filled_and_saves(login, marketer, sandbox, people, committed):
    audience = save_audience(sandbox, name="CTOs", definition=CTO_TREE)
    client = login(marketer)

    page = client.get(reverse("cdp:audiences-edit", args=[audience.pk])).content.decode()
    assert 'value="CTOs"' in page and "jobTitle" in page
    assert "Fixed once the audience has members" in page

    cfo = {**CTO_TREE, "condition": {**CTO_TREE["condition"], "value": "CFO"}}
    response = client.post(reverse("cdp:audiences-edit", args=[audience.pk]), builder_post(name="Finance", definition=cfo))

    assert response.status_code == 302
    audience.refresh_from_db()
    assert (audience.name, audience.definition["condition"]["value"], audience.size) == ("Finance", "CFO", 1)


def test_audience_page_shows_stats_chart_members_and_history(login, viewer, sandbox, people, committed):
    audience = save_audience(sandbox, name="CTOs", definition=CTO_TREE)
    AudienceEvaluation.objects.create(
        sandbox=sandbox, audience=audience, mode="incremental", started_at=timezone.now() - dt.timedelta(hours=2),
        duration_ms=5, size=0, error="OperationalError: locked",
    )  # fmt: skip

    page = login(viewer).get(reverse("cdp:audiences-detail", args=[audience.pk])).content.decode()

    assert "person.jobTitle = &quot;CTO&quot;" in page  # the PQL form, escaped in HTML
    assert "<svg" in page and "<polyline" in page and "chart-dot-failed" in page
    assert reverse("cdp:profiles-person", args=[people["ada@acme.io"].pk]) in page
    assert "Ada Lovelace" in page and "Bob" not in page
    assert "Entered" in page
    assert "Evaluate now" not in page and "Delete" not in page  # viewers see no write buttons
    assert reverse("cdp:audiences-members-csv", args=[audience.pk]) in page


def test_evaluate_now_and_csv_export(login, marketer, sandbox, people, committed):
    audience = save_audience(sandbox, name="CTOs", definition=CTO_TREE)
    ingest(sandbox, "person", [{"email": "cy@acme.io", "first_name": "Cy", "job_title": "CTO"}])
    client = login(marketer)

    response = client.post(reverse("cdp:audiences-evaluate", args=[audience.pk]))

    assert response.status_code == 302
    audience.refresh_from_db()
    assert audience.size == 2
    export = client.get(reverse("cdp:audiences-members-csv", args=[audience.pk]))
    lines = b"".join(export.streaming_content).decode().splitlines()
    assert lines[0].startswith("person_id,email")
    assert sorted(line.split(",")[1] for line in lines[1:]) == ["ada@acme.io", "cy@acme.io"]


def test_delete_is_refused_while_used_then_allowed(login, marketer, sandbox, people, committed):
    ctos = save_audience(sandbox, name="CTOs", definition=CTO_TREE)
    user = save_audience(sandbox, name="Uses CTOs", definition={"subject": "person", "condition": {"type": "inSegment", "audience": str(ctos.pk)}})
    client = login(marketer)

    assert "can't be deleted while other audiences use it" in client.get(reverse("cdp:audiences-delete", args=[ctos.pk])).content.decode()
    refused = client.post(reverse("cdp:audiences-delete", args=[ctos.pk]), follow=True)
    assert "Uses CTOs" in refused.content.decode() and Audience.objects.filter(pk=ctos.pk).exists()

    client.post(reverse("cdp:audiences-delete", args=[user.pk]))
    response = client.post(reverse("cdp:audiences-delete", args=[ctos.pk]))
    assert response.status_code == 302 and not Audience.objects.exists()


def test_viewers_cannot_open_the_builder_or_change_anything(login, viewer, sandbox, committed):
    audience = save_audience(sandbox, name="CTOs", definition=CTO_TREE)
    client = login(viewer)

    assert client.get(reverse("cdp:audiences-new")).status_code == 403
    assert client.post(reverse("cdp:audiences-new"), builder_post(name="X")).status_code == 403
    assert client.post(reverse("cdp:audiences-evaluate", args=[audience.pk])).status_code == 403
    assert client.post(reverse("cdp:audiences-delete", args=[audience.pk])).status_code == 403
    assert list(Audience.objects.values_list("name", flat=True)) == ["CTOs"]


def test_another_sandboxs_audience_is_404_everywhere(login, marketer, sandbox, other_sandbox, committed):
    foreign = save_audience(other_sandbox, name="Theirs", definition=CTO_TREE)
    client = login(marketer)

    for name in ("cdp:audiences-detail", "cdp:audiences-edit", "cdp:audiences-delete", "cdp:audiences-members-csv"):
        assert client.get(reverse(name, args=[foreign.pk])).status_code == 404, name
    assert client.post(reverse("cdp:audiences-evaluate", args=[foreign.pk])).status_code == 404
    assert "Theirs" not in client.get(reverse("cdp:audiences")).content.decode()
    # Nor can the builder name it.
    sneaky = {"subject": "person", "condition": {"type": "inSegment", "audience": str(foreign.pk)}}
    response = client.post(reverse("cdp:audiences-new"), builder_post(name="Sneaky", definition=sneaky))
    assert response.status_code == 400 and "does not have" in response.content.decode()


def test_a_queued_audience_page_polls_until_the_evaluation_is_over(login, viewer, sandbox, committed):
    audience = save_audience(sandbox, name="CTOs", definition=CTO_TREE)
    Audience.objects.filter(pk=audience.pk).update(state=EvaluationState.QUEUED)
    client = login(viewer)
    state_url = reverse("cdp:audiences-state", args=[audience.pk])

    assert state_url in client.get(reverse("cdp:audiences-detail", args=[audience.pk])).content.decode()
    assert client.get(state_url, HTTP_HX_REQUEST="true").status_code == 204

    Audience.objects.filter(pk=audience.pk).update(state=EvaluationState.IDLE)
    assert client.get(state_url, HTTP_HX_REQUEST="true")["HX-Refresh"] == "true"
    assert state_url not in client.get(reverse("cdp:audiences-detail", args=[audience.pk])).content.decode()
