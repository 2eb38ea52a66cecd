"""Contract test: the client and the fake both follow Marketo's published Swagger files.

Every client method is exercised against the fake; from the fake's request log we check that
(1) each path + method the client called exists in the spec and each query, form and body
parameter it sent is declared there (with the declared type), and (2) each JSON answer the fake
served validates against the operation's response schema.

The specs are read from ``MARKETO_SPECS_DIR`` (default ``<repo>/../shared/specs/marketo``), never
copied into the project.
"""

import copy
import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest

from connectors.marketo import MarketoError

SPEC_FILES = ("swagger-mapi.json", "swagger-asset.json", "swagger-identity.json")
REPO = Path(__file__).resolve().parents[3]
SPECS_DIR = Path(os.environ.get("MARKETO_SPECS_DIR") or REPO.parent / "shared" / "specs" / "marketo")


@pytest.fixture(scope="module")
def specs():
    missing = [name for name in SPEC_FILES if not (SPECS_DIR / name).is_file()]
    if missing:
        pytest.skip(f"Marketo swagger files not found in {SPECS_DIR} ({', '.join(missing)}); set MARKETO_SPECS_DIR.")
    return [json.loads((SPECS_DIR / name).read_text()) for name in SPEC_FILES]


def _loosen_java_objects(node):
    """Swagger files generated from Java declare ``Object`` values (e.g. an activity attribute's
    ``value``, which Marketo sends as a string, number or boolean) as a bare ``type: object``;
    such a schema constrains nothing, so it is treated as "any value"."""
    if isinstance(node, dict):
        if node.get("type") == "object" and not ({"properties", "additionalProperties", "$ref"} & node.keys()):
            return {}
        return {key: _loosen_java_objects(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_loosen_java_objects(item) for item in node]
    return node


class Operation:
    def __init__(self, spec: dict, path: str, method: str, definition: dict):
        self.spec, self.path, self.method, self.definition = spec, path, method, definition
        self.parameters = {p["name"]: p for p in definition.get("parameters", [])}
        self.pattern = re.compile(re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(path)))

    def schema(self, schema: dict) -> dict:
        return {**_loosen_java_objects(schema), "definitions": _loosen_java_objects(self.spec["definitions"])}

    def body_parameter(self):
        return next((p for p in self.parameters.values() if p["in"] == "body"), None)

    def response_schema(self):
        return self.definition["responses"]["200"].get("schema")


def find_operation(specs, method: str, path: str) -> Operation | None:
    for spec in specs:
        for template, operations in spec["paths"].items():
            definition = operations.get(method.lower())
            if definition is None:
                continue
            operation = Operation(spec, template, method, definition)
            if operation.pattern.fullmatch(path):
                return operation
    return None


def check_value(parameter: dict, raw: str) -> str | None:
    """A problem with one sent value against its declared type, or None."""
    values = raw.split(",") if parameter.get("type") == "array" else [raw]
    kind = parameter.get("items", {}).get("type") if parameter.get("type") == "array" else parameter.get("type")
    enum = parameter.get("items", {}).get("enum") if parameter.get("type") == "array" else parameter.get("enum")
    for value in values:
        if kind == "integer" and not re.fullmatch(r"-?\d+", value):
            return f"{value!r} is not an integer"
        if kind == "boolean" and value not in ("true", "false"):
            return f"{value!r} is not a boolean"
        if enum and value not in enum:
            return f"{value!r} is not one of {enum}"
    return None


