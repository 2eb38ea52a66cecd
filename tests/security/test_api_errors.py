"""Regression tests for answers found wrong by fuzzing and route walking: every API error is the
JSON error body, nothing reveals whether another tenant's sandbox exists, and no route crashes on
a method it does not offer (OPTIONS on the API, GET on a POST-only page)."""

import pytest

from cdp.choices import Role
from tests.factories import SandboxFactory

pytestmark = pytest.mark.django_db


def test_an_unknown_api_address_answers_the_json_error_body(api_as, marketer, sandbox):
    for path in (f"/api/sandboxes/{sandbox.pk}/audiences/1/nope/", "/api/no-such-thing/", "/api/sandboxes/x/people/"):
        response = api_as(marketer).get(path)
        assert response.status_code == 404, path
        assert response["Content-Type"] == "application/json"
        assert response.json()["error"]["code"] == "not_found"
        assert path in response.json()["error"]["message"]


def test_an_unknown_page_address_still_answers_html(login, marketer):
    response = login(marketer).get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_a_missing_sandbox_and_another_tenants_sandbox_answer_alike(api_as, marketer, other_sandbox):
    client = api_as(marketer)
    missing = client.get(f"/api/sandboxes/{other_sandbox.pk + 1000}/people/")
    foreign = client.get(f"/api/sandboxes/{other_sandbox.pk}/people/")
    assert (missing.status_code, missing.json()) == (foreign.status_code, foreign.json())
    assert foreign.status_code == 404


def test_the_csv_report_answers_errors_as_json(api_as, marketer, sandbox):
    for suffix in ("999/report/", "999/report.csv"):
        response = api_as(marketer).get(f"/api/sandboxes/{sandbox.pk}/ingestion-batches/{suffix}")
        assert response.status_code == 404
        assert response["Content-Type"] == "application/json"
        assert response.json()["error"]["code"] == "not_found"


def test_options_on_the_streaming_endpoint_describes_it(api_as, marketer, sandbox):
    response = api_as(marketer).options(f"/api/sandboxes/{sandbox.pk}/stream/person/")
    assert response.status_code == 200
    assert response.json()["parses"] == ["application/json"]


@pytest.mark.parametrize("route", ["dead-letters", "sync-runs"])
def test_lists_that_cannot_be_created_refuse_and_do_not_advertise_post(route, api_as, make_user, sandbox):
    client = api_as(make_user(Role.ADMIN, sandbox))
    assert "POST" not in client.options(f"/api/sandboxes/{sandbox.pk}/{route}/")["Allow"]
    response = client.post(f"/api/sandboxes/{sandbox.pk}/{route}/", {}, format="json")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_every_operation_documents_the_generic_errors(api_as, marketer):
    schema = api_as(marketer).get("/api/schema/?format=json").json()
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            missing = {"400", "401", "403", "404"} - set(operation["responses"])
            assert not missing, (method, path, missing)
            assert operation["responses"]["401"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Error"
            }


def test_a_sibling_sandbox_without_a_role_is_not_found(api_as, marketer, sandbox):
    sibling = SandboxFactory(organization=sandbox.organization, name="dev")
    assert api_as(marketer).get(f"/api/sandboxes/{sibling.pk}/audiences/").status_code == 404


def test_a_post_only_page_answers_get_with_405(login, marketer, sandbox):
    from cdp.models import Audience

    audience = Audience.objects.create(
        sandbox=sandbox, name="A", kind="person",
        definition={"subject": "person", "condition": {"type": "compare", "field": "email", "op": "isNotNull"}},
    )
    response = login(marketer).get(f"/audiences/{audience.pk}/evaluate/")
    assert response.status_code == 405
