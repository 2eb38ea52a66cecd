"""Every main page, with data in the sandbox, at 1280 px and at a phone's 390 px: the page never
scrolls sideways (wide tables scroll inside their own box), and a screenshot of each is saved."""

import pytest

from cdp.models import Account, Person
from tests.e2e.test_dashboards import populated  # noqa: F401
from tests.e2e.test_login import sign_in
from tests.factories import PASSWORD
from tests.journeys.buying_groups.conftest import make_solution_interest  # noqa: F401

pytestmark = pytest.mark.browser

OVERFLOW = "document.documentElement.scrollWidth - window.innerWidth"


def main_pages(sandbox, populated):  # noqa: F811
    person = Person.objects.for_sandbox(sandbox).get(email="ann@acme.com")
    account = Account.objects.for_sandbox(sandbox).get(domain="acme.com")
    journey, audience = populated.journey.pk, populated.audience.pk
    return {
        "dashboard": "/",
        "people": "/profiles/",
        "person": f"/profiles/people/{person.pk}/",
        "accounts": "/profiles/accounts/",
        "account": f"/profiles/accounts/{account.pk}/",
        "ingestion": "/profiles/ingest/",
        "upload": "/profiles/ingest/upload/",
        "mappings": "/profiles/ingest/mappings/",
        "audiences": "/audiences/",
        "audience": f"/audiences/{audience}/",
        "audience-builder": f"/audiences/{audience}/edit/",
        "new-audience": "/audiences/new/",
        "destinations": "/connectors/destinations/",
        "dataflow-wizard": "/connectors/dataflows/new/",
        "sources": "/connectors/sources/",
        "instances": "/connectors/instances/",
        "new-marketo-instance": "/connectors/instances/marketo/new/",
        "buying-groups": "/journeys/buying-groups/",
        "buying-group": f"/journeys/buying-groups/groups/{populated.group.pk}/",
        "journeys": "/journeys/",
        "new-journey": "/journeys/new/",
        "journey-map": f"/journeys/{journey}/",
        "campaign-plan": f"/journeys/{journey}/plan/",
        "emails": "/journeys/emails/",
        "journey-reports": "/journeys/reports/",
        "journey-report": f"/journeys/reports/{journey}/",
        "organizations": "/settings/",
        "organization": f"/settings/organizations/{sandbox.organization_id}/",
        "new-member": f"/settings/organizations/{sandbox.organization_id}/members/new/",
        "api-tokens": "/settings/tokens/",
    }


@pytest.mark.parametrize("width", [1280, 390])
def test_main_pages_fit_the_screen(width, page, live_server, admin_user, sandbox, populated, screenshot):  # noqa: F811
    page.set_viewport_size({"width": width, "height": 800})
    overflowing = {}
    page.goto("/login/")
    if page.evaluate(OVERFLOW) > 0:
        overflowing["login"] = "/login/ scrolls sideways"
    screenshot(page, "login")
    sign_in(page, admin_user.username, PASSWORD)
    page.wait_for_url(f"{live_server.url}/")

    for name, path in main_pages(sandbox, populated).items():
        response = page.goto(path)
        assert response.status == 200, f"{path} answered {response.status}"
        page.wait_for_load_state("load")
        overflow = page.evaluate(OVERFLOW)
        if overflow > 0:
            overflowing[name] = f"{path} scrolls sideways by {overflow}px"
        screenshot(page, name)
    assert overflowing == {}, f"at {width}px: {overflowing}"
