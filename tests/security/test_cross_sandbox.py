"""Sandbox isolation through the API, proven on EVERY sandbox-scoped route the router knows.

The routes are read from ``config.api_router.sandbox_router`` at collection time, so a viewset
added later is covered without touching this file. For each route and each HTTP method it offers:

- a caller without a role in sandbox B gets 404 for ``/api/sandboxes/B/…`` (list, detail, writes,
  actions) and learns nothing about B's objects;
- a caller with the strongest role in sandbox A gets 404 for ``/api/sandboxes/A/…/<id of B's row>/…``;
- lists of A never contain B's rows;
- create bodies that point at B's rows through a related field are refused (400 naming the field).

A positive control (B's own admin reads the same row through B's URL) proves the ids used are real.
"""

import json
import re

import pytest
from rest_framework import relations
from rest_framework.test import APIClient

from cdp.choices import IngestionEntity
from cdp.models import Person
from config.api_router import sandbox_router
from tests.factories import SandboxFactory
from tests.security.builders import RowBuilder

pytestmark = pytest.mark.django_db

WRITE_METHODS = ("post", "put", "patch", "delete")


def _routes():
    """(name, path template, viewset, method) for every route and method, format suffixes left out."""
    found = []
    for pattern in sandbox_router.urls:
        regex = pattern.pattern.regex.pattern
        if "(?P<format>" in regex:
            continue
        template = regex.lstrip("^").rstrip("$")
        template = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", template)
        for method in pattern.callback.actions:
            found.append(pytest.param(pattern.name, template, pattern.callback.cls, method,
                                      id=f"{method.upper()} {template}"))
    return found


ROUTES = _routes()
DETAIL_ROUTES = [p for p in ROUTES if "{pk}" in p.values[1]]


def _fill(template, pk=None, person_id=None):
    return template.format(pk=pk, person_id=person_id, entity=IngestionEntity.PERSON)


@pytest.fixture
def sandbox_b(other_sandbox):
    return other_sandbox


@pytest.fixture
def admin_a(make_user, sandbox):
    """The strongest caller of sandbox A: admin of A's organization (every sandbox of it)."""
    return make_user(org_admin_of=sandbox.organization)


@pytest.fixture
def rows_b(sandbox_b):
    return RowBuilder(sandbox_b)


def client_for(user):
    client = APIClient()
    client.force_authenticate(user=user)
    return client


# Actions that validate their body before looking the object up: an empty body would be refused
# for the body (400) and prove nothing, so these get a well-formed one and must then answer 404.
VALID_BODIES = {
    "buying-group-members": {"person_id": 1, "role": "1"},
    "buying-group-set-status": {"status": "complete"},
    "buying-group-stage": {"stage": "1"},
    "journey-edit": {"op": "delete_node", "args": {"node": "n1"}},
    "journey-graph": {"graph": {"start": "n1", "nodes": {}}},
}


def call(client, method, url, name=None):
    if method in WRITE_METHODS:
        return getattr(client, method)(url, VALID_BODIES.get(name, {}), format="json")
    return client.get(url)


def assert_not_found(response, url):
    assert response.status_code == 404, f"{url}: {response.status_code} {response.content[:300]!r}"
    # CSV endpoints answer errors with the same JSON body (their renderer passes it through).
    assert json.loads(response.content)["error"]["code"] == "not_found"


def _b_row(viewset, rows_b):
    return rows_b.build(viewset.queryset.model)


@pytest.mark.parametrize("name,template,viewset,method", ROUTES)
def test_another_sandbox_in_the_url_is_not_found(name, template, viewset, method, admin_a, sandbox_b, rows_b):
    row = _b_row(viewset, rows_b)
    person = rows_b.build(Person)
    url = f"/api/sandboxes/{sandbox_b.pk}/" + _fill(template, pk=row.pk, person_id=person.pk)
    response = call(client_for(admin_a), method, url, name)
    assert_not_found(response, url)
    # Nothing was changed in B by the refused call.
    assert type(row).objects.filter(pk=row.pk).exists()


