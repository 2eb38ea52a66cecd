"""No stored secret (Marketo client secret, Salesforce secret and private key, webhook signing
secret, API token keys, Marketo access tokens) is ever rendered back: not by any page, not by any
API answer, not in a re-rendered form, not in the log."""

import logging

import pytest
from django.urls import reverse

from cdp.services import issue_api_token
from connectors.marketo import MarketoClient
from connectors.models import Destination
from tests.connectors.factories import MarketoInstanceFactory, SalesforceOrgFactory
from tests.factories import PASSWORD
from tests.security.test_forms_csrf import PAGE_PATHS

pytestmark = pytest.mark.django_db

MARKETO_SECRET = "mkto-secret-NEVER-SHOWN-7c1f"
SALESFORCE_SECRET = "sfdc-secret-NEVER-SHOWN-91ab"
PRIVATE_KEY = "-----BEGIN PRIVATE KEY-----NEVER-SHOWN-e3d0-----END PRIVATE KEY-----"
WEBHOOK_SECRET = "whsec-NEVER-SHOWN-5b2e"
SECRETS = (MARKETO_SECRET, SALESFORCE_SECRET, PRIVATE_KEY, WEBHOOK_SECRET)


@pytest.fixture
def world(sandbox, make_user):
    admin = make_user(org_admin_of=sandbox.organization)
    marketo = MarketoInstanceFactory(organization=sandbox.organization, client_secret=MARKETO_SECRET)
    salesforce = SalesforceOrgFactory(
        organization=sandbox.organization, client_secret=SALESFORCE_SECRET, private_key=PRIVATE_KEY
    )
    webhook = Destination.objects.create(
        sandbox=sandbox, name="Hook", kind="webhook", config={"url": "https://hooks.example.com/q"}, secret=WEBHOOK_SECRET
    )
    _, token_key = issue_api_token(user=admin, name="ci", created_by=admin)
    return {"admin": admin, "marketo": marketo, "salesforce": salesforce, "webhook": webhook, "token": token_key}


def assert_no_secret(content: bytes, where: str, extra=()):
    text = content.decode(errors="replace")
    for secret in (*SECRETS, *extra):
        assert secret not in text, f"{where} shows a secret"


def test_no_page_shows_a_secret(client, world, caplog):
    caplog.set_level(logging.DEBUG)
    assert client.login(username=world["admin"].username, password=PASSWORD)
    pages = [p for p in PAGE_PATHS if "/x/" not in p and "/1/" not in p and p not in ("/logout/",)]
    pages += [
        reverse("connectors:marketo-edit", args=[world["marketo"].pk]),
        reverse("connectors:salesforce-edit", args=[world["salesforce"].pk]),
        reverse("connectors:instances"),
        reverse("connectors:destinations"),
    ]
    shown = 0
    for path in pages:
        response = client.get(path)
        if response.status_code == 200 and not response.streaming:
            shown += 1
            assert_no_secret(response.content, path, extra=[world["token"]])
    assert shown > 20
    assert_no_secret(caplog.text.encode(), "the log", extra=[world["token"]])


def test_an_edit_form_refused_for_another_field_does_not_echo_the_secret(client, world):
    assert client.login(username=world["admin"].username, password=PASSWORD)
    url = reverse("connectors:marketo-edit", args=[world["marketo"].pk])
    new_secret = "typed-in-NEVER-SHOWN-0042"
    response = client.post(url, {"name": "", "client_secret": new_secret, "munchkin_id": "bad"})
    assert response.status_code in (200, 400)
    assert_no_secret(response.content, "the re-rendered form", extra=[new_secret])


def test_no_api_answer_shows_a_secret(api_client, world, sandbox):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {world['token']}")
    urls = [
        "/api/marketo-instances/", f"/api/marketo-instances/{world['marketo'].pk}/",
        "/api/salesforce-orgs/", f"/api/salesforce-orgs/{world['salesforce'].pk}/",
        f"/api/sandboxes/{sandbox.pk}/destinations/", f"/api/sandboxes/{sandbox.pk}/destinations/{world['webhook'].pk}/",
        "/api/tokens/", "/api/me/", "/api/organizations/", "/api/sandboxes/", "/api/schema/?format=json",
    ]
    for url in urls:
        response = api_client.get(url)
        assert response.status_code == 200, url
        assert_no_secret(response.content, url, extra=[world["token"]])
    # Writing a secret answers without it.
    changed = api_client.patch(
        f"/api/marketo-instances/{world['marketo'].pk}/", {"client_secret": "new-NEVER-SHOWN-77"}, format="json"
    )
    assert changed.status_code == 200, changed.content
    assert_no_secret(changed.content, "the PATCH answer", extra=["new-NEVER-SHOWN-77"])


def test_marketo_calls_log_neither_the_client_secret_nor_the_access_token(fake_marketo, organization, caplog):
    instance = MarketoInstanceFactory(
        organization=organization, munchkin_id=fake_marketo.munchkin_id, client_id=fake_marketo.client_id,
        client_secret=fake_marketo.client_secret, rest_base_url=fake_marketo.rest_base_url,
        identity_base_url=fake_marketo.identity_base_url,
    )
    caplog.set_level(logging.DEBUG)  # the most a deployment could log (LOG_LEVEL=DEBUG)
    client = MarketoClient.for_instance(instance, sleep=lambda seconds: None)
    client.describe_leads()
    token, _ = client._token()
    assert fake_marketo.client_secret not in caplog.text, "the client secret is in the log"
    assert token not in caplog.text, "the access token is in the log"
