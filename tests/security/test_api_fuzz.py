"""Property-based API fuzzing with schemathesis against the served ``/api/schema/``.

Every operation of the schema is called with generated data (schema-valid and schema-violating:
wrong types, missing fields, odd strings, odd path ids), authenticated by an API token of an
organization admin, inside that admin's sandbox. Checked on every answer: no 5xx, and the answer
conforms to the schema (documented status code, content type, body, headers).

Deterministic (derandomized hypothesis, no example database) and small (a few examples per
operation) so the whole file stays within a few minutes in CI.
"""

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from rest_framework.test import APIClient

from cdp.services import issue_api_token
from tests.factories import UserFactory, make_org_admin

APP = get_wsgi_application()
schema = schemathesis.openapi.from_wsgi(
    "/api/schema/?format=json",
    APP,
    # The token is sent by the test (below); schemathesis must not replace it with generated ones.
    config=schemathesis.config.SchemathesisConfig.from_dict({"generation": {"with-security-parameters": False}}),
)

pytestmark = pytest.mark.django_db

# Checks left out, for every operation:
EXCLUDED_CHECKS = [
    # A body can match the schema and still break a business rule the schema cannot express (PQL
    # grammar, pairing rules, a journey graph's validity, ids that must exist in the sandbox):
    # those answer 400 naming the rule, which is right.
    schemathesis.checks.positive_data_acceptance,
    # DRF deliberately coerces scalars (0 → "0" for a text field), falls back to the default page
    # size on a bad ``page_size`` and ignores unknown query parameters; schema-violating input is
    # still sent, and must still give no 5xx and a conforming answer.
    schemathesis.checks.negative_data_rejection,
]



@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """Calls go through the real WSGI handler, whose request signals close "old" database
    connections: inside a test's transaction that would close the test's own connection (on
    PostgreSQL). Django's test client unhooks the same receiver for the same reason."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def token(sandbox):
    admin = UserFactory()
    make_org_admin(admin, sandbox.organization)
    _, key = issue_api_token(user=admin, name="fuzz", created_by=admin)
    return key


@schema.parametrize()
@settings(max_examples=4, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case, sandbox, token):
    if isinstance((case.path_parameters or {}).get("sandbox_id"), int):
        # Inside the caller's sandbox, where the operation does real work (other sandboxes answer
        # 404, proven route by route in test_cross_sandbox.py). A mutated, non-integer sandbox id
        # is kept: it must be refused cleanly too.
        case.path_parameters["sandbox_id"] = sandbox.pk
    case.call_and_validate(
        headers={"Authorization": f"Bearer {token}"},
        excluded_checks=EXCLUDED_CHECKS,
    )


def test_the_schema_covers_the_sandbox_api():
    """Guards the fuzzing itself: the schema lists the sandbox-scoped routes it should."""
    paths = {operation.path for operation in (r.ok() for r in schema.get_all_operations())}
    assert "/api/sandboxes/{sandbox_id}/audiences/" in paths
    assert "/api/sandboxes/{sandbox_id}/stream/{entity}/" in paths
    assert len(paths) > 50


# --- Bugs the fuzzing found, kept fixed ------------------------------------------------------


@pytest.fixture
def admin_client(sandbox, make_user):
    client = APIClient()
    client.force_authenticate(user=make_user(org_admin_of=sandbox.organization))
    return client


def test_buying_group_summary_refuses_a_non_numeric_solution_interest(admin_client, sandbox):
    response = admin_client.get(f"/api/sandboxes/{sandbox.pk}/buying-groups/summary/?solution_interest=null")
    assert response.status_code == 400


@pytest.mark.parametrize("route", ["buying-groups", "buying-group-builds"])
@pytest.mark.parametrize("suffix,method", [("", "POST"), ("1/", "DELETE")])
def test_routes_advertise_only_the_methods_they_offer(route, suffix, method, admin_client, sandbox):
    allow = admin_client.options(f"/api/sandboxes/{sandbox.pk}/{route}/{suffix}")["Allow"]
    assert method not in allow