@pytest.mark.parametrize("name,template,viewset,method", DETAIL_ROUTES)
def test_another_sandboxs_object_through_my_sandbox_is_not_found(
    name, template, viewset, method, admin_a, sandbox, sandbox_b, rows_b
):
    row = _b_row(viewset, rows_b)
    person = rows_b.build(Person)
    url = f"/api/sandboxes/{sandbox.pk}/" + _fill(template, pk=row.pk, person_id=person.pk)
    response = call(client_for(admin_a), method, url, name)
    if response.status_code == 405:
        # The viewset does not offer this method at all: refused before any object is looked up.
        assert json.loads(response.content)["error"]["code"] == "method_not_allowed"
    else:
        assert_not_found(response, url)
    assert type(row).objects.filter(pk=row.pk).exists()


def _retrieve_routes():
    seen = {}
    for p in DETAIL_ROUTES:
        name, template, viewset, method = p.values
        if name.endswith("-detail") and method == "get":
            seen[name] = pytest.param(name, template, viewset, id=name)
    return list(seen.values())


@pytest.mark.parametrize("name,template,viewset", _retrieve_routes())
def test_control_the_owner_reads_the_same_row(name, template, viewset, make_user, sandbox_b, rows_b):
    """Proves the refusals above are about the sandbox, not about ids that do not exist."""
    owner = make_user(org_admin_of=sandbox_b.organization)
    row = _b_row(viewset, rows_b)
    url = f"/api/sandboxes/{sandbox_b.pk}/" + _fill(template, pk=row.pk)
    response = client_for(owner).get(url)
    assert response.status_code == 200, (url, response.status_code, response.content[:300])
    assert response.json()["id"] == row.pk


def _list_routes():
    return [
        pytest.param(*p.values[:3], id=p.values[0])
        for p in ROUTES
        if p.values[0].endswith("-list") and p.values[3] == "get"
    ]


@pytest.mark.parametrize("name,template,viewset", _list_routes())
def test_lists_never_show_another_sandboxs_rows(name, template, viewset, admin_a, sandbox, rows_b):
    row = _b_row(viewset, rows_b)
    url = f"/api/sandboxes/{sandbox.pk}/" + template
    response = client_for(admin_a).get(url)
    assert response.status_code == 200, (url, response.content[:300])
    body = response.json()
    # Some sandboxes start with rows of their own (the default buying-group roles): compare ids.
    own = set(viewset.queryset.model.objects.for_sandbox(sandbox).values_list("pk", flat=True))
    listed = {item.get("id") for item in body["results"]}
    assert row.pk not in listed and listed <= own, (url, body)
    assert body["count"] == len(own), (url, body)


def _related_fields(viewset):
    """Writable related fields of a viewset's create serializer: (field name, related model)."""
    if viewset.__name__ == "StreamViewSet":
        # The streaming endpoint takes raw records (no serializer, no references to rows); its
        # isolation is the sandbox in the URL, walked by the tests above.
        return []
    view = viewset(action="create", format_kwarg=None, request=None, kwargs={})
    view.swagger_fake_view = True  # build the serializer without a request
    serializer = view.get_serializer_class()()
    found = []
    for field_name, field in serializer.fields.items():
        if field.read_only:
            continue
        inner = field.child_relation if isinstance(field, relations.ManyRelatedField) else field
        if isinstance(inner, relations.RelatedField) and inner.queryset is not None:
            found.append((field_name, inner.queryset.model, isinstance(field, relations.ManyRelatedField)))
    return found


def _create_routes():
    return [
        pytest.param(*p.values[:3], id=p.values[0])
        for p in ROUTES
        if p.values[0].endswith("-list") and p.values[3] == "post" and "post" in p.values[2].http_method_names
    ]


@pytest.mark.parametrize("name,template,viewset", _create_routes())
def test_creating_with_references_to_another_sandbox_is_refused(
    name, template, viewset, admin_a, sandbox, sandbox_b, rows_b
):
    fields = _related_fields(viewset)
    url = f"/api/sandboxes/{sandbox.pk}/" + _fill(template)
    model = viewset.queryset.model
    before = model.objects.count()
    for field_name, related_model, many in fields:
        foreign = rows_b.build(related_model)
        if not hasattr(related_model, "sandbox"):
            continue  # organization-level rows (Marketo instances) are checked by the pairing rules
        response = client_for(admin_a).post(url, {field_name: [foreign.pk] if many else foreign.pk}, format="json")
        if response.status_code == 405:
            break  # the router maps POST but the viewset refuses creation altogether
        assert response.status_code == 400, (url, field_name, response.content[:300])
        assert field_name in response.json()["error"].get("fields", {}), (url, field_name, response.json())
    assert model.objects.count() == before


