"""Pages: Instances & pairings (/connectors/instances/) and Sources (/connectors/sources/)."""

from html import escape

import pytest
from django.urls import reverse

from cdp.choices import Role
from connectors.choices import PairingKind
from connectors.models import MarketoInstance, Pairing, SalesforceOrg
from connectors.services import create_pairing
from tests.connectors.factories import SECRET, MarketoInstanceFactory, SalesforceOrgFactory, same_instance_in
from tests.factories import SandboxFactory

INSTANCES = reverse("connectors:instances")
SOURCES = reverse("connectors:sources")
PAIR = reverse("connectors:pairing-create")


def marketo_form(**overrides):
    return {
        "name": "Marketo EMEA",
        "munchkin_id": "123-abc-456",
        "client_id": "launchpoint-client",
        "client_secret": "typed-Secret-3391",
        "rest_base_url": "",
        "identity_base_url": "",
        **overrides,
    }


# --- Instances ----------------------------------------------------------------------------------


def test_the_page_lists_the_organizations_instances_only(login, viewer, organization, other_sandbox):
    MarketoInstanceFactory(organization=organization, name="Our Marketo", munchkin_id="111-OUR-111")
    SalesforceOrgFactory(organization=organization, name="Our Salesforce")
    MarketoInstanceFactory(organization=other_sandbox.organization, name="Their Marketo", munchkin_id="999-THR-999")
    html = login(viewer).get(INSTANCES).content.decode()
    assert "Our Marketo" in html and "111-OUR-111" in html and "Our Salesforce" in html
    assert "Their Marketo" not in html and "999-THR-999" not in html


def test_org_admin_registers_a_marketo_instance_and_the_secret_is_never_shown(login, admin_user, organization):
    client = login(admin_user)
    response = client.post(reverse("connectors:marketo-create"), marketo_form())
    assert response.status_code == 302
    instance = MarketoInstance.objects.get(organization=organization)
    assert instance.munchkin_id == "123-ABC-456" and instance.client_secret == "typed-Secret-3391"
    assert instance.rest_base_url == "https://123-ABC-456.mktorest.com/rest"

    for url in (INSTANCES, reverse("connectors:marketo-edit", args=[instance.pk])):
        html = client.get(url).content.decode()
        assert "typed-Secret-3391" not in html


def test_editing_with_a_blank_secret_keeps_the_stored_one(login, admin_user, organization):
    instance = MarketoInstanceFactory(organization=organization)
    url = reverse("connectors:marketo-edit", args=[instance.pk])
    client = login(admin_user)
    assert SECRET not in client.get(url).content.decode()
    data = marketo_form(munchkin_id=instance.munchkin_id, name="Renamed", client_secret="")
    assert client.post(url, data).status_code == 302
    instance.refresh_from_db()
    assert (instance.name, instance.client_secret) == ("Renamed", SECRET)


def test_a_bad_munchkin_id_is_shown_on_the_form(login, admin_user):
    response = login(admin_user).post(reverse("connectors:marketo-create"), marketo_form(munchkin_id="12345"))
    assert response.status_code == 200
    assert "A Munchkin ID looks like 123-ABC-456" in response.content.decode()
    assert not MarketoInstance.objects.exists()


def test_a_duplicate_munchkin_id_is_shown_on_the_form(login, admin_user, organization):
    MarketoInstanceFactory(organization=organization, munchkin_id="123-ABC-456")
    response = login(admin_user).post(reverse("connectors:marketo-create"), marketo_form())
    assert "already has a Marketo instance with Munchkin ID 123-ABC-456" in response.content.decode()
    assert MarketoInstance.objects.count() == 1


def test_org_admin_registers_a_salesforce_org_and_secrets_are_never_shown(login, admin_user, organization):
    client = login(admin_user)
    data = {
        "name": "Salesforce prod",
        "instance_url": "https://acme.my.salesforce.com",
        "org_id": "",
        "auth_flow": "jwt_bearer",
        "client_id": "3MVG9",
        "client_secret": "",
        "username": "integration@acme.example",
        "private_key": "-----BEGIN PRIVATE KEY-----\nPAGEKEYMATERIAL\n-----END PRIVATE KEY-----",
    }
    assert client.post(reverse("connectors:salesforce-create"), data).status_code == 302
    sf = SalesforceOrg.objects.get(organization=organization)
    assert "PAGEKEYMATERIAL" in sf.private_key
    for url in (INSTANCES, reverse("connectors:salesforce-edit", args=[sf.pk])):
        assert "PAGEKEYMATERIAL" not in client.get(url).content.decode()


def test_salesforce_form_explains_what_the_flow_needs(login, admin_user):
    data = {"name": "SF", "instance_url": "https://a.my.salesforce.com", "auth_flow": "jwt_bearer", "client_id": "c"}
    html = login(admin_user).post(reverse("connectors:salesforce-create"), data).content.decode()
    assert "needs the username" in html and "needs the private key" in html
    assert not SalesforceOrg.objects.exists()