def exercise_every_client_method(client, fake):
    """Call each public method of the client once (or more where it takes several calls)."""
    lead = fake.add_lead(email="ada@acme.test", firstName="Ada", company="Acme")
    other = fake.add_lead(email="bob@acme.test", firstName="Bob")
    fake.update_lead(lead, firstName="Adaline")
    fake.add_activity(lead, 1, primary_attribute_value="/pricing", primary_attribute_value_id=3,
                      attributes={"Query Parameters": "utm=x", "Client IP Address": "10.0.0.1"}, campaign_id=12)
    list_id = fake.add_list("Invitees")
    program = fake.add_program("Webinar", type="webinar")
    fake.add_program_member(program, lead, status="Registered")

    client.test_connection()
    client.get_leads_by_filter("email", ["ada@acme.test", "nobody@acme.test"], ["email", "firstName"])
    long_values = [f"a-long-address-number-{i:04d}@subsidiary.example.com" for i in range(250)]
    client.get_leads_by_filter("email", long_values, ["email"])  # POST ?_method=GET
    client.sync_leads([{"email": "new@acme.test", "firstName": "New"}, {"email": "ada@acme.test"}])
    client.add_leads_to_list(list_id, [lead, other, 999_999])
    client.remove_leads_from_list(list_id, [other, 999_999])
    client.get_lists()
    client.get_list_members(list_id, ["email"])
    token = client.get_paging_token(datetime.now(UTC) - timedelta(hours=1))
    client.get_lead_changes(token, ["firstName", "email"])
    client.get_activities(token, [1, 12])
    fake.delete_lead(other)
    client.get_deleted_leads(token)
    client.get_activity_types()
    client.get_programs()
    client.get_program_members(program, ["statusName"])
    client.get_program_members(program, ["statusName"], filter_type="leadId", filter_values=[str(lead)])

    window = {"startAt": (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "endAt": (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    for entity, fields, export_filter in [
        ("leads", ["id", "email"], {"createdAt": window}),
        ("activities", None, {"createdAt": window, "activityTypeIds": [1]}),
    ]:
        export_id = client.create_export_job(entity, fields, export_filter)
        client.enqueue_export_job(entity, export_id)
        client.wait_for_export(entity, export_id)
        assert list(client.iter_export_file(entity, export_id))
        cancelled = client.create_export_job(entity, fields, export_filter)
        client.cancel_export_job(entity, cancelled)

    # Error answers are part of the contract too.
    with pytest.raises(MarketoError):
        client.get_leads_by_filter("email", ["x@acme.test"], ["noSuchField"])
    with pytest.raises(MarketoError):
        client.create_export_job("leads", ["email"], {"updatedAt": {"startAt": "2026-01-01T00:00:00Z",
                                                                    "endAt": "2026-03-01T00:00:00Z"}})
    fake.expire_tokens()
    client.get_activity_types()


@pytest.fixture
def recorded(marketo_client, fake_marketo):
    exercise_every_client_method(marketo_client, fake_marketo)
    return list(fake_marketo.requests)


def test_every_call_the_client_makes_is_declared_in_the_spec(specs, recorded):
    problems, seen = [], set()
    for request in recorded:
        operation = find_operation(specs, request.method, request.path)
        if operation is None:
            problems.append(f"{request.method} {request.path}: no such operation in the spec")
            continue
        seen.add((operation.method, operation.path))
        # POST ?_method=GET (Marketo's documented way around the 8 KB URI limit) sends the GET
        # operation's query parameters as a form body.
        for name, values in request.params.items():
            parameter = operation.parameters.get(name)
            if parameter is None or parameter["in"] not in ("query", "formData"):
                problems.append(f"{request.method} {operation.path}: parameter {name!r} is not declared")
                continue
            for value in values:
                if problem := check_value(parameter, value):
                    problems.append(f"{request.method} {operation.path}: {name} {problem}")
        body = operation.body_parameter()
        if request.json is not None:
            if body is None:
                problems.append(f"{request.method} {operation.path}: sends a JSON body the spec does not declare")
            else:
                validator = jsonschema.Draft4Validator(operation.schema(body["schema"]))
                problems += [f"{request.method} {operation.path} body: {error.message}"
                             for error in validator.iter_errors(request.json)]
    assert problems == []
    expected = {
        ("GET", "/identity/oauth/token"), ("GET", "/rest/v1/leads.json"), ("POST", "/rest/v1/leads.json"),
        ("GET", "/rest/v1/leads/describe.json"), ("POST", "/rest/v1/lists/{listId}/leads.json"),
        ("DELETE", "/rest/v1/lists/{listId}/leads.json"), ("GET", "/rest/v1/lists.json"),
        ("GET", "/rest/v1/lists/{listId}/leads.json"), ("GET", "/rest/v1/activities/pagingtoken.json"),
        ("GET", "/rest/v1/activities/leadchanges.json"), ("GET", "/rest/v1/activities.json"),
        ("GET", "/rest/v1/activities/deletedleads.json"), ("GET", "/rest/v1/activities/types.json"),
        ("GET", "/rest/asset/v1/programs.json"), ("GET", "/rest/v1/programs/{programId}/members.json"),
    } | {
        (method, f"/bulk/v1/{entity}/export/{action}.json")
        for entity in ("leads", "activities")
        for method, action in [("POST", "create"), ("POST", "{exportId}/enqueue"), ("GET", "{exportId}/status"),
                               ("POST", "{exportId}/cancel"), ("GET", "{exportId}/file")]
    }
    assert expected - seen == set(), "some client methods were not exercised"


def test_every_answer_of_the_fake_matches_the_spec(specs, recorded):
    problems, validated = [], 0
    for request in recorded:
        operation = find_operation(specs, request.method, request.path)
        assert operation is not None, f"{request.method} {request.path}"
        if request.content_type != "application/json":
            assert request.path.endswith("/file.json") and request.content_type == "text/csv"
            continue
        schema = operation.response_schema()
        if request.path == "/identity/oauth/token" and request.status != 200:
            continue  # refused credentials: an OAuth error, not a Marketo envelope (not exercised here)
        validator = jsonschema.Draft4Validator(operation.schema(schema))
        problems += [f"{request.method} {operation.path}: {error.json_path}: {error.message}"
                     for error in validator.iter_errors(copy.deepcopy(request.response))]
        validated += 1
    assert problems == []
    assert validated >= 30
    # The failures answered above are envelopes too (success false, errors[{code, message}]).
    failures = [r.response for r in recorded if r.response and r.response.get("success") is False]
    assert {f["errors"][0]["code"] for f in failures} >= {"1006", "1003", "602"}


def test_the_checks_reject_what_the_spec_forbids(specs):
    """The contract checks are not vacuous: answers and parameters off the spec are caught."""
    lists = find_operation(specs, "GET", "/rest/v1/lists.json")
    validator = jsonschema.Draft4Validator(lists.schema(lists.response_schema()))
    good = {"requestId": "a#b", "success": True, "errors": [], "warnings": [],
            "result": [{"id": 1, "name": "L", "createdAt": "x", "updatedAt": "y"}]}
    assert list(validator.iter_errors(good)) == []
    assert list(validator.iter_errors({**good, "result": [{"id": "1", "name": "L"}]}))
    assert list(validator.iter_errors({k: v for k, v in good.items() if k != "requestId"}))

    leads = find_operation(specs, "GET", "/rest/v1/leads.json")
    assert check_value(leads.parameters["batchSize"], "many") == "'many' is not an integer"
    assert "nope" not in leads.parameters
    assert find_operation(specs, "GET", "/rest/v1/leads/sync.json") is None