def test_every_sandbox_route_is_walked():
    """Guards the walk itself: the router has sandbox routes, and each names a queryset model."""
    assert len(ROUTES) > 50
    for p in ROUTES:
        assert p.values[2].queryset is not None, p.id


def test_second_sandbox_of_the_same_organization_is_isolated_for_its_marketer(make_user, sandbox):
    """A role in one sandbox does not open its sibling: per-sandbox roles, not per-organization."""
    sibling = SandboxFactory(organization=sandbox.organization, name="dev")
    from cdp.choices import Role

    marketer = make_user(Role.MARKETER, sandbox)
    rows = RowBuilder(sibling)
    person = rows.build(Person)
    client = client_for(marketer)
    assert_not_found(client.get(f"/api/sandboxes/{sibling.pk}/people/{person.pk}/"), "sibling person")
    assert_not_found(client.get(f"/api/sandboxes/{sandbox.pk}/people/{person.pk}/"), "sibling via own")
    assert client.get(f"/api/sandboxes/{sandbox.pk}/people/").json()["count"] == 0


# --- References written as plain ids (IntegerField, ids inside JSON): one case per field ---------


def _b(rows_b, label):
    from django.apps import apps

    return rows_b.build(apps.get_model(label))


REFERENCE_CASES = [
    # (route, body(rows of A, rows of B), names the refusal may use for the field). Two names where
    # the error names the model field or the nested item rather than the request field.
    ("dataflows", lambda a, b: {"name": "df", "destination": _b(b, "connectors.Destination").pk, "audiences": []},
     ("destination",)),
    ("dataflows", lambda a, b: {"name": "df", "destination": _b(a, "connectors.Destination").pk,
                                "audiences": [_b(b, "cdp.Audience").pk]}, ("audiences",)),
    ("destinations", lambda a, b: {"name": "d", "kind": "marketo_static_list", "config": {"list_id": 1},
                                   "marketo_instance": _b(b, "connectors.MarketoInstance").pk}, ("marketo_instance",)),
    ("pairings", lambda a, b: {"kind": "destination", "marketo_instance": _b(b, "connectors.MarketoInstance").pk},
     ("marketo_instance",)),
    ("sources", lambda a, b: {"name": "s", "marketo_instance": _b(b, "connectors.MarketoInstance").pk},
     ("marketo_instance",)),
    ("sources", lambda a, b: {"name": "s", "salesforce_org": _b(b, "connectors.SalesforceOrg").pk}, ("salesforce_org",)),
    # Reported: the refusal names "audience" while the request field is "audience_id".
    ("journeys", lambda a, b: {"name": "j", "audience_id": _b(b, "cdp.Audience").pk,
                               "start_at": "2030-01-01T00:00:00Z", "end_at": "2030-02-01T00:00:00Z"},
     ("audience_id", "audience")),
    ("audiences", lambda a, b: {"name": "a", "kind": "person", "definition": {"subject": "person", "condition": {
        "type": "inSegment", "audience": str(_b(b, "cdp.Audience").pk)}}}, ("definition",)),
    ("solution-interests", lambda a, b: {"name": "si", "roles_template": _b(b, "journeys.RolesTemplate").pk},
     ("roles_template",)),
    ("roles-templates", lambda a, b: {"name": "rt", "roles": [{"role": str(_b(b, "journeys.BuyingGroupRole").pk)}]},
     ("roles", "role")),
]


@pytest.mark.parametrize("route,body,names", REFERENCE_CASES, ids=[f"{c[0]}.{c[2][0]}" for c in REFERENCE_CASES])
def test_ids_of_another_sandbox_in_a_body_are_refused(route, body, names, admin_a, sandbox, rows_b):
    url = f"/api/sandboxes/{sandbox.pk}/{route}/"
    response = client_for(admin_a).post(url, body(RowBuilder(sandbox), rows_b), format="json")
    assert response.status_code == 400, (url, response.status_code, response.content[:400])
    error = response.json()["error"]
    assert set(error.get("fields", {})) & set(names), (names, error)


