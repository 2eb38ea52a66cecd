"""REST API: /api/marketo-instances/, /api/salesforce-orgs/, /api/sandboxes/{id}/pairings/."""

import json

import pytest

from cdp.choices import Role
from connectors.choices import PairingKind
from connectors.models import MarketoInstance, Pairing, SalesforceOrg
from connectors.services import create_pairing
from tests.connectors.factories import SECRET, MarketoInstanceFactory, SalesforceOrgFactory, same_instance_in
from tests.factories import SandboxFactory, make_org_admin

MARKETO = "/api/marketo-instances/"
SALESFORCE = "/api/salesforce-orgs/"


def pairings_url(sandbox, pk=None):
    return f"/api/sandboxes/{sandbox.pk}/pairings/" + (f"{pk}/" if pk else "")


def results(response):
    assert response.status_code == 200, response.content
    return response.json()["results"]


def marketo_payload(organization, **overrides):
    return {
        "organization": organization.pk,
        "name": "Marketo EMEA",
        "munchkin_id": "123-abc-456",
        "client_id": "launchpoint-client",
        "client_secret": "brand-new-Secret-8842",
        **overrides,
    }


# --- Marketo instances -------------------------------------------------------------------------


def test_org_admin_registers_a_marketo_instance(api_as, admin_user, organization):
    response = api_as(admin_user).post(MARKETO, marketo_payload(organization), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["munchkin_id"] == "123-ABC-456"
    assert body["rest_base_url"] == "https://123-ABC-456.mktorest.com/rest"
    assert body["identity_base_url"] == "https://123-ABC-456.mktorest.com/identity"
    assert "client_secret" not in body
    assert MarketoInstance.objects.get(pk=body["id"]).client_secret == "brand-new-Secret-8842"


def test_the_client_secret_never_comes_back_from_the_api(api_as, admin_user, organization):
    client = api_as(admin_user)
    created = client.post(MARKETO, marketo_payload(organization), format="json").json()
    responses = [
        client.get(MARKETO),
        client.get(f"{MARKETO}{created['id']}/"),
        client.patch(f"{MARKETO}{created['id']}/", {"name": "Renamed"}, format="json"),
        client.patch(f"{MARKETO}{created['id']}/", {"client_secret": "another-Secret-1177"}, format="json"),
    ]
    for response in responses:
        assert response.status_code == 200
        text = response.content.decode()
        assert "brand-new-Secret-8842" not in text and "another-Secret-1177" not in text
        assert "client_secret" not in text


def test_editing_without_a_secret_keeps_it_and_a_new_one_replaces_it(api_as, admin_user, organization):
    instance = MarketoInstanceFactory(organization=organization)
    client = api_as(admin_user)
    assert client.patch(f"{MARKETO}{instance.pk}/", {"name": "Renamed"}, format="json").status_code == 200
    instance.refresh_from_db()
    assert (instance.name, instance.client_secret) == ("Renamed", SECRET)
    client.patch(f"{MARKETO}{instance.pk}/", {"client_secret": "rotated-Secret-5521"}, format="json")
    instance.refresh_from_db()
    assert instance.client_secret == "rotated-Secret-5521"


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"munchkin_id": "not-a-munchkin"}, "munchkin_id"),
        ({"rest_base_url": "http://123-ABC-456.mktorest.com/rest"}, "rest_base_url"),
        ({"client_secret": ""}, "client_secret"),
    ],
)
def test_bad_input_says_which_field_is_wrong(api_as, admin_user, organization, overrides, field):
    response = api_as(admin_user).post(MARKETO, marketo_payload(organization, **overrides), format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error" and field in error["fields"]


def test_a_munchkin_id_is_registered_once_per_organization(api_as, admin_user, organization):
    MarketoInstanceFactory(organization=organization, munchkin_id="123-ABC-456")
    response = api_as(admin_user).post(MARKETO, marketo_payload(organization), format="json")
    assert response.status_code == 400
    assert "already has a Marketo instance" in response.json()["error"]["fields"]["munchkin_id"][0]


@pytest.mark.parametrize("role", [Role.VIEWER, Role.MARKETER, Role.ADMIN])
def test_only_organization_admins_register_instances(api_as, make_user, sandbox, organization, role):
    # Even a sandbox-level admin: instances belong to the organization.
    user = make_user(role, sandbox)
    response = api_as(user).post(MARKETO, marketo_payload(organization), format="json")
    assert response.status_code == 403
    assert not MarketoInstance.objects.exists()


def test_members_read_but_cannot_change_or_delete_instances(api_as, marketer, organization):
    instance = MarketoInstanceFactory(organization=organization)
    client = api_as(marketer)
    assert [i["id"] for i in results(client.get(MARKETO))] == [instance.pk]
    assert client.patch(f"{MARKETO}{instance.pk}/", {"name": "x"}, format="json").status_code == 403
    assert client.delete(f"{MARKETO}{instance.pk}/").status_code == 403


def test_an_admin_of_one_organization_cannot_manage_another_organizations_instances(
    api_as, make_user, organization, other_sandbox
):
    other_org = other_sandbox.organization
    theirs = MarketoInstanceFactory(organization=other_org)
    admin = make_user(org_admin_of=organization)
    client = api_as(admin)
    assert results(client.get(MARKETO)) == []
    assert client.get(f"{MARKETO}{theirs.pk}/").status_code == 404
    assert client.patch(f"{MARKETO}{theirs.pk}/", {"name": "x"}, format="json").status_code == 404
    assert client.delete(f"{MARKETO}{theirs.pk}/").status_code == 404
    response = client.post(MARKETO, marketo_payload(other_org), format="json")
    assert response.status_code == 400 and "organization" in response.json()["error"]["fields"]
    assert other_org.name not in response.content.decode()


def test_instances_filter_by_organization(api_as, make_user, organization, other_sandbox):
    other_org = other_sandbox.organization
    user = make_user(org_admin_of=organization)
    make_org_admin(user, other_org)
    mine, theirs = MarketoInstanceFactory(organization=organization), MarketoInstanceFactory(organization=other_org)
    client = api_as(user)
    assert {i["id"] for i in results(client.get(MARKETO))} == {mine.pk, theirs.pk}
    assert [i["id"] for i in results(client.get(MARKETO, {"organization": other_org.pk}))] == [theirs.pk]


def test_deleting_a_paired_instance_is_refused_naming_the_rule(api_as, admin_user, organization, sandbox):
    instance = MarketoInstanceFactory(organization=organization)
    create_pairing(sandbox=sandbox, kind=PairingKind.SOURCE, marketo_instance=instance)
    response = api_as(admin_user).delete(f"{MARKETO}{instance.pk}/")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "rule_violation"
    assert response.json()["error"]["rule"] == "instance_in_use"


def test_the_munchkin_id_of_a_paired_instance_cannot_change(api_as, admin_user, organization, sandbox):
    instance = MarketoInstanceFactory(organization=organization)
    create_pairing(sandbox=sandbox, kind=PairingKind.SOURCE, marketo_instance=instance)
    response = api_as(admin_user).patch(f"{MARKETO}{instance.pk}/", {"munchkin_id": "999-ZZZ-999"}, format="json")
    assert response.status_code == 400
    assert "munchkin_id" in response.json()["error"]["fields"]


# --- Salesforce orgs ---------------------------------------------------------------------------


def test_org_admin_registers_a_salesforce_org_and_its_secrets_stay_hidden(api_as, admin_user, organization):
    client = api_as(admin_user)
    payload = {
        "organization": organization.pk,
        "name": "Salesforce production",
        "instance_url": "https://acme.my.salesforce.com/",
        "org_id": "00D5g000004ABCDEAA",
        "auth_flow": "jwt_bearer",
        "client_id": "3MVG9-consumer",
        "username": "integration@acme.example",
        "private_key": "-----BEGIN PRIVATE KEY-----\nSECRETKEYMATERIAL\n-----END PRIVATE KEY-----",
    }
    response = client.post(SALESFORCE, payload, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["instance_url"] == "https://acme.my.salesforce.com"
    assert "private_key" not in body and "client_secret" not in body
    assert "SECRETKEYMATERIAL" not in client.get(SALESFORCE).content.decode()
    assert SalesforceOrg.objects.get(pk=body["id"]).private_key == payload["private_key"]


def test_salesforce_client_credentials_without_a_secret_is_refused(api_as, admin_user, organization):
    payload = {
        "organization": organization.pk,
        "name": "SF",
        "instance_url": "https://acme.my.salesforce.com",
        "client_id": "3MVG9",
    }
    response = api_as(admin_user).post(SALESFORCE, payload, format="json")
    assert response.status_code == 400
    assert "client_secret" in response.json()["error"]["fields"]


def test_salesforce_edit_with_an_empty_secret_keeps_the_stored_one(api_as, admin_user, organization):
    sf = SalesforceOrgFactory(organization=organization)
    response = api_as(admin_user).patch(f"{SALESFORCE}{sf.pk}/", {"client_secret": "", "name": "SF 2"}, format="json")
    assert response.status_code == 200, response.content
    sf.refresh_from_db()
    assert (sf.name, sf.client_secret) == ("SF 2", "sfdc-secret-Lm3kP8tY")


def test_viewers_cannot_register_salesforce_orgs(api_as, viewer, organization):
    payload = {"organization": organization.pk, "name": "SF", "instance_url": "https://a.my.salesforce.com",
               "client_id": "c", "client_secret": "s"}
    assert api_as(viewer).post(SALESFORCE, payload, format="json").status_code == 403


# --- Pairings ----------------------------------------------------------------------------------


def test_sandbox_admin_pairs_and_unpairs(api_as, admin_user, organization, sandbox):
    instance = MarketoInstanceFactory(organization=organization)
    client = api_as(admin_user)
    response = client.post(pairings_url(sandbox), {"kind": "source", "marketo_instance": instance.pk}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["sandbox"] == sandbox.pk and body["kind"] == "source"
    assert body["munchkin_id"] == instance.munchkin_id and body["created_by"] == admin_user.username

    assert client.delete(pairings_url(sandbox, body["id"])).status_code == 204
    assert not Pairing.objects.exists()


def test_a_sandbox_admin_who_is_not_an_organization_admin_may_pair(api_as, make_user, organization, sandbox):
    instance = MarketoInstanceFactory(organization=organization)
    sandbox_admin = make_user(Role.ADMIN, sandbox)
    response = api_as(sandbox_admin).post(
        pairings_url(sandbox), {"kind": "destination", "marketo_instance": instance.pk}, format="json"
    )
    assert response.status_code == 201


@pytest.mark.parametrize("role", [Role.VIEWER, Role.MARKETER])
def test_viewers_and_marketers_read_pairings_but_cannot_change_them(api_as, make_user, organization, sandbox, role):
    instance = MarketoInstanceFactory(organization=organization)
    existing = create_pairing(sandbox=sandbox, kind=PairingKind.SOURCE, marketo_instance=instance)
    client = api_as(make_user(role, sandbox))
    assert [p["id"] for p in results(client.get(pairings_url(sandbox)))] == [existing.pk]
    response = client.post(pairings_url(sandbox), {"kind": "destination", "marketo_instance": instance.pk}, format="json")
    assert response.status_code == 403
    assert client.delete(pairings_url(sandbox, existing.pk)).status_code == 403
    assert Pairing.objects.count() == 1


def test_a_refused_pairing_answers_400_with_the_rule(api_as, admin_user, organization, sandbox, other_sandbox):
    theirs = MarketoInstanceFactory(organization=other_sandbox.organization)
    create_pairing(sandbox=other_sandbox, kind=PairingKind.SOURCE, marketo_instance=theirs)
    mine = same_instance_in(organization, theirs)

    response = api_as(admin_user).post(pairings_url(sandbox), {"kind": "source", "marketo_instance": mine.pk}, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "rule_violation"
    assert error["rule"] == "marketo_source_one_organization"
    assert "one organization only" in error["message"]
    assert other_sandbox.organization.name not in response.content.decode()


def test_a_second_journey_subscription_answers_400_with_the_rule(api_as, admin_user, organization, sandbox):
    x, y = MarketoInstanceFactory(organization=organization), MarketoInstanceFactory(organization=organization)
    client = api_as(admin_user)
    first = client.post(pairings_url(sandbox), {"kind": "journey_subscription", "marketo_instance": x.pk}, format="json")
    assert first.status_code == 201
    second = client.post(pairings_url(sandbox), {"kind": "journey_subscription", "marketo_instance": y.pk}, format="json")
    assert second.status_code == 400
    assert second.json()["error"]["rule"] == "journey_subscription_one_per_sandbox"


def test_a_duplicate_pairing_answers_400_with_the_rule(api_as, admin_user, organization, sandbox):
    sf = SalesforceOrgFactory(organization=organization)
    client = api_as(admin_user)
    assert client.post(pairings_url(sandbox), {"kind": "source", "salesforce_org": sf.pk}, format="json").status_code == 201
    response = client.post(pairings_url(sandbox), {"kind": "source", "salesforce_org": sf.pk}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["rule"] == "pairing_duplicate"


def test_a_pairing_needs_exactly_one_instance(api_as, admin_user, organization, sandbox):
    x, sf = MarketoInstanceFactory(organization=organization), SalesforceOrgFactory(organization=organization)
    client = api_as(admin_user)
    for payload in ({"kind": "source"}, {"kind": "source", "marketo_instance": x.pk, "salesforce_org": sf.pk}):
        response = client.post(pairings_url(sandbox), payload, format="json")
        assert response.status_code == 400
        assert response.json()["error"]["rule"] == "pairing_one_instance"


def test_another_organizations_instance_reads_as_unknown(api_as, admin_user, sandbox, other_sandbox):
    theirs = MarketoInstanceFactory(organization=other_sandbox.organization)
    response = api_as(admin_user).post(
        pairings_url(sandbox), {"kind": "destination", "marketo_instance": theirs.pk}, format="json"
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error" and "marketo_instance" in error["fields"]
    assert not Pairing.objects.exists()


def test_a_member_of_two_organizations_cannot_cross_pair_them(api_as, admin_user, sandbox, other_sandbox):
    make_org_admin(admin_user, other_sandbox.organization)
    theirs = SalesforceOrgFactory(organization=other_sandbox.organization)
    response = api_as(admin_user).post(pairings_url(sandbox), {"kind": "source", "salesforce_org": theirs.pk}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["rule"] == "instance_same_organization"


def test_pairings_of_a_sandbox_without_a_role_are_404(api_as, marketer, sandbox, other_sandbox):
    theirs = MarketoInstanceFactory(organization=other_sandbox.organization)
    foreign = create_pairing(sandbox=other_sandbox, kind=PairingKind.SOURCE, marketo_instance=theirs)
    client = api_as(marketer)
    assert client.get(pairings_url(other_sandbox)).status_code == 404
    assert client.get(pairings_url(other_sandbox, foreign.pk)).status_code == 404
    # Nor through a sandbox the user does have a role in.
    assert client.get(pairings_url(sandbox, foreign.pk)).status_code == 404


def test_pairings_of_a_sibling_sandbox_are_not_listed_nor_deletable_from_here(api_as, admin_user, organization, sandbox):
    dev = SandboxFactory(organization=organization, name="dev")
    instance = MarketoInstanceFactory(organization=organization)
    devs = create_pairing(sandbox=dev, kind=PairingKind.SOURCE, marketo_instance=instance)
    client = api_as(admin_user)
    assert results(client.get(pairings_url(sandbox))) == []
    assert client.delete(pairings_url(sandbox, devs.pk)).status_code == 404
    assert Pairing.objects.filter(pk=devs.pk).exists()


def test_pairings_filter_by_kind(api_as, viewer, organization, sandbox):
    x = MarketoInstanceFactory(organization=organization)
    source = create_pairing(sandbox=sandbox, kind=PairingKind.SOURCE, marketo_instance=x)
    create_pairing(sandbox=sandbox, kind=PairingKind.DESTINATION, marketo_instance=x)
    rows = results(api_as(viewer).get(pairings_url(sandbox), {"kind": "source"}))
    assert [p["id"] for p in rows] == [source.pk]


def test_pairings_cannot_be_edited(api_as, admin_user, organization, sandbox):
    x = MarketoInstanceFactory(organization=organization)
    pairing = create_pairing(sandbox=sandbox, kind=PairingKind.SOURCE, marketo_instance=x)
    response = api_as(admin_user).patch(pairings_url(sandbox, pairing.pk), json.dumps({"kind": "destination"}),
                                        content_type="application/json")
    assert response.status_code == 405


def test_the_schema_documents_the_connectors_endpoints(api_as, admin_user):
    response = api_as(admin_user).get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    paths = json.loads(response.content)["paths"]
    assert {MARKETO, SALESFORCE, "/api/sandboxes/{sandbox_id}/pairings/"} <= set(paths)
    create_request = json.loads(response.content)["components"]["schemas"]["MarketoInstance"]["properties"]
    assert "client_secret" not in create_request  # the response shape never holds the secret
