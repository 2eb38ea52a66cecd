"""The Salesforce client against the fake org: auth, paging, errors, retries, Bulk 2.0, getDeleted."""

import datetime as dt
import socket

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.choices import SalesforceAuthFlow
from connectors.salesforce import (
    SalesforceAuthError,
    SalesforceBulkJobFailed,
    SalesforceClient,
    SalesforceError,
    SalesforceLimitExceeded,
)
from tests.connectors.factories import SalesforceOrgFactory

pytestmark = pytest.mark.django_db


def _accounts(fake, n):
    return [fake.add("Account", Name=f"Acme {i}", Website=f"https://acme{i}.example.com") for i in range(n)]


def test_query_pages_through_next_records_url(fake_salesforce, salesforce_org, make_client):
    ids = _accounts(fake_salesforce, 7)
    client = make_client(salesforce_org)

    first = client.query_page("SELECT Id, Name FROM Account ORDER BY SystemModstamp")
    assert first.total_size == 7 and len(first.records) == 3 and first.next_url
    assert first.records[0]["attributes"]["type"] == "Account"

    records = list(client.query("SELECT Id, Name FROM Account ORDER BY SystemModstamp"))
    assert [r["Id"] for r in records] == ids
    assert len(fake_salesforce.calls("/query/01g")) == 2  # the follow-up pages of the full read
    assert len(fake_salesforce.token_requests) == 1  # the token is reused


def test_query_all_includes_soft_deleted_records(fake_salesforce, salesforce_org, make_client):
    kept, gone = _accounts(fake_salesforce, 2)
    fake_salesforce.delete("Account", gone)
    client = make_client(salesforce_org)
    assert [r["Id"] for r in client.query("SELECT Id FROM Account")] == [kept]
    rows = {r["Id"]: r["IsDeleted"] for r in client.query("SELECT Id, IsDeleted FROM Account", include_deleted=True)}
    assert rows == {kept: False, gone: True}


def test_where_on_system_modstamp(fake_salesforce, salesforce_org, make_client):
    _accounts(fake_salesforce, 2)
    middle = fake_salesforce.now
    later = _accounts(fake_salesforce, 2)
    client = make_client(salesforce_org)
    soql = f"SELECT Id FROM Account WHERE SystemModstamp > {middle:%Y-%m-%dT%H:%M:%SZ} ORDER BY SystemModstamp"
    assert [r["Id"] for r in client.query(soql)] == later


def test_expired_token_is_renewed_once_mid_paging(fake_salesforce, salesforce_org, make_client):
    _accounts(fake_salesforce, 5)
    client = make_client(salesforce_org)
    page = client.query_page("SELECT Id FROM Account")
    fake_salesforce.expire_tokens()
    rest = client.query_page(next_url=page.next_url)
    assert len(page.records) + len(rest.records) == 5
    assert len(fake_salesforce.token_requests) == 2


def test_a_session_refused_twice_surfaces(fake_salesforce, salesforce_org, make_client):
    fake_salesforce.inject("/limits", status=401, code="INVALID_SESSION_ID", message="Session expired or invalid", times=2)
    with pytest.raises(SalesforceError) as raised:
        make_client(salesforce_org).limits()
    assert raised.value.error_code == "INVALID_SESSION_ID"
    assert len(fake_salesforce.token_requests) == 2


def test_bad_credentials(fake_salesforce, salesforce_org, make_client):
    salesforce_org.client_secret = "wrong"
    with pytest.raises(SalesforceAuthError) as raised:
        make_client(salesforce_org).test_connection()
    assert raised.value.error_code == "invalid_client"


def test_request_limit_exceeded_is_not_retried(fake_salesforce, salesforce_org, make_client, sleeps):
    fake_salesforce.inject("/query", status=403, code="REQUEST_LIMIT_EXCEEDED", message="TotalRequests Limit exceeded.")
    with pytest.raises(SalesforceLimitExceeded) as raised:
        make_client(salesforce_org).query_page("SELECT Id FROM Account")
    assert "TotalRequests Limit exceeded" in str(raised.value)
    assert len(fake_salesforce.calls("/query")) == 1 and sleeps == []


def test_server_errors_are_retried_with_backoff(fake_salesforce, salesforce_org, make_client, sleeps):
    _accounts(fake_salesforce, 1)
    fake_salesforce.inject("/query", status=503, code="SERVER_UNAVAILABLE", times=2)
    page = make_client(salesforce_org).query_page("SELECT Id FROM Account")
    assert len(page.records) == 1
    assert sleeps == [1.0, 2.0]