def test_an_upload_with_another_sandboxs_mapping_is_refused(admin_a, sandbox, rows_b):
    from django.core.files.uploadedfile import SimpleUploadedFile

    mapping = _b(rows_b, "cdp.FieldMapping")
    upload = SimpleUploadedFile("people.csv", b"email\na@example.com\n", content_type="text/csv")
    response = client_for(admin_a).post(
        f"/api/sandboxes/{sandbox.pk}/ingestion-batches/",
        {"file": upload, "entity": "person", "mapping": mapping.pk},
        format="multipart",
    )
    assert response.status_code == 400, response.content[:300]
    assert "mapping" in response.json()["error"]["fields"]


# --- Pages: every address with an id, given ids of another sandbox's (or organization's) rows ----

# POST-only pages (form actions): a GET is answered 405.
POST_ONLY = {
    "/journeys/1/abort/", "/journeys/1/close/", "/journeys/1/delete/", "/journeys/1/duplicate/",
    "/journeys/buying-groups/roles-templates/1/delete/", "/journeys/buying-groups/roles/1/delete/",
    "/journeys/buying-groups/solution-interests/1/delete/", "/journeys/buying-groups/stages-models/1/delete/",
    "/journeys/emails/1/delete/",
}


def _page_paths_with_ids():
    from django.urls import get_resolver

    from tests.security.test_forms_csrf import _concrete_paths

    return sorted(
        {p for p in _concrete_paths(get_resolver().url_patterns)
         if "/1/" in p and not p.startswith(("/api/", "/django-admin/"))}
    )


@pytest.fixture
def page_admin_a(client, make_user, sandbox):
    from tests.factories import PASSWORD

    admin = make_user(org_admin_of=sandbox.organization)
    assert client.login(username=admin.username, password=PASSWORD)
    client.raise_request_exception = False  # collect every wrong answer, crashes included
    return client


def _wrong_answers(client, paths, ids):
    wrong = []
    for path in paths:
        for pk in ids:
            url = path.replace("/1/", f"/{pk}/", 1)
            status = client.get(url).status_code
            if status not in (404, 405):
                wrong.append(f"{url} {status}")
    return wrong


def test_pages_refuse_ids_of_another_sandboxs_rows(page_admin_a, sandbox_b, rows_b):
    """Every page address that takes the id of a sandbox's row (sandbox pages: not /settings/),
    with the id of each of B's rows (one row of every sandbox-scoped model), as the admin of A's
    organization: never a page, never a crash."""
    from django.apps import apps

    from cdp.models import SandboxScopedModel

    for model in apps.get_models():
        if issubclass(model, SandboxScopedModel):
            rows_b.build(model)
    ids = sorted({row.pk for row in rows_b.rows.values()})
    paths = [p for p in _page_paths_with_ids() if not p.startswith("/settings/") and p not in POST_ONLY]
    assert len(paths) > 20
    wrong = _wrong_answers(page_admin_a, paths, ids)
    assert not wrong, "\n".join(wrong)


def test_settings_pages_refuse_another_organizations_ids(page_admin_a, make_user, sandbox_b):
    """The organization-level pages (/settings/…) with the ids of B's organization, sandbox,
    membership and API token: the same refusal."""
    from cdp.models import Membership

    from cdp.services import issue_api_token

    admin_b = make_user(org_admin_of=sandbox_b.organization)
    token_b, _ = issue_api_token(user=admin_b, name="b", created_by=admin_b)
    ids_of = {
        "/settings/tokens/": [token_b.pk],
        "/settings/organizations/": [sandbox_b.organization.pk],
        "/settings/sandboxes/": [sandbox_b.pk],
        "/settings/members/": list(Membership.objects.filter(organization=sandbox_b.organization).values_list("pk", flat=True)),
    }
    paths = [p for p in _page_paths_with_ids() if p.startswith("/settings/")]
    assert paths and all(p.startswith(tuple(ids_of)) for p in paths), paths
    wrong = []
    for prefix, ids in ids_of.items():
        wrong += _wrong_answers(page_admin_a, [p for p in paths if p.startswith(prefix)], ids)
    assert not wrong, "\n".join(wrong)


def test_post_only_journey_pages_answer_get_with_405(page_admin_a):
    assert not _wrong_answers(page_admin_a, sorted(POST_ONLY), [1])
