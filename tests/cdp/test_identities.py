import pytest

from cdp.schema import FieldError
from cdp.services.identities import validate_identity

ECID = "1" * 38


@pytest.mark.parametrize(
    ("namespace", "raw", "expected"),
    [
        ("ecid", ECID, ECID),
        ("email", "  Ann@Example.COM ", "ann@example.com"),
        ("domain", "https://www.Acme.com/about", "acme.com"),
        ("marketo_lead_id", "12345", "12345"),
        ("sfdc_contact_id", "0031x00000AbCdE", "0031x00000AbCdE"),
        ("sfdc_account_id", "0011x00000AbCdEAAZ", "0011x00000AbCdEAAZ"),
        ("crm_account_id", "ACC-1", "ACC-1"),
        ("custom:loyalty_id", "L-9", "L-9"),
    ],
)
def test_valid_identities_are_normalised(namespace, raw, expected):
    assert validate_identity(namespace, raw) == expected


@pytest.mark.parametrize(
    ("namespace", "raw", "message"),
    [
        ("email", "", "is empty"),
        ("email", "   ", "is empty"),
        ("ecid", "null", "placeholder"),
        ("email", "Anonymous", "placeholder"),
        ("crm_account_id", "INVALID", "placeholder"),
        ("ecid", "1" * 37, "exactly 38 digits"),
        ("ecid", "1" * 37 + "x", "exactly 38 digits"),
        ("email", "not-an-email", "not an email"),
        ("domain", "localhost", "not a domain"),
        ("marketo_lead_id", "12a", "digits only"),
        ("sfdc_lead_id", "short", "Salesforce id"),
        ("crm_account_id", "x" * 1025, "at most 1024"),
        ("fax", "1", "not an identity namespace"),
        ("custom:Bad Code", "1", "custom namespaces"),
    ],
)
def test_invalid_identities_are_refused_with_a_reason(namespace, raw, message):
    with pytest.raises(FieldError, match=message):
        validate_identity(namespace, raw)


def test_identity_of_exactly_1024_characters_is_accepted():
    assert len(validate_identity("crm_account_id", "x" * 1024)) == 1024
