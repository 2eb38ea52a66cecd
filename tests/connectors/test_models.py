"""Instance records: Munchkin IDs, base URLs, Salesforce auth settings, and secrets encrypted at rest."""

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import override_settings

from connectors.choices import SalesforceAuthFlow
from connectors.fields import SecretDecryptionError, _fernet_key
from connectors.models import MarketoInstance, SalesforceOrg
from tests.connectors.factories import SECRET, MarketoInstanceFactory, SalesforceOrgFactory


def raw_column(model, pk, column):
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {connection.ops.quote_name(column)} FROM {table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


# --- Munchkin ID and base URLs ------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["123-abc-456", " 123-Abc-456 ", "123-ABC-456"])
def test_munchkin_id_is_stored_in_upper_case(organization, typed):
    instance = MarketoInstance(organization=organization, name="M", munchkin_id=typed, client_id="c", client_secret="s")
    instance.full_clean()
    instance.save()
    instance.refresh_from_db()
    assert instance.munchkin_id == "123-ABC-456"


@pytest.mark.parametrize("bad", ["123ABC456", "12-ABC-456", "123-AB1-456", "ABC-123-DEF", "123-ABC-4567", ""])
def test_malformed_munchkin_ids_are_refused_with_the_expected_format(organization, bad):
    instance = MarketoInstance(organization=organization, name="M", munchkin_id=bad, client_id="c", client_secret="s")
    with pytest.raises(ValidationError) as caught:
        instance.full_clean()
    assert "munchkin_id" in caught.value.message_dict


def test_base_urls_default_to_the_ones_derived_from_the_munchkin_id(organization):
    instance = MarketoInstanceFactory(organization=organization, munchkin_id="321-xyz-654")
    assert instance.rest_base_url == "https://321-XYZ-654.mktorest.com/rest"
    assert instance.identity_base_url == "https://321-XYZ-654.mktorest.com/identity"


def test_default_base_urls_follow_a_changed_munchkin_id_but_custom_ones_stay(organization):
    derived = MarketoInstanceFactory(organization=organization, munchkin_id="111-AAA-111")
    derived.munchkin_id = "222-bbb-222"
    derived.full_clean()
    assert derived.rest_base_url == "https://222-BBB-222.mktorest.com/rest"
    assert derived.identity_base_url == "https://222-BBB-222.mktorest.com/identity"

    custom = MarketoInstanceFactory(organization=organization, rest_base_url="https://mkto.example.com/rest")
    custom.munchkin_id = "333-CCC-333"
    custom.full_clean()
    assert custom.rest_base_url == "https://mkto.example.com/rest"
    assert custom.identity_base_url == "https://333-CCC-333.mktorest.com/identity"


def test_base_urls_must_be_https(organization):
    instance = MarketoInstanceFactory.build(organization=organization, rest_base_url="http://example.com/rest")
    with pytest.raises(ValidationError) as caught:
        instance.full_clean()
    assert "rest_base_url" in caught.value.message_dict


def test_a_munchkin_id_is_registered_once_per_organization_but_may_repeat_across_organizations(
    organization, other_sandbox
):
    MarketoInstanceFactory(organization=organization, munchkin_id="123-ABC-456")
    again = MarketoInstanceFactory.build(organization=organization, munchkin_id="123-abc-456")
    with pytest.raises(ValidationError) as caught:
        again.full_clean()
    assert "already has a Marketo instance" in caught.value.message_dict["munchkin_id"][0]

    elsewhere = MarketoInstanceFactory.build(organization=other_sandbox.organization, munchkin_id="123-ABC-456")
    elsewhere.full_clean()


# --- Salesforce orgs -------------------------------------------------------------------------------


def test_salesforce_client_credentials_need_a_secret(organization):
    sf = SalesforceOrgFactory.build(organization=organization, client_secret="")
    with pytest.raises(ValidationError) as caught:
        sf.full_clean()
    assert "client_secret" in caught.value.message_dict


def test_salesforce_jwt_bearer_needs_username_and_private_key(organization):
    sf = SalesforceOrgFactory.build(organization=organization, auth_flow=SalesforceAuthFlow.JWT_BEARER, client_secret="")
    with pytest.raises(ValidationError) as caught:
        sf.full_clean()
    assert {"username", "private_key"} <= set(caught.value.message_dict)
    sf.username = "integration@acme.example"
    sf.private_key = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----"
    sf.full_clean()


@pytest.mark.parametrize("org_id, ok", [("00D5g000004ABCD", True), ("00D5g000004ABCDEAA", True), ("00X5g000004ABCD", False), ("00D5g", False)])
def test_salesforce_org_id_has_15_or_18_characters_starting_with_00D(organization, org_id, ok):
    sf = SalesforceOrgFactory.build(organization=organization, org_id=org_id)
    if ok:
        sf.full_clean()
    else:
        with pytest.raises(ValidationError):
            sf.full_clean()


# --- Encryption at rest -------------------------------------------------------------------------


def test_marketo_client_secret_is_encrypted_at_rest_and_round_trips(organization):
    instance = MarketoInstanceFactory(organization=organization)
    stored = raw_column(MarketoInstance, instance.pk, "client_secret")
    assert SECRET not in stored
    assert MarketoInstance.objects.get(pk=instance.pk).client_secret == SECRET


def test_encryption_uses_a_key_derived_from_field_encryption_key(settings, organization):
    instance = MarketoInstanceFactory(organization=organization)
    stored = raw_column(MarketoInstance, instance.pk, "client_secret")
    assert Fernet(_fernet_key(settings.FIELD_ENCRYPTION_KEY)).decrypt(stored.encode()).decode() == SECRET


def test_salesforce_secrets_are_encrypted_at_rest(organization):
    key = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"
    sf = SalesforceOrgFactory(organization=organization, private_key=key)
    assert "sfdc-secret" not in raw_column(SalesforceOrg, sf.pk, "client_secret")
    assert "PRIVATE KEY" not in raw_column(SalesforceOrg, sf.pk, "private_key")
    sf.refresh_from_db()
    assert sf.private_key == key


def test_the_same_secret_encrypts_differently_each_time(organization):
    a, b = MarketoInstanceFactory(organization=organization), MarketoInstanceFactory(organization=organization)
    assert raw_column(MarketoInstance, a.pk, "client_secret") != raw_column(MarketoInstance, b.pk, "client_secret")


def test_a_rotated_key_still_decrypts_secrets_written_with_the_old_one(settings, organization):
    instance = MarketoInstanceFactory(organization=organization)
    old_key = settings.FIELD_ENCRYPTION_KEY
    with override_settings(FIELD_ENCRYPTION_KEY=f"brand-new-key,{old_key}"):
        assert MarketoInstance.objects.get(pk=instance.pk).client_secret == SECRET
    with override_settings(FIELD_ENCRYPTION_KEY="a-different-key"):
        with pytest.raises(SecretDecryptionError, match="FIELD_ENCRYPTION_KEY"):
            MarketoInstance.objects.get(pk=instance.pk)
        # Lists defer secrets, so a wrong key does not break reading the other fields.
        assert MarketoInstance.objects.defer("client_secret").get(pk=instance.pk).name == instance.name
