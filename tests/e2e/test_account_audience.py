"""A marketer builds an account audience in the browser: switches the builder to accounts, picks
account fields in the schema browser, watches the estimate narrow, saves, and reads the audience
page with its member accounts."""

import re

import pytest
from playwright.sync_api import expect

from cdp.choices import Role
from cdp.models import Audience, AudienceMember
from tests.cdp.ingest_helpers import ingest
from tests.e2e.test_login import sign_in
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


def test_marketer_builds_an_account_audience(page, live_server, make_user, sandbox, screenshot):
    ingest(sandbox, "account", [
        {"name": "Acme Software", "domain": "acme.io", "industry": "Software", "employees": 1500},
        {"name": "Tiny Software", "domain": "tiny.io", "industry": "Software", "employees": 40},
        {"name": "Big Retail", "domain": "retail.com", "industry": "Retail", "employees": 9000},
    ])  # fmt: skip
    user = make_user(Role.MARKETER, sandbox, username="mona")
    sign_in(page, user.username, PASSWORD)

    page.goto("/audiences/new/")
    page.get_by_label("Name").fill("Large software accounts")
    page.get_by_label("Audience of").select_option("account")
    browser_pane = page.locator("#schema-browser")
    browser_pane.get_by_role("button", name=re.compile(r"^Industry")).click()
    row = page.locator("#rule-editor .rule-row").first
    row.get_by_label("Operator").select_option("eq")
    row.get_by_label("Value").fill("Software")
    expect(page.locator("#estimate-count")).to_have_text("2")
    expect(page.locator("#estimate-note")).to_contain_text("accounts")

    browser_pane.get_by_role("button", name=re.compile(r"^Employees")).click()
    second = page.locator("#rule-editor .rule-row").nth(1)
    second.get_by_label("Operator").select_option("ge")
    second.get_by_label("Value").fill("1000")
    expect(page.locator("#estimate-count")).to_have_text("1")

    page.get_by_role("tab", name="PQL").click()
    expect(page.locator("#pql-text")).to_have_value('account.industry = "Software" and account.employees >= 1000')
    page.get_by_role("tab", name="Rules").click()
    screenshot(page, "builder")
    page.get_by_role("button", name="Create audience").click()

    expect(page.get_by_role("heading", level=1)).to_contain_text("Large software accounts")
    expect(page.locator("#audience-size")).to_have_text("1")
    expect(page.locator("#audience-size + .stat-label")).to_have_text("accounts in the audience")
    members = page.locator("#members")
    expect(members.get_by_role("link", name="Acme Software")).to_be_visible()
    expect(members).not_to_contain_text("Tiny Software")
    screenshot(page, "audience")

    audience = Audience.objects.get(sandbox=sandbox, name="Large software accounts")
    assert audience.kind == "account" and audience.definition["subject"] == "account"
    assert AudienceMember.objects.filter(audience=audience, status="realized").count() == 1
