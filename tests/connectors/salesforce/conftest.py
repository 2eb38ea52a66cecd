import pytest

from tests.connectors.factories import SalesforceOrgFactory
from tests.fakes.salesforce import FakeSalesforce


@pytest.fixture
def fake_salesforce():
    """A running fake Salesforce org with small pages so paging is exercised."""
    fake = FakeSalesforce(page_size=3).start()
    yield fake
    fake.stop()


@pytest.fixture
def salesforce_org(organization, fake_salesforce):
    return SalesforceOrgFactory(
        organization=organization,
        instance_url=fake_salesforce.url,
        client_id=fake_salesforce.client_id,
        client_secret=fake_salesforce.client_secret,
    )


@pytest.fixture
def sleeps():
    """Records the backoff / poll sleeps instead of sleeping."""
    return []


@pytest.fixture
def make_client(sleeps):
    from connectors.salesforce import SalesforceClient

    def _make(org, **kwargs):
        return SalesforceClient.for_org(org, sleep=sleeps.append, **kwargs)

    return _make


@pytest.fixture
def connection(sandbox, salesforce_org, admin_user):
    from connectors.services.sources import create_source_connection

    # Small thresholds so both read paths and every kind of paging run on a handful of records.
    return create_source_connection(
        sandbox=sandbox,
        name="Salesforce production",
        salesforce_org=salesforce_org,
        created_by=admin_user,
        options={"bulk_threshold": 4, "bulk_page_rows": 2},
    )


@pytest.fixture
def drive(fake_salesforce, monkeypatch):
    """Runs a sync to its end as workers and the beat would, on a clock a few minutes past the fake's."""
    import datetime as dt

    from tests.connectors.sources.conftest import Driver

    # Retries of server errors back off without sleeping.
    from connectors.salesforce.source import SalesforceSource

    real_make_client = SalesforceSource.make_client
    monkeypatch.setattr(SalesforceSource, "make_client", lambda self: real_make_client(self, sleep=lambda seconds: None))
    driver = Driver()
    driver.now = fake_salesforce.now + dt.timedelta(minutes=5)
    return driver
