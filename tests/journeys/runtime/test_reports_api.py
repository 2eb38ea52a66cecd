"""Reports (dashboard, runtime page, CSV export) and the runtime API, incl. sandbox isolation."""

import csv
import io

import pytest
from django.urls import reverse

from cdp.choices import Role
from journeys.models import EmailSend, Enrollment
from journeys.services.runtime import advance_enrollment, enroll_new_members

from .conftest import account_audience, email_asset, live_journey, make_people

pytestmark = pytest.mark.django_db

NODES = lambda email_id: {  # noqa: E731
    "n1": {"type": "start", "next": "n2"},
    "n2": {"type": "action", "action": "send_email", "params": {"email_id": email_id}, "next": "n3"},
    "n3": {"type": "end"},
}


@pytest.fixture
def journey(sandbox):
    make_people(sandbox, [
        {"email": "ann@acme.com", "first_name": "Ann", "account.domain": "acme.com"},
        {"email": "bob@acme.com", "first_name": "Bob", "account.domain": "acme.com"},
    ])  # fmt: skip
    journey = live_journey(sandbox, account_audience(sandbox), NODES(email_asset(sandbox).pk), name="Onboarding")
    for enrollment_id in enroll_new_members(journey):
        advance_enrollment(enrollment_id)
    EmailSend.objects.filter(to_email="ann@acme.com").update(opened_at="2026-01-01T00:00:00Z")
    return journey


def test_dashboard_shows_status_completion_and_email_engagement(journey, viewer, login):
    response = login(viewer).get(reverse("journeys:reports:dashboard"))
    assert response.status_code == 200
    row = response.context["rows"][0]
    assert row["journey"] == journey and row["completion"] == 100
    assert row["emails"] == {"sent": 2, "opened": 1, "clicked": 0, "open_rate": 50.0, "click_rate": 0}
    assert b"Onboarding" in response.content


def test_runtime_page_lists_node_counts(journey, viewer, login):
    response = login(viewer).get(reverse("journeys:reports:journey", args=[journey.pk]))
    assert response.status_code == 200
    nodes = {n["id"]: n for n in response.context["nodes"]}
    assert nodes["n3"]["people"]["entered"] == 2 and nodes["n2"]["entered"] == 1


def test_csv_export_has_one_row_per_person_node_visit(journey, viewer, login):
    response = login(viewer).get(reverse("journeys:reports:visits-csv", args=[journey.pk]))
    assert response["Content-Disposition"].endswith('onboarding-%d-visits.csv"' % journey.pk)
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    people_rows = [r for r in rows if r["person_id"]]
    assert len(rows) == 9 and len(people_rows) == 6  # (account token + 2 people) x 3 nodes
    assert {(r["person_email"], r["node"], r["outcome"]) for r in people_rows if r["node"] == "n2"} == {
        ("ann@acme.com", "n2", "next"), ("bob@acme.com", "n2", "next")
    }
    assert {r["node_type"] for r in rows} == {"start", "action", "end"}


def test_pages_of_another_sandbox_are_not_found(journey, other_sandbox, make_user, login):
    outsider = make_user(Role.ADMIN, other_sandbox)
    client = login(outsider)
    assert client.get(reverse("journeys:reports:journey", args=[journey.pk])).status_code == 404
    assert client.get(reverse("journeys:reports:visits-csv", args=[journey.pk])).status_code == 404
    assert client.get(reverse("journeys:reports:dashboard")).context["rows"] == []


def test_api_statistics_and_node_counts(journey, sandbox, viewer, api_as):
    client = api_as(viewer)
    listing = client.get(f"/api/sandboxes/{sandbox.pk}/journey-runtime/").json()
    assert [j["name"] for j in listing["results"]] == ["Onboarding"]
    assert listing["results"][0]["stats"]["enrollments"]["finished"] == 1
    detail = client.get(f"/api/sandboxes/{sandbox.pk}/journey-runtime/{journey.pk}/").json()
    assert detail["node_counts"]["n3"] == {"entered": 1, "current": 0, "exited": 1, "people": {"entered": 2, "current": 0, "exited": 2}}
    enrollments = client.get(f"/api/sandboxes/{sandbox.pk}/journey-runtime/{journey.pk}/enrollments/").json()["results"]
    assert enrollments[0]["state"] == "finished" and len(enrollments[0]["tokens"]) == 3


def test_api_is_read_only(journey, sandbox, marketer, api_as):
    client = api_as(marketer)
    assert client.post(f"/api/sandboxes/{sandbox.pk}/journey-runtime/", {}).status_code == 405
    assert client.delete(f"/api/sandboxes/{sandbox.pk}/journey-runtime/{journey.pk}/").status_code == 405


def test_api_is_scoped_to_the_sandbox(journey, sandbox, other_sandbox, make_user, api_as):
    outsider = make_user(Role.ADMIN, other_sandbox)
    client = api_as(outsider)
    assert client.get(f"/api/sandboxes/{sandbox.pk}/journey-runtime/").status_code == 404
    assert client.get(f"/api/sandboxes/{other_sandbox.pk}/journey-runtime/{journey.pk}/").status_code == 404
    assert client.get(f"/api/sandboxes/{other_sandbox.pk}/journey-runtime/").json()["results"] == []
    assert Enrollment.objects.filter(journey=journey).count() == 1
