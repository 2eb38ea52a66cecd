"""The buying group page in a browser, at desktop and phone widths: members by role, moving the
stage, and no sideways scrolling."""

import pytest
from playwright.sync_api import expect

from cdp.choices import Role
from cdp.models import Account, AccountPerson, Person
from journeys.models import BuyingGroup
from journeys.services.buying_groups import assign_automatically
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture
def group(sandbox, make_solution_interest):
    interest = make_solution_interest(sandbox)
    acme = Account.objects.create(sandbox=sandbox, name="Acme Corporation", domain="acme.com")
    for first, title in (("Alice", "CTO"), ("Bob", "VP Engineering"), ("Carol", "Engineer")):
        person = Person.objects.create(sandbox=sandbox, first_name=first, last_name="Smith", email=f"{first.lower()}@acme.com", job_title=title)
        AccountPerson.objects.create(sandbox=sandbox, account=acme, person=person)
    group = BuyingGroup.objects.create(sandbox=sandbox, account=acme, solution_interest=interest)
    assign_automatically(interest, [group.pk])
    return group


def sign_in(page, username):
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_group_page_moves_the_stage_and_fits_a_phone(page, live_server, make_user, sandbox, group, screenshot):
    user = make_user(Role.MARKETER, sandbox)
    sign_in(page, user.username)
    page.goto(f"/journeys/buying-groups/groups/{group.pk}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Acme Corporation")
    expect(page.get_by_role("heading", name="Decision Maker")).to_be_visible()
    page.get_by_label("Move to stage").select_option("Discover")
    page.get_by_role("button", name="Move", exact=True).click()
    expect(page.locator("#stage-history")).to_contain_text("Discover")
    screenshot(page, "desktop")

    pages = (
        f"/journeys/buying-groups/groups/{group.pk}/", "/journeys/buying-groups/groups/", "/journeys/buying-groups/",
        "/journeys/buying-groups/roles-templates/new/", "/journeys/buying-groups/solution-interests/",
        "/journeys/buying-groups/stages-models/new/",
    )  # fmt: skip
    for path in pages:
        page.set_viewport_size({"width": 390, "height": 800})
        page.goto(path)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at 390px"
    screenshot(page, "phone")