def test_connection_errors_are_retried_then_raised(organization, sleeps):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    org = SalesforceOrgFactory(organization=organization, instance_url=f"http://127.0.0.1:{port}")
    client = SalesforceClient.for_org(org, sleep=sleeps.append, max_attempts=3)
    with pytest.raises(requests.ConnectionError):
        client.authenticate()
    assert sleeps == [1.0, 2.0]


def test_soql_errors_carry_code_and_message(fake_salesforce, salesforce_org, make_client):
    with pytest.raises(SalesforceError) as raised:
        make_client(salesforce_org).query_page("SELECT Nope FROM Account")
    assert raised.value.error_code == "INVALID_FIELD"
    assert "No such column 'Nope'" in str(raised.value)


def test_bulk_query_job_life_cycle_and_locator_paging(fake_salesforce, salesforce_org, make_client, sleeps):
    ids = _accounts(fake_salesforce, 5)
    fake_salesforce.update("Account", ids[0], Name='Acme, "the first"\nline two')
    client = make_client(salesforce_org)
    job_id = client.create_bulk_query("SELECT Id, Name, Website, ParentId FROM Account")
    job = client.wait_for_bulk_job(job_id, poll_seconds=7)
    assert job["state"] == "JobComplete" and sleeps == [7]

    rows, locator, pages = [], None, 0
    while True:
        page = client.bulk_results(job_id, locator=locator, max_records=2)
        rows += list(page.rows)
        pages += 1
        locator = page.next_locator
        if locator is None:
            break
    assert pages == 3
    assert sorted(r["Id"] for r in rows) == sorted(ids)
    first = next(r for r in rows if r["Id"] == ids[0])
    assert first["Name"] == 'Acme, "the first"\nline two'
    assert first["ParentId"] is None  # empty CSV cells read as None


def test_bulk_job_failure_raises_with_its_message(fake_salesforce, salesforce_org, make_client):
    fake_salesforce.failing_bulk_objects["Contact"] = "InternalServerError: query timed out"
    client = make_client(salesforce_org)
    job_id = client.create_bulk_query("SELECT Id FROM Contact")
    with pytest.raises(SalesforceBulkJobFailed) as raised:
        client.wait_for_bulk_job(job_id, poll_seconds=0)
    assert raised.value.state == "Failed"
    assert "query timed out" in str(raised.value)


def test_get_deleted_and_its_window_limit(fake_salesforce, salesforce_org, make_client):
    start = fake_salesforce.now
    kept, gone = _accounts(fake_salesforce, 2)
    fake_salesforce.delete("Account", gone, hard=True)
    client = make_client(salesforce_org)
    result = client.get_deleted("Account", start, fake_salesforce.now + dt.timedelta(minutes=1))
    assert [d["id"] for d in result["deletedRecords"]] == [gone]
    assert result["latestDateCovered"]
    with pytest.raises(SalesforceError) as raised:
        client.get_deleted("Account", fake_salesforce.now - dt.timedelta(days=20), fake_salesforce.now)
    assert raised.value.error_code == "INVALID_REPLICATION_DATE"


@pytest.fixture
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_jwt_bearer_flow(fake_salesforce, organization, rsa_key, make_client):
    fake_salesforce.jwt_public_key = rsa_key.public_key()
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    org = SalesforceOrgFactory(
        organization=organization,
        instance_url=fake_salesforce.url,
        auth_flow=SalesforceAuthFlow.JWT_BEARER,
        client_id=fake_salesforce.client_id,
        client_secret="",
        username="integration@acme.example",
        private_key=pem,
    )
    assert make_client(org).test_connection()["ok"] is True
    assert fake_salesforce.token_requests[0]["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]

    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    org.private_key = other_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    with pytest.raises(SalesforceAuthError):
        make_client(org).authenticate()


def test_unreadable_private_key_is_a_clear_auth_error(fake_salesforce, organization, make_client):
    org = SalesforceOrgFactory(
        organization=organization, instance_url=fake_salesforce.url, auth_flow=SalesforceAuthFlow.JWT_BEARER,
        username="integration@acme.example", private_key="not a key",
    )
    with pytest.raises(SalesforceAuthError) as raised:
        make_client(org).authenticate()
    assert raised.value.error_code == "invalid_private_key"
    assert fake_salesforce.token_requests == []


def test_usage_ceiling_stops_before_the_next_call(fake_salesforce, salesforce_org, make_client):
    fake_salesforce.api_usage, fake_salesforce.api_limit = 88, 100
    client = make_client(salesforce_org, usage_ceiling=0.9)
    client.limits()
    assert client.api_usage == (89, 100)
    client.limits()
    with pytest.raises(SalesforceLimitExceeded) as raised:
        client.limits()
    assert raised.value.error_code == "API_USAGE_CEILING"
    assert fake_salesforce.api_usage == 90