def test_a_rejected_form_does_not_echo_the_secrets_typed_into_it(login, admin_user):
    data = {"name": "SF", "instance_url": "http://not-https.example", "auth_flow": "jwt_bearer", "client_id": "c",
            "client_secret": "TYPEDSECRET", "username": "u", "private_key": "TYPEDKEYMATERIAL"}
    html = login(admin_user).post(reverse("connectors:salesforce-create"), data).content.decode()
    assert "Enter an https:// URL." in html or "Enter a valid URL." in html
    assert "TYPEDSECRET" not in html and "TYPEDKEYMATERIAL" not in html


def test_the_django_admin_never_shows_secrets(client, organization, django_user_model):
    superuser = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123")
    client.force_login(superuser)
    instance = MarketoInstanceFactory(organization=organization)
    sf = SalesforceOrgFactory(organization=organization, private_key="ADMINKEYMATERIAL")
    for url in (
        reverse("admin:connectors_marketoinstance_change", args=[instance.pk]),
        reverse("admin:connectors_salesforceorg_change", args=[sf.pk]),
        reverse("admin:connectors_marketoinstance_changelist"),
    ):
        response = client.get(url)
        assert response.status_code == 200
        html = response.content.decode()
        assert SECRET not in html and "ADMINKEYMATERIAL" not in html and sf.client_secret not in html


@pytest.mark.parametrize("role", [Role.VIEWER, Role.MARKETER, Role.ADMIN])
def test_only_organization_admins_manage_instances(login, make_user, sandbox, organization, role):
    user = make_user(role, sandbox)
    instance = MarketoInstanceFactory(organization=organization)
    client = login(user)
    html = client.get(INSTANCES).content.decode()
    assert "Add Marketo instance" not in html
    assert client.get(reverse("connectors:marketo-create")).status_code == 403
    assert client.post(reverse("connectors:marketo-create"), marketo_form()).status_code == 403
    assert client.post(reverse("connectors:marketo-delete", args=[instance.pk])).status_code == 403
    assert MarketoInstance.objects.count() == 1


def test_another_organizations_instance_is_404(login, admin_user, other_sandbox):
    theirs = MarketoInstanceFactory(organization=other_sandbox.organization)
    client = login(admin_user)
    assert client.get(reverse("connectors:marketo-edit", args=[theirs.pk])).status_code == 404
    assert client.post(reverse("connectors:marketo-delete", args=[theirs.pk])).status_code == 404
    assert MarketoInstance.objects.filter(pk=theirs.pk).exists()


def test_deleting_a_paired_instance_shows_the_rule(login, admin_user, organization, sandbox):
    instance = MarketoInstanceFactory(organization=organization)
    create_pairing(sandbox=sandbox, kind=PairingKind.SOURCE, marketo_instance=instance)
    response = login(admin_user).post(reverse("connectors:marketo-delete", args=[instance.pk]), follow=True)
    assert escape("a paired instance can't be deleted; unpair it first") in response.content.decode()
    assert MarketoInstance.objects.filter(pk=instance.pk).exists()


# --- Pairings -----------------------------------------------------------------------------------


def test_admin_pairs_and_unpairs_from_the_page(login, admin_user, organization, sandbox):
    instance = MarketoInstanceFactory(organization=organization, name="Marketo NA")
    client = login(admin_user)
    response = client.post(PAIR, {"kind": "source", "instance": f"marketo:{instance.pk}"}, follow=True)
    pairing = Pairing.objects.get()
    assert (pairing.sandbox, pairing.kind, pairing.marketo_instance, pairing.created_by) == (
        sandbox, "source", instance, admin_user
    )
    assert "Paired Marketo NA" in response.content.decode()

    client.post(reverse("connectors:pairing-delete", args=[pairing.pk]))
    assert not Pairing.objects.exists()


def test_a_refused_pairing_shows_the_rules_message_on_the_form(login, admin_user, organization, sandbox, other_sandbox):
    theirs = MarketoInstanceFactory(organization=other_sandbox.organization)
    create_pairing(sandbox=other_sandbox, kind=PairingKind.SOURCE, marketo_instance=theirs)
    mine = same_instance_in(organization, theirs)

    response = login(admin_user).post(PAIR, {"kind": "source", "instance": f"marketo:{mine.pk}"})

    assert response.status_code == 200
    html = response.content.decode()
    expected = (
        f"Marketo instance {mine.munchkin_id} is already a source for another organization. Pairing rule: "
        "a Marketo instance is a source for one organization only (several of its sandboxes may share it)."
    )
    assert escape(expected) in html
    assert 'class="form-errors"' in html
    assert other_sandbox.organization.name not in html
    assert not Pairing.objects.filter(sandbox=sandbox).exists()


