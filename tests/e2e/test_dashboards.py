"""A marketer reads the dashboards of a sandbox with data in it: the sandbox dashboard, the journey
reports and one journey's runtime report, the buying groups dashboard and an audience page.

``populated`` builds that sandbox through the services (no clicking), so test_narrow.py reuses it."""

import re
from types import SimpleNamespace

import pytest
from playwright.sync_api import expect

from cdp.choices import Role
from journeys.models import BuyingGroup, BuyingGroupBuild
from journeys.services.buying_groups import start_build
from journeys.services.runtime import enroll_new_members
from tests.e2e.test_login import sign_in
from tests.factories import PASSWORD
from tests.journeys.buying_groups.conftest import make_solution_interest  # noqa: F401
from tests.journeys.runtime.conftest import account_audience, compare, email_asset, live_journey, make_people

pytestmark = pytest.mark.browser

ONBOARDING = {
    "n1": {"type": "start", "next": "n2"},
    "n2": {"type": "action", "action": "send_email", "params": {"email_id": None}, "next": "n3"},
    "n3": {"type": "wait", "duration": {"amount": 3, "unit": "days"}, "next": "n4"},
    "n4": {"type": "end"},
}


@pytest.fixture
def populated(sandbox, settings, make_solution_interest):  # noqa: F811
    """Two Software accounts with four people, an account audience over them, a live journey that
    emailed the people of both and waits, and the buying groups of a solution interest."""
    settings.QUORUM_PUBLIC_URL = "http://testserver"
    make_people(sandbox, [
        {"email": "ann@acme.com", "first_name": "Ann", "last_name": "Archer", "job_title": "CTO", "account.domain": "acme.com"},
        {"email": "bob@acme.com", "first_name": "Bob", "last_name": "Baker", "job_title": "VP Engineering", "account.domain": "acme.com"},
        {"email": "cy@initech.com", "first_name": "Cy", "last_name": "Cole", "job_title": "Engineer", "account.domain": "initech.com"},
        {"email": "dee@initech.com", "first_name": "Dee", "last_name": "Dunn", "job_title": "CFO", "account.domain": "initech.com"},
    ])  # fmt: skip
    audience = account_audience(sandbox, {"subject": "account", "condition": compare("name", "isNotNull")}, name="All accounts")
    nodes = {
        **ONBOARDING,
        "n1": {**ONBOARDING["n1"], "audience_id": audience.pk},
        "n2": {**ONBOARDING["n2"], "params": {"email_id": email_asset(sandbox).pk}},
    }
    journey = live_journey(sandbox, audience, nodes, name="Onboarding")
    enroll_new_members(journey)
    interest = make_solution_interest(sandbox, name="Analytics")
    start_build(interest, audience)  # runs on commit, eagerly
    assert BuyingGroupBuild.objects.get(solution_interest=interest).status == "succeeded"
    group = BuyingGroup.objects.for_sandbox(sandbox).select_related("account").order_by("pk").first()
    return SimpleNamespace(audience=audience, journey=journey, interest=interest, group=group)


def stat(page, label):
    """The value of the stat card whose label is ``label``."""
    return page.locator(".stat-grid > *").filter(has=page.get_by_text(label, exact=True)).locator(".stat-value")


def test_marketer_reads_the_dashboards(page, live_server, make_user, sandbox, populated, screenshot):
    user = make_user(Role.MARKETER, sandbox, username="mona")
    sign_in(page, user.username, PASSWORD)

    expect(page.get_by_role("heading", level=1)).to_have_text(sandbox.title)
    expect(stat(page, "People")).to_have_text("4")
    expect(stat(page, "Accounts")).to_have_text("2")
    screenshot(page, "dashboard")

    page.get_by_role("link", name="Journey reports").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Journey reports")
    expect(stat(page, "Live journeys")).to_have_text("1")
    expect(stat(page, "Accounts in a journey now")).to_have_text("2")
    expect(stat(page, "Emails sent")).to_have_text("4")
    row = page.locator("tbody tr", has_text="Onboarding")
    expect(row.locator("td").nth(2)).to_have_text("2")  # accounts
    expect(row.locator("td").nth(5)).to_have_text("4")  # sent
    screenshot(page, "journey-reports")

    row.get_by_role("link", name="Onboarding").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Onboarding")
    wait_row = page.locator("tbody tr", has=page.locator("code", has_text=re.compile(r"^n3$")))
    expect(wait_row.locator("td").nth(1)).to_have_text("wait")
    expect(wait_row.locator("td").nth(3)).to_have_text("2")  # both accounts wait there now
    expect(wait_row.locator("td").nth(6)).to_have_text("4")  # with their four people
    expect(page.get_by_role("link", name="Export visits (CSV)")).to_be_visible()
    screenshot(page, "journey-report")

    page.get_by_role("link", name="Buying groups").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Buying groups")
    expect(stat(page, "Buying groups")).to_have_text("2")
    expect(page.locator("#stage-distribution")).to_contain_text("Discover")
    expect(page.locator("#stage-distribution tbody tr").first.locator("td").nth(2)).to_have_text("2")
    screenshot(page, "buying-groups")

    page.goto(f"/audiences/{populated.audience.pk}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("All accounts")
    expect(page.locator("#audience-size")).to_have_text("2")
    expect(page.locator("#members").get_by_role("link", name="Acme")).to_be_visible()
    expect(page.locator("svg.size-chart")).to_be_visible()
    screenshot(page, "audience")
