import pytest
from rest_framework.test import APIClient

from cdp.choices import Role
from tests.factories import PASSWORD, OrganizationFactory, SandboxFactory, UserFactory, grant, make_org_admin

pytest_plugins = ["tests.browser", "tests.fakes.marketo_fixtures"]


@pytest.fixture
def organization(db):
    return OrganizationFactory()


@pytest.fixture
def sandbox(organization):
    return SandboxFactory(organization=organization, name="prod", title="Production", type="production")


@pytest.fixture
def other_sandbox(db):
    """A sandbox of another organization: nothing of it may ever be visible to ``sandbox`` users."""
    return SandboxFactory(name="elsewhere")


@pytest.fixture
def make_user(db):
    def _make(role: Role | None = None, sandbox=None, org_admin_of=None, **kwargs):
        user = UserFactory(**kwargs)
        if role is not None:
            grant(user, sandbox, role)
        if org_admin_of is not None:
            make_org_admin(user, org_admin_of)
        return user

    return _make


@pytest.fixture
def viewer(make_user, sandbox):
    return make_user(Role.VIEWER, sandbox)


@pytest.fixture
def marketer(make_user, sandbox):
    return make_user(Role.MARKETER, sandbox)


@pytest.fixture
def admin_user(make_user, organization, sandbox):
    """An organization admin (admin of every sandbox of ``organization``)."""
    return make_user(org_admin_of=organization)


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def login(client):
    """Log ``user`` into the Django test client and return the client."""

    def _login(user):
        assert client.login(username=user.username, password=PASSWORD)
        return client

    return _login


@pytest.fixture
def api_as(api_client):
    def _as(user):
        api_client.force_authenticate(user=user)
        return api_client

    return _as