def test_the_page_and_the_api_refuse_with_the_same_message(login, api_as, admin_user, organization, sandbox):
    x, y = MarketoInstanceFactory(organization=organization), MarketoInstanceFactory(organization=organization)
    create_pairing(sandbox=sandbox, kind=PairingKind.JOURNEY_SUBSCRIPTION, marketo_instance=x)
    api = api_as(admin_user).post(
        f"/api/sandboxes/{sandbox.pk}/pairings/", {"kind": "journey_subscription", "marketo_instance": y.pk}, format="json"
    )
    page = login(admin_user).post(PAIR, {"kind": "journey_subscription", "instance": f"marketo:{y.pk}"})
    assert api.json()["error"]["rule"] == "journey_subscription_one_per_sandbox"
    assert escape(api.json()["error"]["message"]) in page.content.decode()


def test_the_pair_form_offers_only_the_organizations_instances(login, admin_user, organization, other_sandbox):
    mine = MarketoInstanceFactory(organization=organization)
    theirs = MarketoInstanceFactory(organization=other_sandbox.organization)
    client = login(admin_user)
    html = client.get(INSTANCES).content.decode()
    assert f'value="marketo:{mine.pk}"' in html and f'value="marketo:{theirs.pk}"' not in html
    response = client.post(PAIR, {"kind": "destination", "instance": f"marketo:{theirs.pk}"})
    assert "Select a valid choice" in response.content.decode()
    assert not Pairing.objects.exists()


@pytest.mark.parametrize("role", [Role.VIEWER, Role.MARKETER])
def test_viewers_and_marketers_see_pairings_but_cannot_pair(login, make_user, organization, sandbox, role):
    instance = MarketoInstanceFactory(organization=organization, name="Marketo NA")
    existing = create_pairing(sandbox=sandbox, kind=PairingKind.DESTINATION, marketo_instance=instance)
    client = login(make_user(role, sandbox))
    html = client.get(INSTANCES).content.decode()
    assert "Marketo NA" in html and 'id="pair-form"' not in html and "Unpair" not in html
    assert client.post(PAIR, {"kind": "source", "instance": f"marketo:{instance.pk}"}).status_code == 403
    assert client.post(reverse("connectors:pairing-delete", args=[existing.pk])).status_code == 403
    assert Pairing.objects.count() == 1


def test_pairings_of_another_sandbox_are_404(login, admin_user, organization, sandbox, other_sandbox):
    dev = SandboxFactory(organization=organization, name="dev")
    instance = MarketoInstanceFactory(organization=organization)
    devs = create_pairing(sandbox=dev, kind=PairingKind.SOURCE, marketo_instance=instance)
    theirs = create_pairing(
        sandbox=other_sandbox,
        kind=PairingKind.SOURCE,
        marketo_instance=MarketoInstanceFactory(organization=other_sandbox.organization),
    )
    client = login(admin_user)  # current sandbox: the first accessible one, "dev" or "prod"
    client.post(reverse("cdp:switch-sandbox"), {"sandbox": sandbox.pk})
    assert client.post(reverse("connectors:pairing-delete", args=[devs.pk])).status_code == 404
    assert client.post(reverse("connectors:pairing-delete", args=[theirs.pk])).status_code == 404
    assert Pairing.objects.count() == 2


def test_paired_with_names_only_sandboxes_the_reader_can_see(login, make_user, organization, sandbox):
    hidden = SandboxFactory(organization=organization, name="secret-lab", title="Secret Lab")
    instance = MarketoInstanceFactory(organization=organization)
    create_pairing(sandbox=hidden, kind=PairingKind.SOURCE, marketo_instance=instance)
    html = login(make_user(Role.VIEWER, sandbox)).get(INSTANCES).content.decode()
    assert "Secret Lab" not in html


# --- Sources ------------------------------------------------------------------------------------


def test_sources_lists_the_sandboxs_source_pairings(login, viewer, organization, sandbox):
    source = MarketoInstanceFactory(organization=organization, name="Marketo Source")
    destination = MarketoInstanceFactory(organization=organization, name="Marketo Destination")
    crm = SalesforceOrgFactory(organization=organization, name="CRM Source")
    create_pairing(sandbox=sandbox, kind=PairingKind.SOURCE, marketo_instance=source)
    create_pairing(sandbox=sandbox, kind=PairingKind.SOURCE, salesforce_org=crm)
    create_pairing(sandbox=sandbox, kind=PairingKind.DESTINATION, marketo_instance=destination)
    html = login(viewer).get(SOURCES).content.decode()
    assert "Marketo Source" in html and source.munchkin_id in html and "CRM Source" in html
    assert "Marketo Destination" not in html


def test_sources_has_an_empty_state(login, viewer):
    response = login(viewer).get(SOURCES)
    assert response.status_code == 200
    assert "No source is paired with this sandbox yet." in response.content.decode()
