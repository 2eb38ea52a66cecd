"""The OpenAPI schema: served at /api/schema/, valid, and free of generator warnings."""

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db

TENANCY_PATHS = {
    "/api/organizations/",
    "/api/organizations/{id}/",
    "/api/sandboxes/",
    "/api/sandboxes/{id}/",
    "/api/sandboxes/{id}/reset/",
    "/api/members/",
    "/api/members/{id}/",
    "/api/tokens/",
    "/api/tokens/{id}/",
    "/api/tokens/{id}/revoke/",
    "/api/me/",
}


def test_schema_is_served_with_the_tenancy_endpoints(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert TENANCY_PATHS <= set(schema["paths"])
    assert "apiToken" in schema["components"]["securitySchemes"]


def test_schema_documents_the_once_shown_key_and_the_error_body(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    issued = schema["paths"]["/api/tokens/"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    assert issued["$ref"].endswith("/ApiTokenIssued")
    assert "key" in schema["components"]["schemas"]["ApiTokenIssued"]["properties"]
    assert "key" not in schema["components"]["schemas"]["ApiToken"]["properties"]
    reset = schema["paths"]["/api/sandboxes/{id}/reset/"]["post"]["responses"]
    assert reset["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
    me = schema["paths"]["/api/me/"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert me["$ref"].endswith("/Me"), "/api/me/ answers one object, not a list"


def test_spectacular_validates_without_warnings(tmp_path):
    # Raises SchemaGenerationError on any warning, SchemaValidationError on an invalid schema.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))
    assert (tmp_path / "schema.yml").read_text().startswith("openapi: 3")
